//! The recorder task: writes attempt outcomes in batches, so thousands of attempts per second
//! cost a few commits, and wakes dispatch when a retry is due.

use std::sync::Arc;
use std::time::Duration;

use graphhooks_store::{AttemptOutcome, NextStep, StoreError};
use tokio::sync::mpsc;

use super::{Engine, EngineShared};

/// How long the recorder waits for more outcomes after the first before writing.
const RECORD_LINGER: Duration = Duration::from_millis(5);
/// Most outcomes written in one call.
const BATCH: usize = 2000;
/// Attempts to write one batch that fails for a reason other than storage being unavailable,
/// before giving up on it (its claims are then released at shutdown, restart or lease expiry,
/// and the deliveries are sent again: at least once).
const WRITE_TRIES: u32 = 30;

/// Wait before retry `tries`: 100 ms doubling to 5 s.
fn backoff(tries: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << tries.min(6)).min(5000))
}

/// Runs until every sender is dropped and the channel is drained.
pub(crate) async fn run(
    shared: Arc<EngineShared>,
    mut outcomes: mpsc::UnboundedReceiver<AttemptOutcome>,
) {
    // Reused from batch to batch; each batch moves out of it into a shared slice.
    let mut received = Vec::with_capacity(BATCH);
    while outcomes.recv_many(&mut received, BATCH).await > 0 {
        // A few milliseconds do not matter here (the callback already has its notification;
        // once sent, the batch goes ahead of other writes in the SQLite writer), while every
        // write is a commit: without this wait, batches at 30,000 attempts/s held about ten
        // outcomes and the store committed 3,400 times a second.
        let linger_until = tokio::time::Instant::now() + RECORD_LINGER;
        while received.len() < BATCH {
            let room = BATCH - received.len();
            match tokio::time::timeout_at(linger_until, outcomes.recv_many(&mut received, room))
                .await
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        // Shared with the store, so a retry below passes it again without copying the
        // outcomes' strings; the elements move, they are not cloned.
        let batch: Arc<[AttemptOutcome]> = received.drain(..).collect();
        let earliest_retry = batch
            .iter()
            .filter_map(|o| match o.next {
                NextStep::RetryAt(at) => Some(at),
                _ => None,
            })
            .min();
        let mut tries = 0u32;
        loop {
            tries += 1;
            match shared.store.record_outcomes(batch.clone()).await {
                Ok(()) => break,
                // Storage down: keep the outcomes and wait for it to come back; the claims stay
                // ours meanwhile, so nothing is sent twice on this node's account.
                Err(error @ StoreError::Unavailable(_)) => {
                    if tries == 1 || tries.is_multiple_of(20) {
                        tracing::warn!(error = %crate::http::error::error_chain(&error), tries, outcomes = batch.len(), "Recording attempt outcomes failed; retrying until storage is back");
                    }
                    tokio::time::sleep(backoff(tries)).await;
                }
                Err(error) if tries < WRITE_TRIES => {
                    tracing::warn!(error = %crate::http::error::error_chain(&error), tries, "Recording attempt outcomes failed; retrying");
                    tokio::time::sleep(backoff(tries)).await;
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
        if let Ok(mut ids) = shared.unrecorded.lock() {
            for outcome in batch.iter() {
                ids.remove(&outcome.delivery_id);
            }
        }
        pause_failing(&shared, &batch).await;
        if let Some(at) = earliest_retry {
            Engine::retry_due_at(&shared, at);
        }
    }
}

/// Pauses the subscriptions of this batch's failures whose callbacks have been failing for
/// `--pause-after` or longer.
async fn pause_failing(shared: &Arc<EngineShared>, batch: &[AttemptOutcome]) {
    let mut keys: Vec<&graphhooks_store::SubscriptionKey> = batch
        .iter()
        .filter(|o| o.attempt.is_some() && o.next != NextStep::Delivered)
        .map(|o| &o.key)
        .collect();
    keys.sort();
    keys.dedup();
    let pause_after = i64::try_from(shared.config.pause_after.as_millis()).unwrap_or(i64::MAX);
    let failing_before = crate::clock::now_ms().saturating_sub(pause_after);
    for key in keys {
        match shared.store.pause_if_failing(key, failing_before).await {
            Ok(true) => {
                let subscription = shared
                    .store
                    .subscription(&key.app_id, &key.object_type)
                    .await
                    .ok()
                    .flatten();
                let failing_since = subscription.as_ref().and_then(|s| s.failing_since);
                tracing::warn!(
                    app_id = key.app_id,
                    object_type = key.object_type,
                    failing_since,
                    "Paused app {}'s {} subscription: its callback has failed for longer than --pause-after; its notifications are kept until it is resumed",
                    key.app_id,
                    key.object_type
                );
                metrics::counter!("graphhooks_subscriptions_paused_total").increment(1);
                if let Ok(mut paused) = shared.paused_lanes.lock() {
                    paused.push(key.clone());
                }
                shared.work.notify_one();
                super::alert::subscription_paused(
                    shared.clone(),
                    key.clone(),
                    subscription.map(|s| s.callback_url).unwrap_or_default(),
                    failing_since,
                );
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(error = %crate::http::error::error_chain(&error), "Could not check whether to pause a failing subscription")
            }
        }
    }
}
