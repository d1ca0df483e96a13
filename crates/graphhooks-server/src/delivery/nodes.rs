//! Being one of several nodes on a shared store: the heartbeat that keeps this node's lease
//! (and reaps dead nodes, whose work then becomes due again), and the forwarding of other nodes'
//! wake-ups to this node's fan-out and dispatch.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use graphhooks_store::StoreEvent;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::EngineShared;

/// Renews the lease every quarter of its length until `shutdown`.
pub(crate) async fn heartbeat(shared: Arc<EngineShared>, shutdown: CancellationToken) {
    let lease = shared.config.node_lease;
    let every = (lease / 4).max(Duration::from_millis(100));
    loop {
        match shared.store.heartbeat(&shared.node_id, lease).await {
            Ok(beat) => {
                shared.registered.send_replace(true);
                if beat.reaped {
                    tracing::warn!(
                        node = shared.node_id,
                        "This node's lease lapsed and other nodes took over its work; dropping what it holds queued"
                    );
                    shared.reaped.store(true, Ordering::Release);
                    shared.work.notify_one();
                }
                if beat.released > 0 {
                    tracing::warn!(
                        released = beat.released,
                        "Took over {} deliveries from a node whose lease lapsed",
                        beat.released
                    );
                    shared.work.notify_one();
                }
            }
            Err(error) => tracing::warn!(
                error = %crate::http::error::error_chain(&error),
                "Could not renew this node's lease; retrying"
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Turns the store's cross-node events into local wake-ups until `shutdown`.
pub(crate) async fn forward_events(
    shared: Arc<EngineShared>,
    mut events: broadcast::Receiver<StoreEvent>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = shutdown.cancelled() => return,
        };
        match event {
            Ok(StoreEvent::ChangesAccepted) => shared.changes.notify_one(),
            Ok(StoreEvent::DeliveriesDue) => shared.work.notify_one(),
            // Missed some: wake both, they find the work themselves.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                shared.changes.notify_one();
                shared.work.notify_one();
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
