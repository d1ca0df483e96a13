//! One attempt: sign the exact body, POST it, and decide what happens next.

use bytes::Bytes;
use graphhooks_core::model::Attempt;
use graphhooks_core::retry::{NextAttempt, RetryPolicy};
use graphhooks_core::signature;
use graphhooks_store::{AttemptOutcome, ClaimedDelivery, DeliveryTarget, NextStep};
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::EngineShared;
use crate::clock::now_ms;

/// `User-Agent` of every request graphhooks makes.
pub const USER_AGENT_VALUE: &str = concat!("graphhooks/", env!("CARGO_PKG_VERSION"));

fn header(value: &str) -> HeaderValue {
    // Every value here is ASCII we produced (hex, base64, digits); a failure is a defect, and
    // an empty header is the harmless way to surface it.
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The headers of a notification attempt (SPEC §2.2, §2.4a).
pub fn notification_headers(
    target: &DeliveryTarget,
    delivery_id: i64,
    attempt: u32,
    body: &[u8],
    now_ms: i64,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(10);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    headers.insert(
        HeaderName::from_static("x-hub-signature-256"),
        header(&signature::hub_signature_256(&target.secret, body)),
    );
    headers.insert(
        HeaderName::from_static("x-hub-signature"),
        header(&signature::hub_signature_1(&target.secret, body)),
    );
    if let Some(previous) = &target.previous_secret {
        headers.insert(
            HeaderName::from_static("x-hub-signature-256-previous"),
            header(&signature::hub_signature_256(previous, body)),
        );
    }
    let id = delivery_id.to_string();
    headers.insert(
        HeaderName::from_static("x-graphhooks-delivery"),
        header(&id),
    );
    headers.insert(
        HeaderName::from_static("x-graphhooks-attempt"),
        header(&attempt.to_string()),
    );
    if target.standard_webhooks {
        let timestamp = now_ms / 1000;
        headers.insert(HeaderName::from_static("webhook-id"), header(&id));
        headers.insert(
            HeaderName::from_static("webhook-timestamp"),
            header(&timestamp.to_string()),
        );
        headers.insert(
            HeaderName::from_static("webhook-signature"),
            header(&signature::standard_webhooks_signature(
                &target.secret,
                &id,
                timestamp,
                body,
            )),
        );
    }
    headers
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
        .send(
            Method::POST,
            &target.callback_url,
            headers,
            body,
            shared.config.delivery_timeout,
            target.include_client_certificate,
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
    let outcome_label = if delivered { "delivered" } else { "failed" };
    metrics::histogram!("graphhooks_attempt_duration_seconds", "outcome" => outcome_label)
        .record(f64::from(attempt.latency_ms) / 1000.0);
    let next = if delivered {
        NextStep::Delivered
    } else {
        after_failure(&shared.config.retry, number, first_attempt, now_ms())
    };
    let outcome = match next {
        NextStep::Delivered => "delivered",
        NextStep::RetryAt(_) => "retry",
        NextStep::Failed => "failed",
    };
    metrics::counter!("graphhooks_notifications_total", "outcome" => outcome).increment(1);
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
