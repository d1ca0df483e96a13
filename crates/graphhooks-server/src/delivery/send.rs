//! One attempt: sign the exact body, POST it, and decide what happens next.

use bytes::Bytes;
use graphhooks_core::model::Attempt;
use graphhooks_core::retry::{NextAttempt, RetryPolicy};
use graphhooks_store::{AttemptOutcome, ClaimedDelivery, DeliveryTarget, NextStep};
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::EngineShared;
use super::client::Outgoing;
use crate::clock::now_ms;

/// `User-Agent` of every request graphhooks makes.
pub const USER_AGENT_VALUE: &str = concat!("graphhooks/", env!("CARGO_PKG_VERSION"));

fn header(value: String) -> HeaderValue {
    // Every value here is ASCII we produced (hex, base64); a failure is a defect, and an empty
    // header is the harmless way to surface it. The string's buffer becomes the value's.
    HeaderValue::from_maybe_shared(Bytes::from(value))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

const X_HUB_SIGNATURE_256: HeaderName = HeaderName::from_static("x-hub-signature-256");
const X_HUB_SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature");
const X_HUB_SIGNATURE_256_PREVIOUS: HeaderName =
    HeaderName::from_static("x-hub-signature-256-previous");
const X_GRAPHHOOKS_DELIVERY: HeaderName = HeaderName::from_static("x-graphhooks-delivery");
const X_GRAPHHOOKS_ATTEMPT: HeaderName = HeaderName::from_static("x-graphhooks-attempt");
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// The headers of a notification attempt (SPEC §2.2, §2.4a). The names are constants: called
/// at run time, `HeaderName::from_static` checks its string on every call.
pub fn notification_headers(
    target: &DeliveryTarget,
    delivery_id: i64,
    attempt: u32,
    body: &[u8],
    now_ms: i64,
) -> HeaderMap {
    let key = target.signing_key();
    let mut headers = HeaderMap::with_capacity(10);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    headers.insert(X_HUB_SIGNATURE_256, header(key.hub_signature_256(body)));
    headers.insert(X_HUB_SIGNATURE, header(key.hub_signature_1(body)));
    if let Some(previous) = target.previous_signing_key() {
        headers.insert(
            X_HUB_SIGNATURE_256_PREVIOUS,
            header(previous.hub_signature_256(body)),
        );
    }
    let id = HeaderValue::from(delivery_id);
    headers.insert(X_GRAPHHOOKS_DELIVERY, id.clone());
    headers.insert(X_GRAPHHOOKS_ATTEMPT, HeaderValue::from(attempt));
    if target.standard_webhooks {
        let timestamp = now_ms / 1000;
        let signed = key.standard_webhooks_signature(&delivery_id.to_string(), timestamp, body);
        headers.insert(WEBHOOK_ID, id);
        headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
        headers.insert(WEBHOOK_SIGNATURE, header(signed));
    }
    headers
}

/// Handles of the per-attempt metrics, registered once when the engine starts: looking a metric
/// up by name and label on every attempt showed in profiles.
pub(crate) struct AttemptMetrics {
    delivered_seconds: metrics::Histogram,
    failed_seconds: metrics::Histogram,
    delivered: metrics::Counter,
    retry: metrics::Counter,
    failed: metrics::Counter,
}

impl AttemptMetrics {
    /// Registers the handles with the process's recorder (installed before the engine starts).
    pub(crate) fn register() -> AttemptMetrics {
        const DURATION: &str = "graphhooks_attempt_duration_seconds";
        const TOTAL: &str = "graphhooks_notifications_total";
        AttemptMetrics {
            delivered_seconds: metrics::histogram!(DURATION, "outcome" => "delivered"),
            failed_seconds: metrics::histogram!(DURATION, "outcome" => "failed"),
            delivered: metrics::counter!(TOTAL, "outcome" => "delivered"),
            retry: metrics::counter!(TOTAL, "outcome" => "retry"),
            failed: metrics::counter!(TOTAL, "outcome" => "failed"),
        }
    }
}

/// What follows a failed attempt under `policy`.
pub(crate) fn after_failure(
    policy: &RetryPolicy,
    number: u32,
    first_attempt_ms: i64,
    now: i64,
) -> NextStep {
    match policy.after_failure(number, first_attempt_ms, now) {
        NextAttempt::At(at) => NextStep::RetryAt(at),
        NextAttempt::GiveUp => NextStep::Failed,
    }
}

/// Makes one attempt of `delivery` and returns the outcome to record.
pub(crate) async fn attempt(shared: &EngineShared, delivery: ClaimedDelivery) -> AttemptOutcome {
    let number = delivery.attempts_made + 1;
    let started = now_ms();
    let Some(target) = delivery.target else {
        return AttemptOutcome {
            delivery_id: delivery.id,
            attempt: Some(Attempt {
                number,
                time_ms: started,
                status: None,
                error: Some(format!(
                    "not sent: the app no longer subscribes to {}",
                    delivery.key.object_type
                )),
                latency_ms: 0,
                response: None,
            }),
            key: delivery.key,
            next: NextStep::Failed,
        };
    };
    let body = Bytes::from(delivery.body);
    let headers = notification_headers(&target, delivery.id, number, &body, started);
    let result = shared
        .client
        .send_notification(
            &target.callback_url,
            Outgoing {
                method: Method::POST,
                headers,
                body,
                timeout: shared.config.delivery_timeout,
                mutual_tls: target.include_client_certificate,
            },
        )
        .await;
    let first_attempt = delivery.first_attempt_ms.unwrap_or(started);
    let (attempt, delivered) = match result {
        Ok(response) => {
            let delivered = response.status.is_success();
            (
                Attempt {
                    number,
                    time_ms: started,
                    status: Some(response.status.as_u16()),
                    error: None,
                    latency_ms: u32::try_from(response.latency.as_millis()).unwrap_or(u32::MAX),
                    response: Some(response.snippet),
                },
                delivered,
            )
        }
        Err(error) => (
            Attempt {
                number,
                time_ms: started,
                status: None,
                error: Some(error.message),
                latency_ms: u32::try_from(error.latency.as_millis()).unwrap_or(u32::MAX),
                response: None,
            },
            false,
        ),
    };
    let seconds = f64::from(attempt.latency_ms) / 1000.0;
    if delivered {
        shared.attempt_metrics.delivered_seconds.record(seconds);
    } else {
        shared.attempt_metrics.failed_seconds.record(seconds);
    }
    let next = if delivered {
        NextStep::Delivered
    } else {
        after_failure(&shared.config.retry, number, first_attempt, now_ms())
    };
    let (outcome, counter) = match next {
        NextStep::Delivered => ("delivered", &shared.attempt_metrics.delivered),
        NextStep::RetryAt(_) => ("retry", &shared.attempt_metrics.retry),
        NextStep::Failed => ("failed", &shared.attempt_metrics.failed),
    };
    counter.increment(1);
    match &next {
        NextStep::Delivered => tracing::debug!(
            delivery_id = delivery.id,
            attempt = number,
            "Delivered notification {}",
            delivery.id
        ),
        _ => tracing::info!(
            delivery_id = delivery.id,
            attempt = number,
            status = attempt.status,
            error = attempt.error.as_deref(),
            next = outcome,
            "Attempt {number} of notification {} failed",
            delivery.id
        ),
    }
    AttemptOutcome {
        delivery_id: delivery.id,
        key: delivery.key,
        attempt: Some(attempt),
        next,
    }
}
