//! The dispatch task: claims due deliveries, queues them per subscription (a *lane*), and runs
//! at most `--callback-concurrency` attempts per lane at a time, in per-object order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use graphhooks_store::{AttemptOutcome, ClaimedDelivery, NextStep, SubscriptionKey};
use tokio::sync::mpsc;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{EngineShared, record, send};
use crate::clock::now_ms;

/// Most claims a healthy lane holds (queued + in flight); a full lane is skipped when claiming.
/// A lane whose last attempt failed holds no more than it can send at once, so callbacks that
/// hang or fail cannot take the node's room from healthy ones.
pub const LANE_HELD_MAX: usize = 1000;
/// Most body bytes one lane holds queued.
const LANE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most claims the node holds in all.
const HELD_MAX: usize = 20_000;
/// Most body bytes the node holds queued in all.
const HELD_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Most deliveries one claim takes.
const CLAIM_BATCH: usize = 500;
/// How far into a lane's queue to look for a delivery whose objects are not busy.
const ORDER_SCAN: usize = 64;
/// Longest idle wait before looking for due work again (retries, other nodes' work).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How long a lane stays empty before this node gives it back (shared stores only), so a busy
/// subscription keeps its node and an idle one can go to whichever node sees it next.
const LANE_IDLE_RELEASE: Duration = Duration::from_secs(2);
/// How often a node on a shared store reconciles its claims with the store.
const RECONCILE_EVERY: Duration = Duration::from_secs(5);
/// Shortest idle wait, so due work that cannot be claimed yet does not make the loop spin.
const DUE_RECHECK: Duration = Duration::from_millis(20);

/// One subscription's queue and in-flight attempts.
#[derive(Default)]
struct Lane {
    queue: VecDeque<ClaimedDelivery>,
    queued_bytes: usize,
    in_flight: usize,
    /// Object ids of first attempts in flight, with how many touch each.
    busy: HashMap<String, u32>,
}

impl Lane {
    fn held(&self) -> usize {
        self.queue.len() + self.in_flight
    }

    /// Whether the lane holds `cap` claims or its byte limit.
    fn full(&self, cap: usize) -> bool {
        self.held() >= cap || self.queued_bytes >= LANE_BYTES_MAX
    }

    /// The index of the next delivery that may start without overtaking an earlier one for the
    /// same object.
    fn next_ready(&self) -> Option<usize> {
        let mut blocked: HashSet<&str> = HashSet::new();
        for (index, delivery) in self.queue.iter().take(ORDER_SCAN).enumerate() {
            if delivery.attempts_made > 0 {
                return Some(index);
            }
            let conflict = delivery
                .object_ids
                .iter()
                .any(|o| self.busy.contains_key(o) || blocked.contains(o.as_str()));
            if !conflict {
                return Some(index);
            }
            blocked.extend(delivery.object_ids.iter().map(String::as_str));
        }
        None
    }
}

/// What a finished send task hands back.
struct Completion {
    outcome: AttemptOutcome,
}

/// Bookkeeping of one running send, kept outside the task so an aborted or panicked task can
/// still be accounted for.
struct Running {
    key: SubscriptionKey,
    delivery_id: i64,
    /// Object ids registered as busy (first attempts only).
    objects: Vec<String>,
}

struct Dispatcher {
    shared: Arc<EngineShared>,
    lanes: HashMap<SubscriptionKey, Lane>,
    held: usize,
    sends: JoinSet<Completion>,
    running: HashMap<Id, Running>,
    outcomes: mpsc::UnboundedSender<AttemptOutcome>,
    /// Body bytes of queued claims.
    held_bytes: usize,
    /// Lanes whose last finished attempt failed.
    failing: HashSet<SubscriptionKey>,
    /// Lanes that became empty, and when (shared stores give them back after a while).
    emptied: HashMap<SubscriptionKey, Instant>,
    last_lane_sweep: Instant,
    last_reconcile: Instant,
    /// Reconcile at the next turn of the loop (after dropping work).
    reconcile_now: bool,
}

