//! Storage for graphhooks behind one trait, [`Store`], so the server never sees SQL or a driver
//! type. Each backend (SQLite, PostgreSQL) lives in its own crate with its own migrations and
//! passes the same `conformance` suite (feature `testing`).
//!
//! # The delivery queue
//! Deliveries are rows. A row is *due* when its state is `pending` and `due_ms` has passed. A node
//! *claims* due rows in batches ([`Store::claim_due`]), which marks them with its node id and
//! commits at once; it then sends with no transaction open and records each outcome
//! ([`Store::record_outcomes`]), which clears the claim. A row claimed by a node that stops
//! (shutdown, crash) is released ([`Store::release_claims`], or lease expiry on shared backends)
//! and becomes due again: that is how a crash in the middle of a send turns into a redelivery, and
//! why delivery is at least once.
//!
//! On a store several nodes share ([`Store::shared`]), each node renews a lease with
//! [`Store::heartbeat`]; a node whose lease lapses (crash, `kill -9`, partition) is reaped by
//! whichever node heartbeats next, which releases its claims. Each subscription's deliveries are
//! sent by one node at a time, the *lane owner*, so a callback's concurrency limit and
//! per-object order hold across nodes; a node gives a lane back when it has been idle
//! ([`Store::release_lanes`]) and a dead node's lanes are released with its claims.
//!
//! Changes are accepted durably ([`Store::insert_changes`]) and turned into deliveries by
//! [`Store::fan_out`], which reads the changes after a cursor, gathers the facts eligibility needs,
//! lets the caller's planner decide, and stores the planned deliveries and the new cursor in one
//! transaction, so a crash never loses or doubles a change's fan-out.

pub mod copy;
mod error;
mod types;

#[cfg(feature = "testing")]
pub mod conformance;

pub use error::{BoxError, StoreError};
pub use types::*;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use graphhooks_core::catalog::{ObjectType, ObjectTypeUpdate};
use graphhooks_core::model::{
    App, AppMode, Change, Delivery, Grant, NewChange, Role, Secret, Subscription,
};

