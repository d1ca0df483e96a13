//! Operator alerts: when a subscription is paused, a signed notification in Meta's format goes
//! to `--alert-url` (signed with `--alert-secret`), so operators hear of it where they already
//! receive webhooks. Alerts are best-effort (a few attempts, not stored); the pause itself is
//! durable and visible in the delivery log and subscription listing.
//!
//! ```json
//! {"object":"graphhooks_alert","entry":[{"id":"<app id>","time":1764288000,"changes":[
//!   {"field":"subscription_paused","value":{"app_id":"…","object":"user",
//!    "callback_url":"https:\/\/…","failing_since":1764284400,"paused_at":1764288000}}]}]}
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use graphhooks_core::signature;
use graphhooks_core::wire::to_meta_json;
use graphhooks_store::SubscriptionKey;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::json;

use super::EngineShared;
use super::client::Outgoing;
use super::send::USER_AGENT_VALUE;
use crate::clock::now_s;

/// Attempts per alert.
const ATTEMPTS: u32 = 5;

/// Sends the "subscription paused" alert in the background, if alerts are configured.
pub(crate) fn subscription_paused(
    shared: Arc<EngineShared>,
    key: SubscriptionKey,
    callback_url: String,
    failing_since_ms: Option<i64>,
) {
    let (Some(url), Some(secret)) = (
        shared.config.alert_url.clone(),
        shared.config.alert_secret.clone(),
    ) else {
        return;
    };
    let now = now_s();
    let body = json!({
        "object": "graphhooks_alert",
        "entry": [{
            "id": key.app_id,
            "time": now,
            "changes": [{
                "field": "subscription_paused",
                "value": {
                    "app_id": key.app_id,
                    "object": key.object_type,
                    "callback_url": callback_url,
                    "failing_since": failing_since_ms.map(|ms| ms / 1000),
                    "paused_at": now,
                },
            }],
        }],
    });
    let Ok(body) = to_meta_json(&body) else {
        return;
    };
    tokio::spawn(async move {
        let body = Bytes::from(body);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        for (name, value) in [
            (
                "x-hub-signature-256",
                signature::hub_signature_256(&secret, &body),
            ),
            (
                "x-hub-signature",
                signature::hub_signature_1(&secret, &body),
            ),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        for attempt in 1..=ATTEMPTS {
            let result = shared
                .alert_client
                .send(
                    &url,
                    Outgoing {
                        method: Method::POST,
                        headers: headers.clone(),
                        body: body.clone(),
                        timeout: shared.config.delivery_timeout,
                        mutual_tls: false,
                    },
                )
                .await;
            match result {
                Ok(response) if response.status.is_success() => {
                    tracing::info!(
                        app_id = key.app_id,
                        object_type = key.object_type,
                        "Sent the operator alert that app {}'s {} subscription is paused",
                        key.app_id,
                        key.object_type
                    );
                    return;
                }
                Ok(response) => tracing::warn!(
                    status = response.status.as_u16(),
                    attempt,
                    "The operator alert webhook answered {}",
                    response.status.as_u16()
                ),
                Err(error) => tracing::warn!(
                    error = error.message,
                    attempt,
                    "Could not reach the operator alert webhook"
                ),
            }
            tokio::time::sleep(Duration::from_secs(1u64 << attempt.min(5))).await;
        }
        tracing::error!(
            app_id = key.app_id,
            object_type = key.object_type,
            "Gave up sending the operator alert that app {}'s {} subscription is paused",
            key.app_id,
            key.object_type
        );
    });
}
