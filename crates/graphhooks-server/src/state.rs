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
    /// SHA-256 of the admin token.
    pub admin_token_sha256: [u8; 32],
}

/// The state as handlers receive it.
pub type SharedState = Arc<AppState>;
