//! The fan-out task: turns accepted changes into deliveries, in rounds, after a short linger so
//! changes that arrive together are batched together.

use std::sync::Arc;
use std::time::Duration;

use graphhooks_core::fanout::plan;
use graphhooks_core::wire::BatchLimits;
use graphhooks_store::ClaimRequest;
use graphhooks_store::Planner;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::EngineShared;
use super::dispatch::Handover;
use crate::clock::{now_ms, now_s};

/// Most changes one round takes; bounds how long a round holds the store's write lock.
const ROUND_LIMIT: usize = 5000;
/// How often fan-out looks for changes nobody woke it for (accepted before a crash, or by
/// another node).
const POLL: Duration = Duration::from_millis(500);

/// Runs until `shutdown`. Changes left unprocessed stay durable and are processed next start.
/// With `handover`, each round claims for dispatch what dispatch has room for.
pub(crate) async fn run(
    shared: Arc<EngineShared>,
    shutdown: CancellationToken,
    handover: Option<mpsc::UnboundedSender<Handover>>,
) {
    let limits = BatchLimits {
        max_changes: shared.config.batch_max,
        max_bytes: graphhooks_core::MAX_BODY_BYTES,
    };
    let planner: Planner = Arc::new(move |changes, facts| plan(changes, facts, now_s(), limits));
    let linger = shared.config.batch_linger;
    // The first round runs at once: changes accepted before a crash are waiting.
    let mut woken = true;
    loop {
        if !woken {
            tokio::select! {
                () = shared.changes.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                () = shutdown.cancelled() => return,
            }
        }
        woken = false;
        if !linger.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                () = shutdown.cancelled() => return,
            }
        }
        loop {
            // The room dispatch offers, and where to answer it.
            let offer = match &handover {
                Some(handover) => ask_for_room(handover).await.map(|room| (handover, room)),
                None => None,
            };
            let result = match &offer {
                Some((_, room)) => {
                    shared
                        .store
                        .fan_out_and_claim(
                            ROUND_LIMIT,
                            now_ms(),
                            planner.clone(),
                            &shared.node_id,
                            room,
                        )
                        .await
                }
                None => shared
                    .store
                    .fan_out(ROUND_LIMIT, now_ms(), planner.clone())
                    .await
                    .map(|report| (report, Vec::new())),
            };
            let (result, handed) = match result {
                Ok((report, handed)) => (Ok(report), handed),
                Err(error) => (Err(error), Vec::new()),
            };
            let handed_over = handed.len();
            if let Some((handover, _)) = offer {
                // Answered whatever happened, so dispatch can claim again. If dispatch has
                // stopped, what this round claimed is released with the rest of this node's
                // claims (at shutdown, or at the next start).
                let _ = handover.send(Handover::Claimed(handed));
            }
            match result {
                Ok(report) => {
                    if report.changes > 0 {
                        metrics::counter!("graphhooks_changes_fanned_out_total")
                            .increment(report.changes as u64);
                        tracing::debug!(
                            changes = report.changes,
                            deliveries = report.deliveries,
                            "Fanned out {} changes",
                            report.changes
                        );
                    }
                    if report.deliveries > 0 {
                        metrics::counter!("graphhooks_deliveries_created_total")
                            .increment(report.deliveries as u64);
                    }
                    if report.deliveries > handed_over {
                        shared.work.notify_one();
                    }
                    if !report.more {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %crate::http::error::error_chain(&error), "Fan-out failed; retrying in a second");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = shutdown.cancelled() => return,
                    }
                    woken = true;
                    break;
                }
            }
        }
    }
}

/// Asks dispatch how much of the next round it can take; `None` when it takes nothing now (a
/// claim is under way, or it has no room, or it has stopped).
async fn ask_for_room(handover: &mpsc::UnboundedSender<Handover>) -> Option<ClaimRequest> {
    let (reply, offer) = oneshot::channel();
    handover.send(Handover::Ask(reply)).ok()?;
    offer.await.ok().flatten()
}