/// Result of every store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything graphhooks keeps. One method per use case, so each backend can use its best SQL.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks the store is reachable.
    async fn health(&self) -> StoreResult<()>;

    /// Whether several nodes may share this store. A store that is not shared is used by one
    /// process only, which may release every claim at start-up.
    fn shared(&self) -> bool {
        false
    }

    /// Wake-ups from other nodes (changes accepted, deliveries due), when the store carries
    /// them.
    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        None
    }

    /// Renews `node`'s lease for `ttl` and reaps nodes whose lease has lapsed, releasing their
    /// claims and lanes.
    async fn heartbeat(&self, node: &str, ttl: Duration) -> StoreResult<Heartbeat> {
        let _ = (node, ttl);
        Ok(Heartbeat::default())
    }

    /// Releases every claim of `node` except the deliveries in `held`. A node's dispatcher calls
    /// it now and then with what it really holds, so claims it lost track of (a commit whose
    /// answer was lost with the connection, work dropped after being reaped) go back to the pool
    /// while the node lives on.
    async fn release_unheld_claims(&self, node: &str, held: &[i64]) -> StoreResult<u64>;

    /// Gives back lanes `node` owns and no longer needs.
    async fn release_lanes(&self, node: &str, keys: &[SubscriptionKey]) -> StoreResult<()> {
        let _ = (node, keys);
        Ok(())
    }

    /// A value from the key/value settings table (e.g. the hashed admin token).
    async fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Sets `key` to `value` unless it is already set; returns whether this call set it.
    async fn set_setting_once(&self, key: &str, value: &str) -> StoreResult<bool>;
    /// Every setting, by key (for `graphhooks copy`).
    async fn settings(&self) -> StoreResult<Vec<(String, String)>>;

    /// Adds the given types and fields where they do not exist yet; never changes existing ones,
    /// so operators' edits of built-in types survive restarts.
    async fn seed_object_types(&self, types: Vec<ObjectType>) -> StoreResult<()>;
    /// The whole catalog, sorted by type name.
    async fn object_types(&self) -> StoreResult<Vec<ObjectType>>;
    /// Declares a type or adds/updates the named fields of an existing one; returns the result.
    async fn put_object_type(
        &self,
        name: &str,
        update: ObjectTypeUpdate,
    ) -> StoreResult<ObjectType>;

    /// Creates an app; [`StoreError::Conflict`] when the id is taken.
    async fn create_app(&self, app: App) -> StoreResult<()>;
    /// One app.
    async fn app(&self, id: &str) -> StoreResult<Option<App>>;
    /// All apps, by id.
    async fn apps(&self) -> StoreResult<Vec<App>>;
    /// Renames and/or switches the mode of an app.
    async fn update_app(
        &self,
        id: &str,
        name: Option<String>,
        mode: Option<AppMode>,
    ) -> StoreResult<App>;
    /// Deletes an app with its roles, grants, subscriptions and deliveries.
    async fn delete_app(&self, id: &str) -> StoreResult<()>;
    /// Replaces the secret; the old one keeps signing until `previous_until_ms`.
    async fn rotate_secret(
        &self,
        id: &str,
        secret: Secret,
        previous_until_ms: i64,
    ) -> StoreResult<()>;

    /// Sets a person's role on an app.
    async fn put_role(&self, app_id: &str, user_id: &str, role: Role) -> StoreResult<()>;
    /// Removes a role; [`StoreError::NotFound`] if there was none.
    async fn delete_role(&self, app_id: &str, user_id: &str) -> StoreResult<()>;
    /// The roles on an app, by user id.
    async fn roles(&self, app_id: &str) -> StoreResult<Vec<(String, Role)>>;

    /// Creates or replaces a grant.
    async fn put_grant(&self, grant: Grant) -> StoreResult<()>;
    /// Removes a grant; [`StoreError::NotFound`] if there was none.
    async fn delete_grant(
        &self,
        app_id: &str,
        object_type: &str,
        object_id: &str,
    ) -> StoreResult<()>;
    /// An app's grants.
    async fn grants(&self, app_id: &str) -> StoreResult<Vec<Grant>>;

    /// An app's subscriptions, by object type.
    async fn subscriptions(&self, app_id: &str) -> StoreResult<Vec<Subscription>>;
    /// One subscription.
    async fn subscription(
        &self,
        app_id: &str,
        object_type: &str,
    ) -> StoreResult<Option<Subscription>>;
    /// Creates or replaces a subscription.
    async fn put_subscription(&self, subscription: Subscription) -> StoreResult<()>;
    /// Deletes a subscription; [`StoreError::NotFound`] if there was none.
    async fn delete_subscription(&self, app_id: &str, object_type: &str) -> StoreResult<()>;

    /// Stores changes durably (committed before this returns); ids in input order.
    async fn insert_changes(&self, changes: Vec<NewChange>) -> StoreResult<Vec<i64>>;
    /// One change.
    async fn change(&self, id: i64) -> StoreResult<Option<Change>>;

    /// Fans out up to `limit` changes past the cursor: gathers facts, calls `planner`, stores
    /// its deliveries (due at `now_ms`) and advances the cursor, all in one transaction.
    async fn fan_out(
        &self,
        limit: usize,
        now_ms: i64,
        planner: Planner,
    ) -> StoreResult<FanoutReport>;
    /// [`Store::fan_out`], and in the same transaction claims for `node` those of the round's
    /// new deliveries that `request` has room for, as [`Store::claim_due`] would have claimed
    /// them: in lanes the node owns or adopts, and only where no older delivery of the lane
    /// waits unclaimed (it would have gone first). Saves reading back and rewriting what the
    /// round has just written; the engine uses it on stores only it writes to. A store may
    /// claim nothing here (the default); its deliveries are then claimed as usual.
    async fn fan_out_and_claim(
        &self,
        limit: usize,
        now_ms: i64,
        planner: Planner,
        node: &str,
        request: &ClaimRequest,
    ) -> StoreResult<(FanoutReport, Vec<ClaimedDelivery>)> {
        let _ = (node, request);
        Ok((self.fan_out(limit, now_ms, planner).await?, Vec::new()))
    }
    /// Everything needed to explain one change, for one app or all apps.
    async fn explain_facts(
        &self,
        change_id: i64,
        app_id: Option<&str>,
    ) -> StoreResult<Option<ExplainFacts>>;

    /// Stores one delivery outside fan-out (test notifications, replays); returns its id.
    async fn insert_delivery(&self, delivery: NewDelivery, now_ms: i64) -> StoreResult<i64>;
    /// Claims due deliveries for `node`, lane by lane: first adopts unowned lanes that have
    /// due work (up to the node's fair share of the lanes in use among live nodes), then takes
    /// from each lane it owns up to that lane's limit in `request` (or `request.other_limit`),
    /// oldest due first, at most `request.total` in all. Paused subscriptions are skipped.
    /// Commits before returning. Each lane is read through its own index range, so a lane with
    /// a deep backlog costs nothing when it is not asked for.
    async fn claim_due(
        &self,
        node: &str,
        now_ms: i64,
        request: &ClaimRequest,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// When the earliest pending, unclaimed delivery is due (unix ms), if any.
    async fn next_due_ms(&self) -> StoreResult<Option<i64>>;
    /// Records attempts and their consequences, and releases those claims, in one transaction.
    /// The batch is shared, not owned: a caller that retries after a failure passes it again
    /// without copying every outcome's strings.
    async fn record_outcomes(&self, outcomes: Arc<[AttemptOutcome]>) -> StoreResult<()>;
    /// Releases every claim `node` holds (graceful shutdown), or every claim at all when `node`
    /// is `None` (start-up of a single-node store).
    async fn release_claims(&self, node: Option<&str>) -> StoreResult<u64>;
    /// One delivery with its attempts.
    async fn delivery(&self, id: i64) -> StoreResult<Option<Delivery>>;
    /// A page of deliveries, newest first, with their attempts.
    async fn deliveries(&self, filter: DeliveryFilter) -> StoreResult<Vec<Delivery>>;
    /// Counts for metrics: pending and paused deliveries, and when the oldest pending one was
    /// created.
    async fn queue_stats(&self) -> StoreResult<QueueStats>;
    /// Per app with any deliveries: attempts since `since_ms` by outcome, and pending work.
    async fn app_stats(&self, since_ms: i64) -> StoreResult<Vec<AppStats>>;
    /// Pauses the subscription when its callback has been failing since `failing_before_ms` or
    /// earlier; its pending deliveries that are not claimed become `paused`. Returns whether it
    /// paused now (false when it was not failing long enough, or already paused).
    async fn pause_if_failing(
        &self,
        key: &SubscriptionKey,
        failing_before_ms: i64,
    ) -> StoreResult<bool>;
    /// Reactivates a subscription: it is active again, its failing clock is cleared, and its
    /// paused deliveries become due at `now_ms` (so they go out oldest first), each with a new
    /// retry window. Returns how many; [`StoreError::NotFound`] without a subscription.
    async fn resume_subscription(
        &self,
        app_id: &str,
        object_type: &str,
        now_ms: i64,
    ) -> StoreResult<u64>;
    /// Builds again, for one app, the notifications of the changes whose event time is within
    /// `[since, until]` (unix seconds), optionally of one type, with the app's subscription and
    /// grants as they are now, and stores them as new deliveries due at `now_ms`.
    async fn replay(
        &self,
        app_id: &str,
        window: (i64, i64),
        object_type: Option<&str>,
        now_ms: i64,
        planner: Planner,
    ) -> StoreResult<ReplayReport>;
    /// Installs an app on an object (page-like `subscribed_apps`): the grant, with the fields
    /// the object subscribes the app to. Permissions are added to an existing grant's.
    async fn install_app(&self, grant: Grant, subscribed_fields: Vec<String>) -> StoreResult<()>;
    /// The apps installed on (granted) objects with this id, of any type.
    async fn installs(&self, object_id: &str) -> StoreResult<Vec<Install>>;
    /// Removes an app's grants for objects with this id, of one type or (`None`) of any;
    /// returns how many.
    async fn uninstall_app(
        &self,
        app_id: &str,
        object_type: Option<&str>,
        object_id: &str,
    ) -> StoreResult<u64>;
    /// Sets a setting, replacing any value.
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Deletes a setting; returns whether it existed.
    async fn delete_setting(&self, key: &str) -> StoreResult<bool>;

    /// Changes with ids above `after`, oldest first, at most `limit` (for copying a store).
    async fn export_changes(&self, after: i64, limit: usize) -> StoreResult<Vec<ChangeRecord>>;
    /// Stores changes with their ids and fan-out status (into a store being filled by a copy).
    async fn import_changes(&self, changes: Vec<ChangeRecord>) -> StoreResult<()>;
    /// Deliveries with ids above `after`, oldest first, at most `limit`, with everything the
    /// queue keeps (for copying a store). Claims are not exported.
    async fn export_deliveries(&self, after: i64, limit: usize)
    -> StoreResult<Vec<DeliveryRecord>>;
    /// Stores deliveries with their ids and attempts (into a store being filled by a copy).
    async fn import_deliveries(&self, deliveries: Vec<DeliveryRecord>) -> StoreResult<()>;

    /// Makes a delivery due now again, keeping id, body and attempt count; [`StoreError::NotFound`]
    /// if there is no such delivery.
    async fn redeliver(&self, id: i64, now_ms: i64) -> StoreResult<()>;
}
