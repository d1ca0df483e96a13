//! The embedded SQLite store: one database file in WAL mode, one writer thread that group-commits
//! every write ([`writer`]), a pool of read connections ([`readers`]), and a thread that copies
//! the WAL back into the database ([`checkpointer`]). A process holds an
//! exclusive lock on the file while it runs, so claims left by a crashed process can be released
//! at start-up: nobody else can hold them.
//!
//! Queries live by area: [`catalog`], [`apps`], [`subscriptions`], [`changes`], [`fanout`],
//! [`deliveries`]; [`rows`] maps rows to the core model.

mod apps;
mod catalog;
mod changes;
mod checkpointer;
mod claims;
mod copy;
mod deliveries;
mod error;
mod fanout;
mod lane_key;
mod readers;
mod rows;
mod schema;
mod subscriptions;
mod writer;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use graphhooks_core::catalog::{ObjectType, ObjectTypeUpdate};
use graphhooks_core::model::{
    App, AppMode, Change, Delivery, Grant, NewChange, Role, Secret, Subscription,
};
use graphhooks_store::{
    AppStats, AttemptOutcome, ChangeRecord, ClaimRequest, ClaimedDelivery, DeliveryFilter,
    DeliveryRecord, ExplainFacts, FanoutReport, Heartbeat, Install, NewDelivery, NextStep, Planner,
    QueueStats, ReplayReport, Store, StoreError, StoreResult, SubscriptionKey,
};
use rusqlite::Connection;

use crate::checkpointer::Checkpointer;
use crate::claims::{Added, SharedClaims};
use crate::error::SqlResultExt;
use crate::readers::Readers;
use crate::writer::Writer;

/// How durable a commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the WAL on every commit: an accepted change survives power loss (the default).
    Full,
    /// Leave syncing to the OS: survives a process crash, not power loss. Faster.
    Normal,
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Read connections.
    pub readers: usize,
    /// Commit durability.
    pub durability: Durability,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            readers: 4,
            durability: Durability::Full,
        }
    }
}

