//! The delivery engine: accepted changes in, signed notifications out.
//!
//! # Pipeline
//! 1. **Ingest** stores changes durably and wakes fan-out ([`Engine::changes_accepted`]).
//! 2. **Fan-out** ([`fanout`]) waits `--batch-linger` for more, then runs rounds: the store reads
//!    the changes past its cursor, the core planner applies eligibility and batches per (app,
//!    object type), and the store writes the deliveries and the new cursor in one transaction.
//!    A crash before that commit replays the round; after it, nothing is lost or doubled.
//!    On a store only this node writes to, fan-out first asks dispatch how much room it has
//!    ([`dispatch::Handover`]) and the round claims that much of its new work as it writes
//!    it, handing it straight to dispatch: no claim has to read it back and rewrite it.
//! 3. **Dispatch** ([`dispatch`]) claims due deliveries in batches for this node and keeps one
//!    *lane* per subscription. A lane sends at most `--callback-concurrency` requests at once and
//!    holds at most [`dispatch::LANE_HELD_MAX`] claims; full lanes are skipped when claiming, so a
//!    hanging or failing callback only ever occupies its own lane.
//! 4. **Send** ([`send`]) signs the exact body bytes, POSTs with a timeout, and turns the result
//!    into an outcome: delivered, retry at a time from the retry policy, or failed once the window
//!    has ended. No transaction is open while a request is in flight.
//! 5. **Record** ([`record`]) writes outcomes in batches (attempt rows, delivery state, the
//!    subscription's failing-since clock) and releases the claims.
//!
//! # Invariants
//! - A delivery is *in flight* from its claim until its outcome is recorded. A crash in between
//!   leaves the claim; on restart (SQLite) or lease expiry (shared stores) it is released and the
//!   delivery is sent again. Delivery is therefore at least once; receivers de-duplicate by
//!   `X-Graphhooks-Delivery`, which is stable across attempts.
//! - Per (app, object) order: a lane never starts a first attempt whose objects overlap a
//!   delivery in flight or an earlier one still queued, so deliveries that succeed on their first
//!   attempt arrive in order. Retries are exempt: they are already out of order.
//! - On a store several nodes share, each node heartbeats its lease ([`nodes`]); a node that
//!   stops heartbeating is reaped by the others and its claims become due again. A
//!   subscription's deliveries go through one node at a time (its lane owner), so the
//!   per-subscription concurrency limit and per-object order hold across nodes.
//! - A subscription whose callback has failed continuously for `--pause-after` is paused by the
//!   recorder: its unclaimed deliveries become `paused`, claims skip it, dispatch drops what it
//!   holds queued for it, an operator alert goes out ([`alert`]), and resuming makes the backlog
//!   due again, oldest first.
//! - Graceful shutdown stops claiming, lets in-flight attempts finish for a short grace period,
//!   records what finished, and releases every claim it still holds.

pub mod alert;
pub mod client;
pub mod dispatch;
pub mod fanout;
pub mod nodes;
pub mod record;
pub mod send;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use graphhooks_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use client::CallbackClient;

/// What the engine's tasks share.
pub(crate) struct EngineShared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: Arc<Config>,
    pub(crate) client: CallbackClient,
    /// The client for operator alerts (the operator's own endpoint: private addresses allowed).
    pub(crate) alert_client: CallbackClient,
    /// Subscriptions paused since dispatch last looked: it drops what it holds queued for them.
    pub(crate) paused_lanes: std::sync::Mutex<Vec<graphhooks_store::SubscriptionKey>>,
    /// Deliveries whose attempt finished but whose outcome is not recorded yet: still claimed
    /// by this node, and held as far as reconciliation is concerned.
    pub(crate) unrecorded: std::sync::Mutex<rustc_hash::FxHashSet<i64>>,
    /// This process's claim owner name.
    pub(crate) node_id: String,
    /// Wakes fan-out: changes were accepted.
    pub(crate) changes: Notify,
    /// Wakes dispatch: deliveries may be due.
    pub(crate) work: Notify,
    /// The earliest retry time recorded since dispatch last looked (unix ms; `i64::MAX` = none).
    pub(crate) next_retry_ms: AtomicI64,
    /// Set when this node learns it was reaped: dispatch drops what it holds queued.
    pub(crate) reaped: AtomicBool,
    /// Whether this node holds a lease (always, on a store only it uses). Dispatch claims
    /// nothing before: other nodes' reapers release claims of nodes without one.
    pub(crate) registered: tokio::sync::watch::Sender<bool>,
    pub(crate) attempt_metrics: send::AttemptMetrics,
}

/// Handle to the engine, cheap to clone; API handlers use it to wake the tasks.
#[derive(Clone)]
pub struct Engine {
    pub(crate) shared: Arc<EngineShared>,
}

impl Engine {
    /// Creates the engine; its tasks start with [`Engine::spawn`].
    pub(crate) fn new(
        store: Arc<dyn Store>,
        config: Arc<Config>,
        client: CallbackClient,
        alert_client: CallbackClient,
    ) -> Engine {
        // Host, process and a random part: readable in logs and the nodes table, unique even
        // when a process id is reused.
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into());
        let node_id = format!(
            "{host}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Engine {
            shared: Arc::new(EngineShared {
                config,
                client,
                alert_client,
                paused_lanes: std::sync::Mutex::new(Vec::new()),
                unrecorded: std::sync::Mutex::new(rustc_hash::FxHashSet::default()),
                node_id,
                changes: Notify::new(),
                work: Notify::new(),
                next_retry_ms: AtomicI64::new(i64::MAX),
                reaped: AtomicBool::new(false),
                registered: tokio::sync::watch::Sender::new(!store.shared()),
                attempt_metrics: send::AttemptMetrics::register(),
                store,
            }),
        }
    }

    /// Starts fan-out and dispatch (with its recorder) on `tracker`; they stop on `shutdown`.
    pub(crate) fn spawn(&self, tracker: &TaskTracker, shutdown: CancellationToken) {
        // Fan-out claims new work as it writes it only on a store no other node writes to:
        // elsewhere lanes move between nodes, which the handover does not arbitrate.
        let (handover, offers) = tokio::sync::mpsc::unbounded_channel();
        let handover = (!self.shared.store.shared()).then_some(handover);
        tracker.spawn(fanout::run(self.shared.clone(), shutdown.clone(), handover));
        if self.shared.store.shared() {
            tracker.spawn(nodes::heartbeat(self.shared.clone(), shutdown.clone()));
        }
        if let Some(events) = self.shared.store.events() {
            tracker.spawn(nodes::forward_events(
                self.shared.clone(),
                events,
                shutdown.clone(),
            ));
        }
        tracker.spawn(dispatch::run(self.shared.clone(), shutdown, offers));
    }

    /// Tells fan-out that changes were accepted.
    pub fn changes_accepted(&self) {
        self.shared.changes.notify_one();
    }

    /// Tells dispatch that deliveries may be due now (created, redelivered, resumed).
    pub fn deliveries_due(&self) {
        self.shared.work.notify_one();
    }

    /// Tells dispatch a retry is due at `at_ms`.
    pub(crate) fn retry_due_at(shared: &EngineShared, at_ms: i64) {
        shared.next_retry_ms.fetch_min(at_ms, Ordering::AcqRel);
        shared.work.notify_one();
    }
}
