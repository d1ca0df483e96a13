//! Row shapes that cross the [`crate::Store`] boundary beyond the core model: the fan-out planner,
//! claimed deliveries, attempt outcomes, delivery filters and explain facts.

use std::sync::Arc;

use graphhooks_core::catalog::ObjectType;
use graphhooks_core::fanout::{FanoutFacts, PlannedDelivery};
use graphhooks_core::model::{AppMode, Attempt, Change, DeliveryState, Subscription};
use graphhooks_core::signature::SigningKey;

/// Decides the deliveries of a fan-out round from its changes and facts.
pub type Planner = Arc<dyn Fn(&[Change], &FanoutFacts) -> Vec<PlannedDelivery> + Send + Sync>;

/// What one fan-out round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanoutReport {
    /// Changes consumed.
    pub changes: usize,
    /// Deliveries created (pending or paused).
    pub deliveries: usize,
    /// Whether the round stopped at the limit with more changes waiting.
    pub more: bool,
}

/// A subscription's identity: (app id, object type).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionKey {
    /// The app.
    pub app_id: String,
    /// The object type.
    pub object_type: String,
}

/// A delivery to store outside fan-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The plan: app, type, state, body and the changes in it.
    pub planned: PlannedDelivery,
    /// Whether it is a test notification.
    pub test: bool,
}

/// How much a node wants of each lane in one claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Limits for the lanes named (0 = take nothing from that lane now).
    pub lanes: Vec<LaneClaim>,
    /// The limit for every other lane the node owns (including lanes adopted by this claim).
    pub other_limit: usize,
    /// The most deliveries this claim may return in all.
    pub total: usize,
}

impl ClaimRequest {
    /// Up to `limit` in all, from any of the node's lanes.
    pub fn any(limit: usize) -> Self {
        ClaimRequest {
            lanes: Vec::new(),
            other_limit: limit,
            total: limit,
        }
    }
}

/// One lane's limit in a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneClaim {
    /// The lane (subscription).
    pub key: SubscriptionKey,
    /// Most deliveries to take from it.
    pub limit: usize,
}

/// Where and how a claimed delivery is sent, as of the claim. The secrets are kept with their
/// signing keys prepared (see [`SigningKey`]); `Debug` leaves both out.
#[derive(Clone)]
pub struct DeliveryTarget {
    /// The subscription's callback URL now.
    pub callback_url: String,
    /// Present the client certificate.
    pub include_client_certificate: bool,
    /// Add Standard Webhooks headers.
    pub standard_webhooks: bool,
    secret: String,
    previous_secret: Option<String>,
    signing_key: SigningKey,
    previous_signing_key: Option<SigningKey>,
}

impl DeliveryTarget {
    /// A target; `previous_secret` is the app's previous secret while its grace period lasts.
    pub fn new(
        callback_url: String,
        include_client_certificate: bool,
        standard_webhooks: bool,
        secret: String,
        previous_secret: Option<String>,
    ) -> DeliveryTarget {
        DeliveryTarget {
            callback_url,
            include_client_certificate,
            standard_webhooks,
            signing_key: SigningKey::new(&secret),
            previous_signing_key: previous_secret.as_deref().map(SigningKey::new),
            secret,
            previous_secret,
        }
    }

    /// The app's current secret.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The previous secret while its grace period lasts.
    pub fn previous_secret(&self) -> Option<&str> {
        self.previous_secret.as_deref()
    }

    /// The current secret, ready to sign.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    /// The previous secret, ready to sign, while its grace period lasts.
    pub fn previous_signing_key(&self) -> Option<&SigningKey> {
        self.previous_signing_key.as_ref()
    }
}

/// Targets are equal when their settings and secrets are; the keys follow from the secrets.
impl PartialEq for DeliveryTarget {
    fn eq(&self, other: &DeliveryTarget) -> bool {
        self.callback_url == other.callback_url
            && self.include_client_certificate == other.include_client_certificate
            && self.standard_webhooks == other.standard_webhooks
            && self.secret == other.secret
            && self.previous_secret == other.previous_secret
    }
}

impl Eq for DeliveryTarget {}

