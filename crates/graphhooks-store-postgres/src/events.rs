//! Cross-node wake-ups over LISTEN/NOTIFY: writers `pg_notify` inside their transaction (so the
//! notification is sent at commit), and one listener task per store forwards them to the
//! engine. Missed notifications only cost latency: every task also polls.

use std::time::Duration;

use graphhooks_store::StoreEvent;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

/// The notification channel.
pub(crate) const CHANNEL: &str = "graphhooks";

/// Listens until the pool is closed, reconnecting with a back-off when the connection drops.
pub(crate) async fn listen(pool: PgPool, events: broadcast::Sender<StoreEvent>) {
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
                    let event = match notification.payload() {
                        "changes" => StoreEvent::ChangesAccepted,
                        _ => StoreEvent::DeliveriesDue,
                    };
                    // No receivers yet is fine: the engine polls as well.
                    let _ = events.send(event);
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
