//! The recorder task: writes attempt outcomes in batches, so thousands of attempts per second
//! cost a few commits, and wakes dispatch when a retry is due.

use std::sync::Arc;
use std::time::Duration;

use graphhooks_store::{AttemptOutcome, NextStep};
use tokio::sync::mpsc;

use super::{Engine, EngineShared};

/// Most outcomes written in one call.
const BATCH: usize = 2000;
/// Attempts to write one batch before giving up on it (its claims are then released at
/// shutdown or restart, and the deliveries are sent again: at least once).
const WRITE_TRIES: u32 = 30;

/// Runs until every sender is dropped and the channel is drained.
pub(crate) async fn run(
    shared: Arc<EngineShared>,
    mut outcomes: mpsc::UnboundedReceiver<AttemptOutcome>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while outcomes.recv_many(&mut batch, BATCH).await > 0 {
        let earliest_retry = batch
            .iter()
            .filter_map(|o| match o.next {
                NextStep::RetryAt(at) => Some(at),
                _ => None,
            })
            .min();
        let mut tries = 0;
        loop {
            tries += 1;
            match shared.store.record_outcomes(batch.clone()).await {
                Ok(()) => break,
                Err(error) if tries < WRITE_TRIES => {
                    tracing::warn!(error = %crate::http::error::error_chain(&error), tries, "Recording attempt outcomes failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(tries.min(10)))).await;
                }
                Err(error) => {
                    tracing::error!(
                        error = %crate::http::error::error_chain(&error),
                        outcomes = batch.len(),
                        "Could not record attempt outcomes; those deliveries will be sent again once their claims are released"
                    );
                    break;
                }
            }
        }
        batch.clear();
        if let Some(at) = earliest_retry {
            Engine::retry_due_at(&shared, at);
        }
    }
}