impl Dispatcher {
    /// Claims what there is room for; returns whether more may be due right now.
    async fn claim(&mut self) -> bool {
        let room = HELD_MAX.saturating_sub(self.held);
        if room == 0 || self.held_bytes >= HELD_BYTES_MAX {
            return false;
        }
        let limit = room.min(CLAIM_BATCH);
        let skip: Vec<SubscriptionKey> = self
            .lanes
            .iter()
            .filter(|(key, lane)| lane.full(self.lane_cap(key)))
            .map(|(key, _)| key.clone())
            .collect();
        let claimed = match self
            .shared
            .store
            .claim_due(&self.shared.node_id, now_ms(), limit, &skip)
            .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(error = %crate::http::error::error_chain(&error), "Claiming due deliveries failed; retrying shortly");
                return false;
            }
        };
        let count = claimed.len();
        let mut touched = HashSet::new();
        for delivery in claimed {
            self.emptied.remove(&delivery.key);
            touched.insert(delivery.key.clone());
            self.held += 1;
            self.held_bytes += delivery.body.len();
            let lane = self.lanes.entry(delivery.key.clone()).or_default();
            lane.queued_bytes += delivery.body.len();
            lane.queue.push_back(delivery);
        }
        for key in touched {
            self.start_ready(&key);
        }
        count == limit
    }

    /// How many claims a lane may hold: few while its callback fails.
    fn lane_cap(&self, key: &SubscriptionKey) -> usize {
        if self.failing.contains(key) {
            self.shared.config.callback_concurrency.max(1)
        } else {
            LANE_HELD_MAX
        }
    }

    /// Starts as many queued deliveries of a lane as its concurrency allows.
    fn start_ready(&mut self, key: &SubscriptionKey) {
        let concurrency = self.shared.config.callback_concurrency.max(1);
        loop {
            let Some(lane) = self.lanes.get_mut(key) else {
                return;
            };
            if lane.in_flight >= concurrency {
                return;
            }
            let Some(index) = lane.next_ready() else {
                return;
            };
            let Some(mut delivery) = lane.queue.remove(index) else {
                return;
            };
            lane.queued_bytes = lane.queued_bytes.saturating_sub(delivery.body.len());
            self.held_bytes = self.held_bytes.saturating_sub(delivery.body.len());
            lane.in_flight += 1;
            let objects = if delivery.attempts_made == 0 {
                let objects = std::mem::take(&mut delivery.object_ids);
                for object in &objects {
                    *lane.busy.entry(object.clone()).or_insert(0) += 1;
                }
                objects
            } else {
                Vec::new()
            };
            let delivery_id = delivery.id;
            let shared = self.shared.clone();
            let handle = self.sends.spawn(async move {
                Completion {
                    outcome: send::attempt(&shared, delivery).await,
                }
            });
            self.running.insert(
                handle.id(),
                Running {
                    key: key.clone(),
                    delivery_id,
                    objects,
                },
            );
        }
    }

    /// Accounts for a finished send; returns whether room opened that a claim could use.
    fn complete(&mut self, joined: Result<(Id, Completion), JoinError>) -> bool {
        let (id, completion, failure) = match joined {
            Ok((id, completion)) => (id, Some(completion), None),
            Err(error) => (
                error.id(),
                None,
                error.is_panic().then(|| error.to_string()),
            ),
        };
        let Some(running) = self.running.remove(&id) else {
            return false;
        };
        if let Some(error) = failure {
            tracing::error!(
                delivery_id = running.delivery_id,
                %error,
                "An attempt of delivery {} panicked; it is sent again once its claim is released",
                running.delivery_id
            );
        }
        if let Some(completion) = completion {
            if completion.outcome.next == NextStep::Delivered {
                self.failing.remove(&running.key);
            } else {
                self.failing.insert(running.key.clone());
            }
            if self.outcomes.send(completion.outcome).is_err() {
                tracing::error!(
                    delivery_id = running.delivery_id,
                    "The outcome recorder has stopped; the outcome of delivery {} was not recorded",
                    running.delivery_id
                );
            }
        }
        self.held = self.held.saturating_sub(1);
        let cap = self.lane_cap(&running.key);
        let Some(lane) = self.lanes.get_mut(&running.key) else {
            return true;
        };
        let was_full = lane.full(cap);
        lane.in_flight = lane.in_flight.saturating_sub(1);
        for object in running.objects {
            if let Some(count) = lane.busy.get_mut(&object) {
                *count -= 1;
                if *count == 0 {
                    lane.busy.remove(&object);
                }
            }
        }
        let empty = lane.held() == 0;
        if empty {
            self.lanes.remove(&running.key);
            self.emptied.insert(running.key, Instant::now());
        } else {
            self.start_ready(&running.key);
        }
        was_full || self.held < CLAIM_BATCH
    }

    /// Drops every queued (not yet started) delivery: this node was reaped and others own them
    /// now. Attempts in flight finish and are recorded as usual.
    fn drop_queued(&mut self) {
        let mut dropped = 0;
        for lane in self.lanes.values_mut() {
            dropped += lane.queue.len();
            lane.queue.clear();
            lane.queued_bytes = 0;
        }
        self.held = self.held.saturating_sub(dropped);
        self.held_bytes = 0;
        self.lanes.retain(|_, lane| lane.in_flight > 0);
        // Whatever of that is still claimed in this node's name goes back to the pool.
        self.reconcile_now = true;
        tracing::warn!(
            dropped,
            "Dropped {dropped} queued deliveries after this node was reaped"
        );
    }

    /// Releases claims this node holds in the store but not in memory: every few seconds on a
    /// shared store, and after dropping work. Runs between claims, so no claim is in progress
    /// that it could wrongly release.
    async fn reconcile(&mut self) {
        if !self.shared.store.shared()
            || (!self.reconcile_now && self.last_reconcile.elapsed() < RECONCILE_EVERY)
        {
            return;
        }
        self.reconcile_now = false;
        self.last_reconcile = Instant::now();
        let held: Vec<i64> = self
            .lanes
            .values()
            .flat_map(|lane| lane.queue.iter().map(|d| d.id))
            .chain(self.running.values().map(|r| r.delivery_id))
            .collect();
        match self
            .shared
            .store
            .release_unheld_claims(&self.shared.node_id, &held)
            .await
        {
            Ok(0) => {}
            Ok(released) => {
                tracing::warn!(
                    released,
                    "Released {released} claims this node had lost track of; they go out again"
                );
                self.shared.work.notify_one();
            }
            Err(error) => {
                tracing::warn!(error = %crate::http::error::error_chain(&error), "Could not reconcile claims")
            }
        }
    }

    /// Drops what this node holds queued for subscriptions paused since the last look; their
    /// claims are then released (as `paused`) by the next reconcile.
    fn drop_paused_lanes(&mut self) {
        let keys: Vec<SubscriptionKey> = match self.shared.paused_lanes.lock() {
            Ok(mut keys) => std::mem::take(&mut *keys),
            Err(_) => return,
        };
        for key in keys {
            if let Some(lane) = self.lanes.get_mut(&key) {
                let dropped = lane.queue.len();
                self.held = self.held.saturating_sub(dropped);
                self.held_bytes = self.held_bytes.saturating_sub(lane.queued_bytes);
                lane.queue.clear();
                lane.queued_bytes = 0;
                if lane.in_flight == 0 {
                    self.lanes.remove(&key);
                }
                self.reconcile_now = true;
            }
        }
    }

    /// Gives back lanes that have been empty for a while (shared stores).
    async fn release_idle_lanes(&mut self) {
        if !self.shared.store.shared() || self.last_lane_sweep.elapsed() < LANE_IDLE_RELEASE / 2 {
            return;
        }
        self.last_lane_sweep = Instant::now();
        let idle: Vec<SubscriptionKey> = self
            .emptied
            .iter()
            .filter(|(key, since)| {
                since.elapsed() >= LANE_IDLE_RELEASE && !self.lanes.contains_key(*key)
            })
            .map(|(key, _)| key.clone())
            .collect();
        if idle.is_empty() {
            return;
        }
        match self
            .shared
            .store
            .release_lanes(&self.shared.node_id, &idle)
            .await
        {
            Ok(()) => {
                for key in &idle {
                    self.emptied.remove(key);
                }
            }
            Err(error) => {
                tracing::warn!(error = %crate::http::error::error_chain(&error), "Could not give back idle lanes")
            }
        }
    }

    /// When to look for due work next, at most [`IDLE_POLL`] from now.
    async fn next_wake(&self) -> Instant {
        let now = now_ms();
        let retry = self.shared.next_retry_ms.swap(i64::MAX, Ordering::AcqRel);
        let due = self
            .shared
            .store
            .next_due_ms()
            .await
            .ok()
            .flatten()
            .unwrap_or(i64::MAX);
        let at = retry.min(due);
        let poll = Instant::now() + IDLE_POLL;
        if at == i64::MAX {
            return poll;
        }
        // Work already due but not claimed sits in full lanes (their completions wake us), or
        // became due a moment ago: look again shortly rather than spin.
        let wait = Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
            .max(DUE_RECHECK);
        (Instant::now() + wait).min(poll)
    }
}

