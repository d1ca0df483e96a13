//! The dispatch task: claims due deliveries, queues them per subscription (a *lane*), and runs
//! at most `--callback-concurrency` attempts per lane at a time, in per-object order.

use std::collections::VecDeque;

// FxHash rather than SipHash: these maps are touched several times per attempt, keys come from
// the operator and the store (not from untrusted clients), and SipHash showed in profiles.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use graphhooks_store::{
    AttemptOutcome, ClaimRequest, ClaimedDelivery, LaneClaim, NextStep, StoreResult,
    SubscriptionKey,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{EngineShared, record, send};
use crate::clock::now_ms;

/// Most claims a healthy lane holds (queued + in flight); a full lane is asked for nothing.
/// A lane whose last attempt failed holds no more than it can send at once, so callbacks that
/// hang or fail cannot take the node's room from healthy ones.
pub const LANE_HELD_MAX: usize = 4000;
/// Most body bytes one lane holds queued.
const LANE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most claims the node holds in all.
const HELD_MAX: usize = 20_000;
/// Most body bytes the node holds queued in all.
const HELD_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Most deliveries one claim takes in all.
const CLAIM_BATCH: usize = 2000;
/// Most deliveries one claim takes from a lane this node holds nothing of yet.
const NEW_LANE_CLAIM: usize = 1000;
/// Most attempts in flight on this node at once, over all callbacks (and the size of the
/// connection pool that keeps them alive between attempts).
pub const IN_FLIGHT_MAX: usize = 512;
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
    /// Whether an attempt of this lane succeeded since this node took it up. Until then it
    /// holds no more than a first claim gives it, so a callback that hangs from the start
    /// (no attempt has failed yet) cannot take the node's room while its first attempts wait.
    proven: bool,
}

impl Lane {
    fn held(&self) -> usize {
        self.queue.len() + self.in_flight
    }

