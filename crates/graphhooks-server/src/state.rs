//! What every request handler shares.

use std::sync::Arc;

use graphhooks_store::Store;

use crate::catalog::CatalogCache;
use crate::config::Config;
use crate::delivery::Engine;
use crate::delivery::client::CallbackClient;

/// Shared state of the HTTP handlers.
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The configuration.
    pub config: Arc<Config>,
    /// The cached catalog.
    pub catalog: CatalogCache,
    /// The outbound client (handshakes use it too).
    pub client: CallbackClient,
    /// Wakes the engine's tasks.
    pub engine: Engine,
    /// The Graph API's per-app call limit.
    pub graph_limiter: crate::http::rate_limit::GraphRateLimiter,
    /// SHA-256 of the admin token.
    pub admin_token_sha256: [u8; 32],
    /// One lock per app with a subscription edit under way, so concurrent edits of one app's
    /// subscriptions merge instead of overwriting each other (within this node).
    pub subscription_locks:
        std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl AppState {
    /// Serialises subscription edits of `app_id`; the lock is held while the guard lives.
    pub async fn lock_subscriptions(&self, app_id: &str) -> SubscriptionEditGuard<'_> {
        let lock = {
            let mut locks = match self.subscription_locks.lock() {
                Ok(locks) => locks,
                Err(poisoned) => poisoned.into_inner(),
            };
            locks.entry(app_id.to_owned()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        SubscriptionEditGuard {
            state: self,
            app_id: app_id.to_owned(),
            lock,
            _guard: guard,
        }
    }
}

/// Holds an app's subscription edit lock; forgets the lock when nobody else waits for it.
pub struct SubscriptionEditGuard<'a> {
    state: &'a AppState,
    app_id: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for SubscriptionEditGuard<'_> {
    fn drop(&mut self) {
        let mut locks = match self.state.subscription_locks.lock() {
            Ok(locks) => locks,
            Err(poisoned) => poisoned.into_inner(),
        };
        // The map, this guard's copy and the owned guard's: nobody else is waiting.
        if Arc::strong_count(&self.lock) <= 3 {
            locks.remove(&self.app_id);
        }
    }
}

/// The state as handlers receive it.
pub type SharedState = Arc<AppState>;
