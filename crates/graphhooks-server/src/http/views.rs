//! JSON shapes the APIs return (SPEC §4a), built from the core model in one place so the
//! operator and app views of a delivery are identical.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use graphhooks_core::catalog::ObjectType;
use graphhooks_core::model::{App, Delivery, Subscription, SubscriptionStatus};
use serde_json::{Value, json};

/// A delivery with its attempts.
pub fn delivery(d: &Delivery) -> Value {
    json!({
        "id": d.id.to_string(),
        "app_id": d.app_id,
        "object": d.object_type,
        "state": d.state.as_str(),
        "created_time": d.created_time,
        "body": d.body,
        "attempts": d.attempts.iter().map(|a| json!({
            "number": a.number,
            "time": a.time_ms / 1000,
            "status": a.status,
            "error": a.error,
            "latency_ms": a.latency_ms,
            "response": a.response,
        })).collect::<Vec<_>>(),
    })
}

/// The opaque cursor for "deliveries after this one" (Graph-style base64).
pub fn cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

/// Reads a cursor made by [`cursor`].
pub fn parse_cursor(text: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}

/// An app without its secret.
pub fn app(a: &App) -> Value {
    json!({ "id": a.id, "name": a.name, "mode": a.mode.as_str(), "created_time": a.created_time })
}

/// An object type.
pub fn object_type(t: &ObjectType) -> Value {
    json!({
        "name": t.name,
        "grant": t.grant.as_str(),
        "fields": t.fields.values().map(|f| json!({
            "name": f.name,
            "permission": f.permission,
            "sample": f.sample,
        })).collect::<Vec<_>>(),
    })
}

/// A subscription as `GET /{app-id}/subscriptions` shows it (no tokens).
pub fn subscription(s: &Subscription) -> Value {
    json!({
        "object": s.object_type,
        "callback_url": s.callback_url,
        "active": s.status == SubscriptionStatus::Active,
        "fields": s.fields.iter().map(|(name, version)| json!({"name": name, "version": version})).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        assert_eq!(parse_cursor(&cursor(12345)), Some(12345));
        assert_eq!(parse_cursor("!!"), None);
    }
}