/// The SQLite store.
pub struct SqliteStore {
    writer: Writer,
    readers: Readers,
    _checkpointer: Checkpointer,
    path: PathBuf,
    /// Held for the life of the store: only one process uses a database file.
    _lock: File,
    /// Node ids that have heartbeated (to tell a first heartbeat from a reaped node's).
    registered: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Claims held, kept in memory ([`claims`]).
    claims: SharedClaims,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies migrations, and takes the
    /// file lock. Fails with [`StoreError::Unavailable`] if another process has it open.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> StoreResult<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| {
                StoreError::Unavailable(
                    format!("cannot create {}: {error}", parent.display()).into(),
                )
            })?;
        }
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| {
                StoreError::Unavailable(format!("cannot open {}: {error}", path.display()).into())
            })?;
        lock.try_lock().map_err(|_| {
            StoreError::Unavailable(
                format!(
                    "{} is in use by another graphhooks process; SQLite serves one node (use PostgreSQL for several)",
                    path.display()
                )
                .into(),
            )
        })?;

        let mut connection = Connection::open(&path).store()?;
        let synchronous = match options.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        connection
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = {synchronous};
                 PRAGMA foreign_keys = ON;
                 PRAGMA busy_timeout = 5000;
                 PRAGMA cache_size = -8192;
                 PRAGMA temp_store = MEMORY;
                 PRAGMA wal_autocheckpoint = 0;"
            ))
            .store()?;
        schema::migrate(&mut connection)?;
        // Plans that do not depend on bound values: without this, SQLite marks a statement
        // whose plan looked at a parameter (to prove a partial index usable) as expired when
        // the parameter changes, and re-prepares it at its next step; the claim statements
        // were re-prepared at almost every claim.
        connection
            .set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
                true,
            )
            .store()?;
        connection.set_prepared_statement_cache_capacity(64);
        let readers = Readers::open(&path, options.readers.max(1))?;
        let checkpointer = Checkpointer::start(&path)?;
        let writer =
            Writer::start(connection, options.durability == Durability::Full).map_err(|error| {
                StoreError::other(format!("cannot start the SQLite writer: {error}"))
            })?;
        Ok(SqliteStore {
            writer,
            readers,
            _checkpointer: checkpointer,
            path,
            _lock: lock,
            registered: std::sync::Mutex::new(std::collections::HashSet::new()),
            claims: SharedClaims::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a writer job that claims, and takes its claims back if its group does not commit.
    async fn claiming<T, F>(&self, urgent: bool, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &SharedClaims, &Added) -> StoreResult<T> + Send + 'static,
    {
        let (claims, added) = (self.claims.clone(), Added::default());
        let job = (claims.clone(), added.clone());
        let work = move |c: &Connection| work(c, &job.0, &job.1);
        self.writer
            .write_then(urgent, work, move |committed| {
                if !committed {
                    claims.undo(&added);
                }
            })
            .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn health(&self) -> StoreResult<()> {
        self.readers
            .read(|c| c.query_row("SELECT 1", [], |_| Ok(())).store())
            .await
    }

    async fn heartbeat(&self, node: &str, ttl: std::time::Duration) -> StoreResult<Heartbeat> {
        let registered_before = self
            .registered
            .lock()
            .map(|set| set.contains(node))
            .unwrap_or(true);
        let node_id = node.to_owned();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let claims = self.claims.clone();
        let (reaped, released) = self
            .writer
            .write_relaxed(move |c| {
                deliveries::heartbeat(c, &claims, &node_id, ttl_ms, now, registered_before)
            })
            .await?;
        if let Ok(mut set) = self.registered.lock() {
            set.insert(node.to_owned());
        }
        Ok(Heartbeat { reaped, released })
    }

    async fn release_unheld_claims(&self, node: &str, held: &[i64]) -> StoreResult<u64> {
        let (node, held) = (node.to_owned(), held.to_vec());
        let claims = self.claims.clone();
        self.writer
            .write_relaxed(move |c| deliveries::release_unheld(c, &claims, &node, &held))
            .await
    }

    async fn release_lanes(&self, node: &str, keys: &[SubscriptionKey]) -> StoreResult<()> {
        let (node, keys) = (node.to_owned(), keys.to_vec());
        self.writer
            .write_relaxed(move |c| deliveries::release_lanes(c, &node, &keys))
            .await
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_owned();
        self.readers.read(move |c| catalog::setting(c, &key)).await
    }

    async fn settings(&self) -> StoreResult<Vec<(String, String)>> {
        self.readers.read(catalog::settings).await
    }

    async fn set_setting_once(&self, key: &str, value: &str) -> StoreResult<bool> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.writer
            .write(move |c| catalog::set_setting_once(c, &key, &value))
            .await
    }

    async fn seed_object_types(&self, types: Vec<ObjectType>) -> StoreResult<()> {
        self.writer.write(move |c| catalog::seed(c, &types)).await
    }

    async fn object_types(&self) -> StoreResult<Vec<ObjectType>> {
        self.readers.read(|c| catalog::all(c, true)).await
    }

    async fn put_object_type(
        &self,
        name: &str,
        update: ObjectTypeUpdate,
    ) -> StoreResult<ObjectType> {
        let name = name.to_owned();
        self.writer
            .write(move |c| catalog::put(c, &name, update))
            .await
    }

    async fn create_app(&self, app: App) -> StoreResult<()> {
        self.writer.write(move |c| apps::create(c, &app)).await
    }

    async fn app(&self, id: &str) -> StoreResult<Option<App>> {
        let id = id.to_owned();
        self.readers.read(move |c| apps::get(c, &id)).await
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        self.readers.read(apps::all).await
    }

    async fn update_app(
        &self,
        id: &str,
        name: Option<String>,
        mode: Option<AppMode>,
    ) -> StoreResult<App> {
        let id = id.to_owned();
        self.writer
            .write(move |c| apps::update(c, &id, name, mode))
            .await
    }

    async fn delete_app(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.writer.write(move |c| apps::delete(c, &id)).await
    }

    async fn rotate_secret(
        &self,
        id: &str,
        secret: Secret,
        previous_until_ms: i64,
    ) -> StoreResult<()> {
        let id = id.to_owned();
        self.writer
            .write(move |c| apps::rotate_secret(c, &id, &secret, previous_until_ms))
            .await
    }

    async fn put_role(&self, app_id: &str, user_id: &str, role: Role) -> StoreResult<()> {
        let (app_id, user_id) = (app_id.to_owned(), user_id.to_owned());
        self.writer
            .write(move |c| apps::put_role(c, &app_id, &user_id, role))
            .await
    }

    async fn delete_role(&self, app_id: &str, user_id: &str) -> StoreResult<()> {
        let (app_id, user_id) = (app_id.to_owned(), user_id.to_owned());
        self.writer
            .write(move |c| apps::delete_role(c, &app_id, &user_id))
            .await
    }

    async fn roles(&self, app_id: &str) -> StoreResult<Vec<(String, Role)>> {
        let app_id = app_id.to_owned();
        self.readers.read(move |c| apps::roles(c, &app_id)).await
    }

    async fn put_grant(&self, grant: Grant) -> StoreResult<()> {
        self.writer.write(move |c| apps::put_grant(c, &grant)).await
    }

    async fn delete_grant(
        &self,
        app_id: &str,
        object_type: &str,
        object_id: &str,
    ) -> StoreResult<()> {
        let (app_id, object_type, object_id) = (
            app_id.to_owned(),
            object_type.to_owned(),
            object_id.to_owned(),
        );
        self.writer
            .write(move |c| apps::delete_grant(c, &app_id, &object_type, &object_id))
            .await
    }

    async fn grants(&self, app_id: &str) -> StoreResult<Vec<Grant>> {
        let app_id = app_id.to_owned();
        self.readers.read(move |c| apps::grants(c, &app_id)).await
    }

    async fn subscriptions(&self, app_id: &str) -> StoreResult<Vec<Subscription>> {
        let app_id = app_id.to_owned();
        self.readers
            .read(move |c| subscriptions::for_app(c, &app_id))
            .await
    }

    async fn subscription(
        &self,
        app_id: &str,
        object_type: &str,
    ) -> StoreResult<Option<Subscription>> {
        let (app_id, object_type) = (app_id.to_owned(), object_type.to_owned());
        self.readers
            .read(move |c| subscriptions::get(c, &app_id, &object_type))
            .await
    }

    async fn put_subscription(&self, subscription: Subscription) -> StoreResult<()> {
        self.writer
            .write(move |c| subscriptions::put(c, &subscription))
            .await
    }

    async fn delete_subscription(&self, app_id: &str, object_type: &str) -> StoreResult<()> {
        let (app_id, object_type) = (app_id.to_owned(), object_type.to_owned());
        let claims = self.claims.clone();
        self.writer
            .write(move |c| subscriptions::delete(c, &claims, &app_id, &object_type))
            .await
    }

    async fn insert_changes(&self, new: Vec<NewChange>) -> StoreResult<Vec<i64>> {
        self.writer.write(move |c| changes::insert(c, &new)).await
    }

    async fn change(&self, id: i64) -> StoreResult<Option<Change>> {
        self.readers.read(move |c| changes::get(c, id)).await
    }

    async fn fan_out(
        &self,
        limit: usize,
        now_ms: i64,
        planner: Planner,
    ) -> StoreResult<FanoutReport> {
        let claims = self.claims.clone();
        self.writer
            .write_relaxed(move |c| fanout::run(c, &claims, limit, now_ms, &planner, None))
            .await
            .map(|(report, _)| report)
    }

    async fn fan_out_and_claim(
        &self,
        limit: usize,
        now_ms: i64,
        planner: Planner,
        node: &str,
        request: &ClaimRequest,
    ) -> StoreResult<(FanoutReport, Vec<ClaimedDelivery>)> {
        let (node, request) = (node.to_owned(), request.clone());
        // Fan-out, not urgent, even though it claims (see the writer's module docs).
        self.claiming(false, move |c, claims, added| {
            let into = fanout::ClaimInto {
                node: &node,
                request: &request,
                added,
            };
            fanout::run(c, claims, limit, now_ms, &planner, Some(into))
        })
        .await
    }

    async fn explain_facts(
        &self,
        change_id: i64,
        app_id: Option<&str>,
    ) -> StoreResult<Option<ExplainFacts>> {
        let app_id = app_id.map(str::to_owned);
        self.readers
            .read(move |c| fanout::explain_facts(c, change_id, app_id.as_deref()))
            .await
    }

    async fn insert_delivery(&self, delivery: NewDelivery, now_ms: i64) -> StoreResult<i64> {
        let claims = self.claims.clone();
        self.writer
            .write(move |c| {
                let id = deliveries::Inserter::new(c)?.insert(
                    &claims,
                    &delivery.planned,
                    delivery.test,
                    now_ms,
                )?;
                deliveries::ensure_lane(
                    c,
                    &delivery.planned.app_id,
                    &delivery.planned.object_type,
                )?;
                Ok(id)
            })
            .await
    }

    async fn claim_due(
        &self,
        node: &str,
        now_ms: i64,
        request: &ClaimRequest,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let (node, request) = (node.to_owned(), request.clone());
        self.claiming(true, move |c, claims, added| {
            deliveries::claim_due(c, claims, added, &node, now_ms, &request)
        })
        .await
    }

    async fn next_due_ms(&self) -> StoreResult<Option<i64>> {
        let claims = self.claims.clone();
        self.readers
            .read(move |c| deliveries::next_due_ms(c, &claims))
            .await
    }

    async fn record_outcomes(&self, outcomes: Arc<[AttemptOutcome]>) -> StoreResult<()> {
        let written = outcomes.clone();
        let claims = self.claims.clone();
        self.writer
            .write_then(
                true,
                move |c| deliveries::record(c, &written),
                // Settled only once committed: until then the delivery stays this node's.
                move |committed| {
                    if committed {
                        let mut claims = claims.lock();
                        for outcome in outcomes.iter() {
                            let retry = matches!(outcome.next, NextStep::RetryAt(_));
                            claims.settle(outcome.delivery_id, &outcome.key, retry);
                        }
                    }
                },
            )
            .await
    }

    async fn release_claims(&self, node: Option<&str>) -> StoreResult<u64> {
        let node = node.map(str::to_owned);
        let claims = self.claims.clone();
        self.writer
            .write_relaxed(move |c| deliveries::release_claims(c, &claims, node.as_deref()))
            .await
    }

    async fn delivery(&self, id: i64) -> StoreResult<Option<Delivery>> {
        self.readers.read(move |c| deliveries::get(c, id)).await
    }

    async fn deliveries(&self, filter: DeliveryFilter) -> StoreResult<Vec<Delivery>> {
        self.readers
            .read(move |c| deliveries::list(c, &filter))
            .await
    }

    async fn app_stats(&self, since_ms: i64) -> StoreResult<Vec<AppStats>> {
        self.readers
            .read(move |c| deliveries::app_stats(c, since_ms))
            .await
    }

    async fn queue_stats(&self) -> StoreResult<QueueStats> {
        self.readers.read(deliveries::queue_stats).await
    }

    async fn pause_if_failing(
        &self,
        key: &SubscriptionKey,
        failing_before_ms: i64,
    ) -> StoreResult<bool> {
        let key = key.clone();
        let claims = self.claims.clone();
        self.writer
            .write_relaxed(move |c| {
                deliveries::pause_if_failing(c, &claims, &key, failing_before_ms)
            })
            .await
    }

    async fn resume_subscription(
        &self,
        app_id: &str,
        object_type: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let (app_id, object_type) = (app_id.to_owned(), object_type.to_owned());
        let claims = self.claims.clone();
        self.writer
            .write(move |c| deliveries::resume(c, &claims, &app_id, &object_type, now_ms))
            .await
    }

    async fn replay(
        &self,
        app_id: &str,
        window: (i64, i64),
        object_type: Option<&str>,
        now_ms: i64,
        planner: Planner,
    ) -> StoreResult<ReplayReport> {
        let (app_id, object_type) = (app_id.to_owned(), object_type.map(str::to_owned));
        let claims = self.claims.clone();
        self.writer
            .write(move |c| {
                fanout::replay(
                    c,
                    &claims,
                    &app_id,
                    window,
                    object_type.as_deref(),
                    now_ms,
                    &planner,
                )
            })
            .await
    }

    async fn install_app(&self, grant: Grant, subscribed_fields: Vec<String>) -> StoreResult<()> {
        self.writer
            .write(move |c| apps::install(c, &grant, &subscribed_fields))
            .await
    }

    async fn installs(&self, object_id: &str) -> StoreResult<Vec<Install>> {
        let object_id = object_id.to_owned();
        self.readers
            .read(move |c| apps::installs(c, &object_id))
            .await
    }

    async fn uninstall_app(
        &self,
        app_id: &str,
        object_type: Option<&str>,
        object_id: &str,
    ) -> StoreResult<u64> {
        let (app_id, object_id) = (app_id.to_owned(), object_id.to_owned());
        let object_type = object_type.map(str::to_owned);
        self.writer
            .write(move |c| apps::uninstall(c, &app_id, object_type.as_deref(), &object_id))
            .await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.writer
            .write(move |c| catalog::put_setting(c, &key, &value))
            .await
    }

    async fn delete_setting(&self, key: &str) -> StoreResult<bool> {
        let key = key.to_owned();
        self.writer
            .write(move |c| catalog::delete_setting(c, &key))
            .await
    }

    async fn export_changes(&self, after: i64, limit: usize) -> StoreResult<Vec<ChangeRecord>> {
        self.readers
            .read(move |c| copy::export_changes(c, after, limit))
            .await
    }

    async fn import_changes(&self, changes: Vec<ChangeRecord>) -> StoreResult<()> {
        self.writer
            .write(move |c| copy::import_changes(c, &changes))
            .await
    }

    async fn export_deliveries(
        &self,
        after: i64,
        limit: usize,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        self.readers
            .read(move |c| copy::export_deliveries(c, after, limit))
            .await
    }

    async fn import_deliveries(&self, deliveries: Vec<DeliveryRecord>) -> StoreResult<()> {
        self.writer
            .write(move |c| copy::import_deliveries(c, &deliveries))
            .await
    }

    async fn redeliver(&self, id: i64, now_ms: i64) -> StoreResult<()> {
        let claims = self.claims.clone();
        self.writer
            .write(move |c| deliveries::redeliver(c, &claims, id, now_ms))
            .await
    }
}