    /// The index of the next delivery that may start without overtaking an earlier one for the
    /// same object.
    fn next_ready(&self) -> Option<usize> {
        let mut blocked: HashSet<&str> = HashSet::default();
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

/// Messages from fan-out, which claims new work as it writes it (see [`super`]).
pub(crate) enum Handover {
    /// Fan-out is about to write a round: what room is there? `None` is "take nothing". An
    /// offer made is outstanding until its [`Handover::Claimed`] arrives: no claim starts
    /// meanwhile, so work handed over never overtakes older work a claim would bring.
    Ask(oneshot::Sender<Option<ClaimRequest>>),
    /// What the round claimed under the last offer (empty if it failed).
    Claimed(Vec<ClaimedDelivery>),
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
    /// Whether some lane waits for an in-flight slot (the node-wide cap was reached).
    starved: bool,
    /// Lanes that became empty, and when (shared stores give them back after a while).
    emptied: HashMap<SubscriptionKey, Instant>,
    last_lane_sweep: Instant,
    last_reconcile: Instant,
    /// Reconcile at the next turn of the loop (after dropping work).
    reconcile_now: bool,
    /// The last reconcile failed: try again after `RECONCILE_EVERY`.
    reconcile_failed: bool,
}

impl Dispatcher {
    /// What to ask the store for, lane by lane, or `None` when the node has no room.
    fn claim_request(&self) -> Option<ClaimRequest> {
        let room = HELD_MAX.saturating_sub(self.held);
        if room == 0 || self.held_bytes >= HELD_BYTES_MAX {
            return None;
        }
        let total = room.min(CLAIM_BATCH);
        // Each lane held here may take up to its room; lanes known to be failing but holding
        // nothing here take no more than their callback can be sent at once.
        let mut lanes: Vec<LaneClaim> = self
            .lanes
            .iter()
            .map(|(key, lane)| LaneClaim {
                key: key.clone(),
                limit: if lane.queued_bytes >= LANE_BYTES_MAX {
                    0
                } else {
                    self.lane_cap(key).saturating_sub(lane.held())
                },
            })
            .collect();
        let concurrency = self.shared.config.callback_concurrency.max(1);
        lanes.extend(
            self.failing
                .iter()
                .filter(|key| !self.lanes.contains_key(*key))
                .map(|key| LaneClaim {
                    key: key.clone(),
                    limit: concurrency,
                }),
        );
        Some(ClaimRequest {
            lanes,
            other_limit: NEW_LANE_CLAIM,
            total,
        })
    }

    /// Queues what a claim returned and starts what may start; returns whether more may be due
    /// right now (the claim was full).
    fn accept_claim(&mut self, claimed: StoreResult<Vec<ClaimedDelivery>>, total: usize) -> bool {
        match claimed {
            Ok(claimed) => self.queue_claimed(claimed) == total,
            Err(error) => {
                tracing::warn!(error = %crate::http::error::error_chain(&error), "Claiming due deliveries failed; retrying shortly");
                false
            }
        }
    }

    /// Queues claimed deliveries (from a claim or a handover) in their lanes and starts what
    /// may start; returns how many there were.
    fn queue_claimed(&mut self, claimed: Vec<ClaimedDelivery>) -> usize {
        let count = claimed.len();
        // Keys are copied once per lane, not once per delivery.
        let mut touched: HashSet<SubscriptionKey> = HashSet::default();
        for delivery in claimed {
            if !touched.contains(&delivery.key) {
                self.emptied.remove(&delivery.key);
                touched.insert(delivery.key.clone());
            }
            self.held += 1;
            self.held_bytes += delivery.body.len();
            let bytes = delivery.body.len();
            match self.lanes.get_mut(&delivery.key) {
                Some(lane) => {
                    lane.queued_bytes += bytes;
                    lane.queue.push_back(delivery);
                }
                None => {
                    let key = delivery.key.clone();
                    let mut lane = Lane {
                        queued_bytes: bytes,
                        ..Lane::default()
                    };
                    lane.queue.push_back(delivery);
                    self.lanes.insert(key, lane);
                }
            }
        }
        for key in touched {
            self.start_ready(&key);
        }
        count
    }

    /// How many claims a lane may hold: few while its callback fails, a first claim's worth
    /// until an attempt succeeds.
    fn lane_cap(&self, key: &SubscriptionKey) -> usize {
        if self.failing.contains(key) {
            self.shared.config.callback_concurrency.max(1)
        } else if self.lanes.get(key).is_some_and(|lane| !lane.proven) {
            NEW_LANE_CLAIM
        } else {
            LANE_HELD_MAX
        }
    }

    /// A lane whose callback has just started failing keeps queued only what it can send at
    /// once; the rest goes back to the store at the next reconcile, to be claimed again as the
    /// lane's room allows, so a failing or hanging callback does not sit on the node's room.
    fn shed(&mut self, key: &SubscriptionKey) {
        let keep = self.shared.config.callback_concurrency.max(1);
        let Some(lane) = self.lanes.get_mut(key) else {
            return;
        };
        if lane.queue.len() <= keep {
            return;
        }
        let shed: Vec<ClaimedDelivery> = lane.queue.drain(keep..).collect();
        let bytes: usize = shed.iter().map(|d| d.body.len()).sum();
        lane.queued_bytes = lane.queued_bytes.saturating_sub(bytes);
        self.held_bytes = self.held_bytes.saturating_sub(bytes);
        self.held = self.held.saturating_sub(shed.len());
        self.reconcile_now = true;
        tracing::debug!(
            app_id = %key.app_id,
            object_type = %key.object_type,
            released = shed.len(),
            "A callback started failing; giving back {} queued deliveries",
            shed.len()
        );
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
            if self.sends.len() >= IN_FLIGHT_MAX {
                self.starved = true;
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
        if completion.is_none() {
            // Nothing will record this attempt: its claim goes back at the next reconcile (on
            // SQLite too, where reconciling otherwise only follows dropped work).
            self.reconcile_now = true;
        }
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
                if let Some(lane) = self.lanes.get_mut(&running.key) {
                    lane.proven = true;
                }
            } else if self.failing.insert(running.key.clone()) {
                self.shed(&running.key);
            }
            if let Ok(mut ids) = self.shared.unrecorded.lock() {
                ids.insert(running.delivery_id);
            }
            if self.outcomes.send(completion.outcome).is_err() {
                tracing::error!(
                    delivery_id = running.delivery_id,
                    "The outcome recorder has stopped; the outcome of delivery {} was not recorded",
                    running.delivery_id
                );
            }
        }
        let held_before = self.held;
        self.held = self.held.saturating_sub(1);
        let cap = self.lane_cap(&running.key);
        // Claim again when the node or this lane has drained to half of what it may hold, not
        // after every attempt: one claim then serves hundreds of attempts.
        let mut claim = held_before >= HELD_MAX / 2 && self.held < HELD_MAX / 2;
        if let Some(lane) = self.lanes.get_mut(&running.key) {
            let lane_before = lane.held();
            lane.in_flight = lane.in_flight.saturating_sub(1);
            for object in running.objects {
                if let Some(count) = lane.busy.get_mut(&object) {
                    *count -= 1;
                    if *count == 0 {
                        lane.busy.remove(&object);
                    }
                }
            }
            let low = (cap / 2).max(1);
            claim |= lane_before >= low && lane.held() < low;
            if lane.held() == 0 {
                self.lanes.remove(&running.key);
                self.emptied.insert(running.key.clone(), Instant::now());
            } else {
                self.start_ready(&running.key);
            }
        }
        if self.starved {
            // A slot freed up: start what waited for one, in any lane.
            self.starved = false;
            let waiting: Vec<SubscriptionKey> = self
                .lanes
                .iter()
                .filter(|(_, lane)| !lane.queue.is_empty())
                .map(|(key, _)| key.clone())
                .collect();
            for key in waiting {
                self.start_ready(&key);
                if self.starved {
                    break;
                }
            }
        }
        claim
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
    /// shared store or after a failed try, and after dropping work or losing an attempt. Runs
    /// between claims, so no claim is in progress that it could wrongly release.
    async fn reconcile(&mut self) {
        let due = (self.shared.store.shared() || self.reconcile_failed)
            && self.last_reconcile.elapsed() >= RECONCILE_EVERY;
        if !due && !self.reconcile_now {
            return;
        }
        self.reconcile_now = false;
        self.last_reconcile = Instant::now();
        // Held: queued, in flight, or finished with the outcome not yet recorded (the recorder
        // releases those claims itself).
        let unrecorded: Vec<i64> = match self.shared.unrecorded.lock() {
            Ok(ids) => ids.iter().copied().collect(),
            Err(_) => return,
        };
        let held: Vec<i64> = self
            .lanes
            .values()
            .flat_map(|lane| lane.queue.iter().map(|d| d.id))
            .chain(self.running.values().map(|r| r.delivery_id))
            .chain(unrecorded)
            .collect();
        match self
            .shared
            .store
            .release_unheld_claims(&self.shared.node_id, &held)
            .await
        {
            Ok(0) => self.reconcile_failed = false,
            Ok(released) => {
                self.reconcile_failed = false;
                tracing::warn!(
                    released,
                    "Released {released} claims this node had lost track of; they go out again"
                );
                self.shared.work.notify_one();
            }
            Err(error) => {
                // Tried again after `RECONCILE_EVERY`, on every store.
                self.reconcile_failed = true;
                tracing::warn!(error = %crate::http::error::error_chain(&error), "Could not reconcile claims; trying again shortly")
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
pub(crate) async fn run(
    shared: Arc<EngineShared>,
    shutdown: CancellationToken,
    mut handover: mpsc::UnboundedReceiver<Handover>,
) {
    let mut registered = shared.registered.subscribe();
    tokio::select! {
        result = registered.wait_for(|registered| *registered) => {
            if result.is_err() {
                return;
            }
        }
        // Nothing claimed yet, so nothing to finish or release.
        () = shutdown.cancelled() => return,
    }
    let (outcomes, receiver) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record::run(shared.clone(), receiver));
    let mut dispatcher = Dispatcher {
        shared: shared.clone(),
        lanes: HashMap::default(),
        held: 0,
        sends: JoinSet::new(),
        running: HashMap::default(),
        outcomes,
        held_bytes: 0,
        failing: HashSet::default(),
        starved: false,
        emptied: HashMap::default(),
        last_lane_sweep: Instant::now(),
        last_reconcile: Instant::now(),
        reconcile_now: false,
        reconcile_failed: false,
    };
    // A claim runs beside dispatch, never in front of it: claims queue behind other writes in
    // the store, and attempts must keep starting while one is under way. One claim at a time.
    let mut claim_wanted = true;
    let mut claim: Option<tokio::task::JoinHandle<(StoreResult<Vec<ClaimedDelivery>>, usize)>> =
        None;
    let mut wake = Instant::now() + IDLE_POLL;
    // An offer to fan-out is outstanding (see `Handover::Ask`).
    let mut offered = false;
    let mut handover_closed = false;
    loop {
        if shared.reaped.swap(false, Ordering::AcqRel) {
            dispatcher.drop_queued();
            claim_wanted = true;
        }
        dispatcher.drop_paused_lanes();
        if claim.is_none() && !offered {
            // Neither may run while a claim or a handover is under way: it could release
            // what the claim is about to hand over.
            dispatcher.release_idle_lanes().await;
            dispatcher.reconcile().await;
            if claim_wanted && !shutdown.is_cancelled() {
                claim_wanted = false;
                if let Some(request) = dispatcher.claim_request() {
                    let store = shared.store.clone();
                    let node = shared.node_id.clone();
                    claim = Some(tokio::spawn(async move {
                        let total = request.total;
                        (store.claim_due(&node, now_ms(), &request).await, total)
                    }));
                }
            }
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(joined) = dispatcher.sends.join_next_with_id(), if !dispatcher.sends.is_empty() => {
                if dispatcher.complete(joined) {
                    claim_wanted = true;
                }
            }
            finished = async {
                match claim.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            }, if claim.is_some() => {
                claim = None;
                let more = match finished {
                    Ok((claimed, total)) => dispatcher.accept_claim(claimed, total),
                    Err(error) => {
                        tracing::error!(%error, "A claim task failed; claiming again shortly");
                        false
                    }
                };
                if more {
                    claim_wanted = true;
                } else {
                    wake = dispatcher.next_wake().await;
                }
            }
            message = handover.recv(), if !handover_closed => match message {
                // Fan-out has stopped (or failed): an offer it held will not be answered.
                None => {
                    handover_closed = true;
                    offered = false;
                }
                Some(Handover::Ask(reply)) => {
                    let offer = (claim.is_none() && !offered && !shutdown.is_cancelled())
                        .then(|| dispatcher.claim_request())
                        .flatten();
                    let made = offer.is_some();
                    // A fan-out gone before hearing the answer sends no `Claimed`.
                    if reply.send(offer).is_ok() && made {
                        offered = true;
                    }
                }
                Some(Handover::Claimed(claimed)) => {
                    offered = false;
                    dispatcher.queue_claimed(claimed);
                }
            },
            () = shared.work.notified() => claim_wanted = true,
            () = tokio::time::sleep_until(wake) => {
                claim_wanted = true;
                wake = Instant::now() + IDLE_POLL;
            }
        }
    }
    if let Some(claim) = claim.take() {
        // Its claims, if it committed, are released with the rest below.
        claim.abort();
    }
    // Fan-out waiting for an answer gets "nothing" and writes its round unclaimed.
    drop(handover);

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
