//! The PostgreSQL store: one database shared by any number of `graphhooks serve` nodes.
//!
//! - Ingest is one multi-row insert per call (`unnest` arrays), with the changes queued for
//!   fan-out in the same transaction ([`changes`]).
//! - Fan-out rounds run one at a time across nodes under an advisory lock and read the queue in
//!   id order ([`fanout`]).
//! - Claims take the oldest due deliveries with `FOR UPDATE SKIP LOCKED`, only from lanes (one
//!   per subscription) this node owns, adopting unowned lanes with due work as they go; outcomes
//!   are recorded in batches ([`deliveries`]).
//! - Nodes renew leases; a node whose lease lapses is reaped and its claims and lanes go back to
//!   the pool ([`nodes`]). LISTEN/NOTIFY carries wake-ups between nodes ([`events`]).
//!
//! Fan-out rounds, claims and attempt outcomes commit with `synchronous_commit = off`, on a
//! small pool of their own: they are most of the commits under load, and none of them needs
//! its own WAL flush. A crash of PostgreSQL loses at most the last fraction of a second of
//! them, and that work is redone from the durable changes or sent again, which at-least-once
//! delivery allows (the SQLite store makes the same choice). Accepted changes and API writes
//! wait for their flush as usual.
//!
//! [`migrate`](schema) runs on open, under an advisory lock.

mod apps;
mod catalog;
mod changes;
mod copy;
mod deliveries;
mod error;
mod events;
mod fanout;
mod nodes;
mod rows;
mod schema;
mod subscriptions;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use graphhooks_core::catalog::{ObjectType, ObjectTypeUpdate};
use graphhooks_core::model::{
    App, AppMode, Change, Delivery, Grant, NewChange, Role, Secret, Subscription,
};
use graphhooks_store::{
    AppStats, AttemptOutcome, ChangeRecord, ClaimRequest, ClaimedDelivery, DeliveryFilter,
    DeliveryRecord, ExplainFacts, FanoutReport, Heartbeat, Install, NewDelivery, Planner,
    QueueStats, ReplayReport, Store, StoreError, StoreEvent, StoreResult, SubscriptionKey,
};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::broadcast;

use crate::error::SqlResultExt;

/// Options for opening the store.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections in the pool.
    pub pool_size: u32,
    /// How long to wait for a free connection before a call fails as unavailable.
    pub acquire_timeout: Duration,
    /// Whether to listen for other nodes' notifications.
    pub listen: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 16,
            acquire_timeout: Duration::from_secs(5),
            listen: true,
        }
    }
}

