//! Cross-node wake-ups over LISTEN/NOTIFY: writers `pg_notify` inside their transaction (so the
//! notification is sent at commit), and one listener task per store forwards them to the
//! engine. Missed notifications only cost latency: every task also polls.
//!
//! A payload names its kind and the store instance that sent it (`deliveries 1a2b-…`, from the
//! connection setting [`INSTANCE_SETTING`]), and a store ignores its own: whoever writes through
//! it wakes its engine directly, and hearing the same write again over the connection cost a
//! second fan-out round or claim for each one (about a third of PostgreSQL's statements at 1,000
//! changes/s). Payloads without an instance (older versions) are another node's.

use std::time::Duration;

use graphhooks_store::StoreEvent;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

/// The notification channel.
pub(crate) const CHANNEL: &str = "graphhooks";

/// The connection setting (a startup parameter) naming the store instance that opened it.
pub(crate) const INSTANCE_SETTING: &str = "graphhooks.instance";

/// Announces deliveries due to other nodes (`$1` is [`CHANNEL`]).
pub(crate) const NOTIFY_DELIVERIES: &str =
    "SELECT pg_notify($1, concat('deliveries ', current_setting('graphhooks.instance', true)))";

/// A name for one store instance, unique across processes and instances: process id, time and
/// a randomly keyed hash.
pub(crate) fn new_instance() -> String {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let random = std::collections::hash_map::RandomState::new().hash_one(nanos);
    format!("{:x}-{random:016x}", std::process::id())
}

/// What a payload asks for, or `None` if `instance` sent it.
fn event_of(payload: &str, instance: &str) -> Option<StoreEvent> {
    let (kind, origin) = payload.split_once(' ').unwrap_or((payload, ""));
    if origin == instance {
        return None;
    }
    Some(match kind {
        "changes" => StoreEvent::ChangesAccepted,
        _ => StoreEvent::DeliveriesDue,
    })
}

/// Listens until the pool is closed, reconnecting with a back-off when the connection drops.
pub(crate) async fn listen(pool: PgPool, events: broadcast::Sender<StoreEvent>, instance: String) {
    let mut delay = Duration::from_millis(100);
    loop {
        if pool.is_closed() {
            return;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "Cannot listen for other nodes' notifications; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::warn!(%error, "Cannot listen for other nodes' notifications; retrying");
            tokio::time::sleep(delay).await;
            continue;
        }
        delay = Duration::from_millis(100);
        // After a reconnect, work may have been missed: wake everything once.
        let _ = events.send(StoreEvent::ChangesAccepted);
        let _ = events.send(StoreEvent::DeliveriesDue);
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    // No receivers yet is fine: the engine polls as well.
                    if let Some(event) = event_of(notification.payload(), &instance) {
                        let _ = events.send(event);
                    }
                }
                Ok(None) => {
                    tracing::warn!("The notification connection was lost; reconnecting");
                    let _ = events.send(StoreEvent::ChangesAccepted);
                    let _ = events.send(StoreEvent::DeliveriesDue);
                }
                Err(error) => {
                    tracing::warn!(%error, "Listening for notifications failed; reconnecting");
                    break;
                }
            }
            if pool.is_closed() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_ignores_its_own_notifications() {
        let me = new_instance();
        assert_ne!(me, new_instance(), "instances differ");
        assert!(event_of(&format!("deliveries {me}"), &me).is_none());
        assert!(event_of(&format!("changes {me}"), &me).is_none());
        assert!(matches!(
            event_of("changes other", &me),
            Some(StoreEvent::ChangesAccepted)
        ));
        assert!(matches!(
            event_of("deliveries other", &me),
            Some(StoreEvent::DeliveriesDue)
        ));
        // Older versions send the kind alone.
        assert!(matches!(
            event_of("changes", &me),
            Some(StoreEvent::ChangesAccepted)
        ));
        assert!(matches!(
            event_of("deliveries", &me),
            Some(StoreEvent::DeliveriesDue)
        ));
    }
}