/// Runs until `shutdown`, then finishes in-flight attempts for a grace period, records them and
/// releases every claim this node still holds.
pub(crate) async fn run(shared: Arc<EngineShared>, shutdown: CancellationToken) {
    let (outcomes, receiver) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record::run(shared.clone(), receiver));
    let mut dispatcher = Dispatcher {
        shared: shared.clone(),
        lanes: HashMap::new(),
        held: 0,
        sends: JoinSet::new(),
        running: HashMap::new(),
        outcomes,
        held_bytes: 0,
        failing: HashSet::new(),
        emptied: HashMap::new(),
        last_lane_sweep: Instant::now(),
        last_reconcile: Instant::now(),
        reconcile_now: false,
    };
    let mut claim_now = true;
    let mut wake = Instant::now();
    loop {
        if shared.reaped.swap(false, Ordering::AcqRel) {
            dispatcher.drop_queued();
            claim_now = true;
        }
        dispatcher.drop_paused_lanes();
        dispatcher.release_idle_lanes().await;
        dispatcher.reconcile().await;
        if claim_now {
            claim_now = dispatcher.claim().await;
            if !claim_now {
                wake = dispatcher.next_wake().await;
            }
        }
        if claim_now {
            // Drain finished sends without waiting, then claim again.
            while let Some(joined) = dispatcher.sends.try_join_next_with_id() {
                dispatcher.complete(joined);
            }
            if shutdown.is_cancelled() {
                break;
            }
            continue;
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(joined) = dispatcher.sends.join_next_with_id(), if !dispatcher.sends.is_empty() => {
                if dispatcher.complete(joined) {
                    claim_now = true;
                }
            }
            () = shared.work.notified() => claim_now = true,
            () = tokio::time::sleep_until(wake) => claim_now = true,
        }
    }

    let grace = shared.config.delivery_timeout.min(Duration::from_secs(10));
    let deadline = Instant::now() + grace;
    if !dispatcher.sends.is_empty() {
        tracing::info!(
            in_flight = dispatcher.sends.len(),
            "Finishing attempts in flight before stopping"
        );
    }
    while !dispatcher.sends.is_empty() {
        tokio::select! {
            Some(joined) = dispatcher.sends.join_next_with_id() => { dispatcher.complete(joined); }
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!(in_flight = dispatcher.sends.len(), "Abandoning attempts still in flight; they will be sent again");
                dispatcher.sends.abort_all();
                while let Some(joined) = dispatcher.sends.join_next_with_id().await {
                    dispatcher.complete(joined);
                }
            }
        }
    }
    drop(dispatcher);
    if let Err(error) = recorder.await {
        tracing::error!(%error, "The outcome recorder failed while stopping");
    }
    match shared.store.release_claims(Some(&shared.node_id)).await {
        Ok(released) if released > 0 => tracing::info!(
            released,
            "Released {released} claimed deliveries for the next start"
        ),
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(error = %crate::http::error::error_chain(&error), "Could not release claims; they are released at the next start")
        }
    }
}