impl std::fmt::Debug for DeliveryTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryTarget")
            .field("callback_url", &self.callback_url)
            .field(
                "include_client_certificate",
                &self.include_client_certificate,
            )
            .field("standard_webhooks", &self.standard_webhooks)
            .field("secret", &"[REDACTED]")
            .field(
                "previous_secret",
                &self.previous_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// A delivery claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// Delivery id.
    pub id: i64,
    /// The subscription it belongs to.
    pub key: SubscriptionKey,
    /// The exact body.
    pub body: String,
    /// Object ids in it, for per-object ordering.
    pub object_ids: Vec<String>,
    /// Attempts already recorded.
    pub attempts_made: u32,
    /// When the first attempt started (unix ms), if there was one.
    pub first_attempt_ms: Option<i64>,
    /// Where to send it, or `None` when the subscription no longer exists. Shared by the
    /// deliveries of one lane in a claim.
    pub target: Option<std::sync::Arc<DeliveryTarget>>,
    /// Test notification.
    pub test: bool,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// It succeeded.
    Delivered,
    /// Try again at this time (unix ms).
    RetryAt(i64),
    /// Give up: `failed`.
    Failed,
}

/// One attempt and its consequence, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The delivery.
    pub delivery_id: i64,
    /// Its subscription (the failing-since clock is kept per subscription).
    pub key: SubscriptionKey,
    /// The attempt (its number is `attempts_made + 1` of the claim). `None` when the delivery was
    /// settled without sending (its subscription is gone).
    pub attempt: Option<Attempt>,
    /// What to do next.
    pub next: NextStep,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only this app's.
    pub app_id: Option<String>,
    /// Only in this state.
    pub state: Option<DeliveryState>,
    /// Only of this object type.
    pub object_type: Option<String>,
    /// Created at or after (unix seconds).
    pub since: Option<i64>,
    /// Created at or before (unix seconds).
    pub until: Option<i64>,
    /// Only ids below this one (the cursor of the previous page).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: usize,
}

/// One app as explain sees it.
#[derive(Debug, Clone)]
pub struct ExplainApp {
    /// The app.
    pub app_id: String,
    /// Its mode.
    pub mode: AppMode,
    /// Its subscription to the change's type, if any.
    pub subscription: Option<Subscription>,
    /// Its grant's permissions for the change's object, if any.
    pub grant: Option<Vec<String>>,
    /// Whether the change's actor has a role on it.
    pub actor_has_role: bool,
    /// The delivery that carried the change to it, if one did.
    pub delivery_id: Option<i64>,
}

/// Everything explain needs for one change.
#[derive(Debug, Clone)]
pub struct ExplainFacts {
    /// The change.
    pub change: Change,
    /// Its object type.
    pub object_type: ObjectType,
    /// Whether fan-out has processed it yet.
    pub fanned_out: bool,
    /// The apps considered.
    pub apps: Vec<ExplainApp>,
}

/// A wake-up from another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreEvent {
    /// Changes were accepted: fan-out has work.
    ChangesAccepted,
    /// Deliveries were created or made due: dispatch has work.
    DeliveriesDue,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// This node's own lease had lapsed and it was reaped: its claims and lanes went to others,
    /// so it must drop what it holds queued.
    pub reaped: bool,
    /// Claims released from reaped nodes by this heartbeat.
    pub released: u64,
}

/// A change with its fan-out status, for copying between stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// The change, id included.
    pub change: Change,
    /// Whether fan-out has processed it.
    pub fanned_out: bool,
}

/// A delivery with everything the queue keeps about it, for copying between stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The delivery as the log shows it, id and attempts included.
    pub delivery: graphhooks_core::model::Delivery,
    /// The changes it carries.
    pub change_ids: Vec<i64>,
    /// The objects of its entries.
    pub object_ids: Vec<String>,
    /// When it is due (pending) or was last scheduled.
    pub due_ms: i64,
    /// Attempts made.
    pub attempt_count: u32,
    /// When the first attempt started.
    pub first_attempt_ms: Option<i64>,
}

/// Delivery counts for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Deliveries waiting for an attempt.
    pub pending: u64,
    /// Deliveries held by paused subscriptions.
    pub paused: u64,
    /// When the oldest pending delivery was created (unix seconds).
    pub oldest_pending_created: Option<i64>,
}

/// What a replay created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Changes in the window that went to the app.
    pub changes: usize,
    /// Notifications created.
    pub deliveries: usize,
}

/// An app installed on an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    /// The app.
    pub app_id: String,
    /// Its name.
    pub app_name: String,
    /// The object's type.
    pub object_type: String,
    /// The fields the object subscribes the app to.
    pub subscribed_fields: Vec<String>,
}

/// One app's delivery health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppStats {
    /// The app.
    pub app_id: String,
    /// Attempts that got a 2xx since the time asked.
    pub attempts_ok: u64,
    /// Attempts that failed since the time asked.
    pub attempts_failed: u64,
    /// Deliveries waiting.
    pub pending: u64,
    /// When the oldest waiting delivery was created (unix seconds).
    pub oldest_pending_created: Option<i64>,
}