/// Connections of the relaxed pool (fan-out, claims and outcomes): each of those runs one at a
/// time per node, so a few are plenty.
const RELAXED_POOL_SIZE: u32 = 4;

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
    /// Connections whose commits do not wait for the WAL flush (see the module docs).
    relaxed: PgPool,
    events: broadcast::Sender<StoreEvent>,
    /// Nodes of this process that have heartbeated at least once (to tell "first heartbeat"
    /// from "my lease lapsed and I was reaped").
    registered: Mutex<HashSet<String>>,
    /// Whether another node may be listening, as of this store's last heartbeat (true until
    /// the first). Ingest and fan-out rounds notify only then: a notifying commit takes a lock
    /// that serialises every other notifying commit in the database, which showed in the
    /// healthy callbacks' p99 with failing ones beside them, and a node alone ignores its own
    /// notifications anyway. A node that joins is heard of at the next heartbeat; until then
    /// it finds this node's work by polling, as it would a missed notification.
    others: AtomicBool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, applies migrations, and starts listening for other nodes' notifications.
    pub async fn open(url: &str, options: PostgresOptions) -> StoreResult<PostgresStore> {
        let connect: PgConnectOptions = url
            .parse()
            .map_err(|error| StoreError::other(format!("invalid PostgreSQL URL: {error}")))?;
        let instance = events::new_instance();
        let connect = connect
            .application_name("graphhooks")
            .options([(events::INSTANCE_SETTING, instance.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(2))
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(true)
            .connect_with(connect.clone())
            .await
            .store()?;
        schema::migrate(&pool).await?;
        // Startup parameters, so they cost no statement per transaction. Fan-out rounds wait
        // for each other's advisory lock; a round stuck behind a lost one gives up and retries.
        let relaxed = PgPoolOptions::new()
            .max_connections(RELAXED_POOL_SIZE.min(options.pool_size.max(2)))
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(true)
            .connect_with(connect.options([("synchronous_commit", "off"), ("lock_timeout", "10s")]))
            .await
            .store()?;
        let (events, _) = broadcast::channel(64);
        if options.listen {
            tokio::spawn(events::listen(pool.clone(), events.clone(), instance));
        }
        Ok(PostgresStore {
            pool,
            relaxed,
            events,
            registered: Mutex::new(HashSet::new()),
            others: AtomicBool::new(true),
        })
    }

    /// Closes the pools (and with them the listener).
    pub async fn close(&self) {
        self.relaxed.close().await;
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn health(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.store()?;
        Ok(())
    }

    fn shared(&self) -> bool {
        true
    }

    fn events(&self) -> Option<broadcast::Receiver<StoreEvent>> {
        Some(self.events.subscribe())
    }

    async fn heartbeat(&self, node: &str, ttl: Duration) -> StoreResult<Heartbeat> {
        let registered_before = self
            .registered
            .lock()
            .map(|set| set.contains(node))
            .unwrap_or(true);
        let (beat, others) = nodes::heartbeat(&self.pool, node, ttl, registered_before).await?;
        self.others.store(others, Ordering::Relaxed);
        if let Ok(mut set) = self.registered.lock() {
            set.insert(node.to_owned());
        }
        Ok(beat)
    }

    async fn release_unheld_claims(&self, node: &str, held: &[i64]) -> StoreResult<u64> {
        deliveries::release_unheld(&self.pool, node, held).await
    }

    async fn release_lanes(&self, node: &str, keys: &[SubscriptionKey]) -> StoreResult<()> {
        deliveries::release_lanes(&self.pool, node, keys).await
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        catalog::setting(&self.pool, key).await
    }

    async fn settings(&self) -> StoreResult<Vec<(String, String)>> {
        catalog::settings(&self.pool).await
    }

    async fn set_setting_once(&self, key: &str, value: &str) -> StoreResult<bool> {
        catalog::set_setting_once(&self.pool, key, value).await
    }

    async fn seed_object_types(&self, types: Vec<ObjectType>) -> StoreResult<()> {
        catalog::seed(&self.pool, &types).await
    }

    async fn object_types(&self) -> StoreResult<Vec<ObjectType>> {
        let mut connection = self.pool.acquire().await.store()?;
        catalog::load(&mut connection, None, true).await
    }

    async fn put_object_type(
        &self,
        name: &str,
        update: ObjectTypeUpdate,
    ) -> StoreResult<ObjectType> {
        catalog::put(&self.pool, name, update).await
    }

    async fn create_app(&self, app: App) -> StoreResult<()> {
        apps::create(&self.pool, &app).await
    }

    async fn app(&self, id: &str) -> StoreResult<Option<App>> {
        apps::get(&self.pool, id).await
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        apps::all(&self.pool).await
    }

    async fn update_app(
        &self,
        id: &str,
        name: Option<String>,
        mode: Option<AppMode>,
    ) -> StoreResult<App> {
        apps::update(&self.pool, id, name, mode).await
    }

    async fn delete_app(&self, id: &str) -> StoreResult<()> {
        apps::delete(&self.pool, id).await
    }

    async fn rotate_secret(
        &self,
        id: &str,
        secret: Secret,
        previous_until_ms: i64,
    ) -> StoreResult<()> {
        apps::rotate_secret(&self.pool, id, &secret, previous_until_ms).await
    }

    async fn put_role(&self, app_id: &str, user_id: &str, role: Role) -> StoreResult<()> {
        apps::put_role(&self.pool, app_id, user_id, role).await
    }

    async fn delete_role(&self, app_id: &str, user_id: &str) -> StoreResult<()> {
        apps::delete_role(&self.pool, app_id, user_id).await
    }

    async fn roles(&self, app_id: &str) -> StoreResult<Vec<(String, Role)>> {
        apps::roles(&self.pool, app_id).await
    }

    async fn put_grant(&self, grant: Grant) -> StoreResult<()> {
        apps::put_grant(&self.pool, &grant).await
    }

    async fn delete_grant(
        &self,
        app_id: &str,
        object_type: &str,
        object_id: &str,
    ) -> StoreResult<()> {
        apps::delete_grant(&self.pool, app_id, object_type, object_id).await
    }

    async fn grants(&self, app_id: &str) -> StoreResult<Vec<Grant>> {
        apps::grants(&self.pool, app_id).await
    }

    async fn subscriptions(&self, app_id: &str) -> StoreResult<Vec<Subscription>> {
        subscriptions::for_app(&self.pool, app_id).await
    }

    async fn subscription(
        &self,
        app_id: &str,
        object_type: &str,
    ) -> StoreResult<Option<Subscription>> {
        subscriptions::get(&self.pool, app_id, object_type).await
    }

    async fn put_subscription(&self, subscription: Subscription) -> StoreResult<()> {
        subscriptions::put(&self.pool, &subscription).await
    }

    async fn delete_subscription(&self, app_id: &str, object_type: &str) -> StoreResult<()> {
        subscriptions::delete(&self.pool, app_id, object_type).await
    }

    async fn insert_changes(&self, new: Vec<NewChange>) -> StoreResult<Vec<i64>> {
        changes::insert(&self.pool, &new, self.others.load(Ordering::Relaxed)).await
    }

    async fn change(&self, id: i64) -> StoreResult<Option<Change>> {
        changes::get(&self.pool, id).await
    }

    async fn fan_out(
        &self,
        limit: usize,
        now_ms: i64,
        planner: Planner,
    ) -> StoreResult<FanoutReport> {
        fanout::run(
            &self.relaxed,
            limit,
            now_ms,
            &planner,
            self.others.load(Ordering::Relaxed),
        )
        .await
    }

    async fn explain_facts(
        &self,
        change_id: i64,
        app_id: Option<&str>,
    ) -> StoreResult<Option<ExplainFacts>> {
        fanout::explain_facts(&self.pool, change_id, app_id).await
    }

    async fn insert_delivery(&self, delivery: NewDelivery, now_ms: i64) -> StoreResult<i64> {
        deliveries::insert(&self.pool, &delivery, now_ms).await
    }

    async fn claim_due(
        &self,
        node: &str,
        now_ms: i64,
        request: &ClaimRequest,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        deliveries::claim_due(&self.relaxed, node, now_ms, request).await
    }

    async fn next_due_ms(&self) -> StoreResult<Option<i64>> {
        deliveries::next_due_ms(&self.pool).await
    }

    async fn record_outcomes(&self, outcomes: Arc<[AttemptOutcome]>) -> StoreResult<()> {
        deliveries::record(&self.relaxed, &outcomes).await
    }

    async fn release_claims(&self, node: Option<&str>) -> StoreResult<u64> {
        deliveries::release_claims(&self.pool, node).await
    }

    async fn delivery(&self, id: i64) -> StoreResult<Option<Delivery>> {
        deliveries::get(&self.pool, id).await
    }

    async fn deliveries(&self, filter: DeliveryFilter) -> StoreResult<Vec<Delivery>> {
        deliveries::list(&self.pool, &filter).await
    }

    async fn app_stats(&self, since_ms: i64) -> StoreResult<Vec<AppStats>> {
        deliveries::app_stats(&self.pool, since_ms).await
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        deliveries::queue_stats(&self.pool).await
    }

    async fn pause_if_failing(
        &self,
        key: &SubscriptionKey,
        failing_before_ms: i64,
    ) -> StoreResult<bool> {
        deliveries::pause_if_failing(&self.pool, key, failing_before_ms).await
    }

    async fn resume_subscription(
        &self,
        app_id: &str,
        object_type: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        deliveries::resume(&self.pool, app_id, object_type, now_ms).await
    }

    async fn replay(
        &self,
        app_id: &str,
        window: (i64, i64),
        object_type: Option<&str>,
        now_ms: i64,
        planner: Planner,
    ) -> StoreResult<ReplayReport> {
        fanout::replay(&self.pool, app_id, window, object_type, now_ms, &planner).await
    }

    async fn install_app(&self, grant: Grant, subscribed_fields: Vec<String>) -> StoreResult<()> {
        apps::install(&self.pool, &grant, &subscribed_fields).await
    }

    async fn installs(&self, object_id: &str) -> StoreResult<Vec<Install>> {
        apps::installs(&self.pool, object_id).await
    }

    async fn uninstall_app(
        &self,
        app_id: &str,
        object_type: Option<&str>,
        object_id: &str,
    ) -> StoreResult<u64> {
        apps::uninstall(&self.pool, app_id, object_type, object_id).await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        catalog::put_setting(&self.pool, key, value).await
    }

    async fn delete_setting(&self, key: &str) -> StoreResult<bool> {
        catalog::delete_setting(&self.pool, key).await
    }

    async fn export_changes(&self, after: i64, limit: usize) -> StoreResult<Vec<ChangeRecord>> {
        copy::export_changes(&self.pool, after, limit).await
    }

    async fn import_changes(&self, changes: Vec<ChangeRecord>) -> StoreResult<()> {
        copy::import_changes(&self.pool, &changes).await
    }

    async fn export_deliveries(
        &self,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        copy::export_deliveries(&self.pool, after, limit).await
    }

    async fn import_deliveries(&self, deliveries: Vec<DeliveryRecord>) -> StoreResult<()> {
        copy::import_deliveries(&self.pool, &deliveries).await
    }

    async fn redeliver(&self, id: i64, now_ms: i64) -> StoreResult<()> {
        deliveries::redeliver(&self.pool, id, now_ms).await
    }
}
