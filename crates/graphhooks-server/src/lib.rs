//! The graphhooks service: the Graph-compatible API, the operator API, the verification
//! handshake and the delivery engine, over any [`Store`].
//!
//! ```text
//! Server::build(config, store) ──► local_addr()
//!                                  run_until(shutdown) ── HTTP (axum) + delivery engine
//! ```
//!
//! # Layout
//! - [`config`]: the validated configuration.
//! - [`http`]: routes, both APIs, auth, parameters, bodies, errors (the only HTTP error mapping).
//! - [`handshake`]: the `hub.challenge` verification.
//! - [`ingest`]: change validation.
//! - [`delivery`]: fan-out, dispatch, send, record; the outbound client and SSRF guard.
//! - [`catalog`]: the cached catalog.

pub mod catalog;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod delivery;
pub mod handshake;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use graphhooks_core::catalog::builtin;
use graphhooks_store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, DatabaseUrl};
use delivery::Engine;
use delivery::client::{CallbackClient, ClientSettings, ClientSetupError};
use state::AppState;

/// Settings key of the SHA-256 of a generated admin token.
const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The outbound client could not be set up (CA, client certificate).
    #[error("callback client: {0}")]
    Client(#[from] ClientSetupError),
    /// The listener could not bind (accept errors are logged and retried while serving).
    #[error("listening on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
}

/// A built server, bound and ready to run.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
    engine: Engine,
    generated_admin_token: Option<String>,
}

impl Server {
    /// Seeds the catalog, settles the admin token, builds the client and binds the listener.
    pub async fn build(config: Config, store: Arc<dyn Store>) -> Result<Server, ServerError> {
        if config.client_cert.is_some() != config.client_key.is_some() {
            return Err(ServerError::Config(
                "--client-cert and --client-key go together".into(),
            ));
        }
        if config.header_read_timeout.is_zero() {
            return Err(ServerError::Config(
                "the header read timeout must be more than zero".into(),
            ));
        }
        metrics::install();
        store.seed_object_types(builtin()).await?;
        let (admin_token_sha256, generated_admin_token) = admin_token(&config, &*store).await?;
        let client = CallbackClient::new(&ClientSettings {
            callback_ca: config.callback_ca.as_deref(),
            client_identity: config
                .client_cert
                .as_deref()
                .zip(config.client_key.as_deref()),
            allow_private: config.allow_private_callbacks,
            allow_http: config.allow_http_callbacks,
            idle_timeout: None,
        })?;
        let catalog = catalog::CatalogCache::load(&*store).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Listen {
                    address: config.listen,
                    source,
                })?;
        let config = Arc::new(config);
        // Alerts go to the operator's own endpoint, which may well be on a private network.
        let alert_client = CallbackClient::new(&ClientSettings {
            callback_ca: config.callback_ca.as_deref(),
            client_identity: None,
            allow_private: true,
            allow_http: true,
            idle_timeout: None,
        })?;
        let engine = Engine::new(store.clone(), config.clone(), client.clone(), alert_client);
        let state = Arc::new(AppState {
            graph_limiter: crate::http::rate_limit::GraphRateLimiter::new(config.graph_rate_limit),
            store,
            config,
            catalog,
            client,
            engine: engine.clone(),
            admin_token_sha256,
            subscription_locks: std::sync::Mutex::new(std::collections::HashMap::new()),
        });
        Ok(Server {
            listener,
            state,
            engine,
            generated_admin_token,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.config.listen)
    }

    /// The admin token generated by this start, to print once; `None` when it was given or
    /// generated by an earlier start.
    pub fn generated_admin_token(&self) -> Option<&str> {
        self.generated_admin_token.as_deref()
    }

    /// Serves until `shutdown` resolves, then stops taking requests, lets the engine finish or
    /// release its in-flight work, and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Server {
            listener,
            state,
            engine,
            generated_admin_token: _,
        } = self;
        let address = listener.local_addr().unwrap_or(state.config.listen);
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        if !state.store.shared() {
            // One process per unshared store (the SQLite file is locked), so claims left behind
            // are a crashed predecessor's: release them before this node starts claiming.
            let released = state.store.release_claims(None).await?;
            if released > 0 {
                tracing::info!(
                    released,
                    "Released {released} deliveries claimed before the last stop; they go out again"
                );
            }
        }
        engine.spawn(&tracker, stop.clone());
        let router = http::router(state.clone());
        tracing::info!(%address, "graphhooks is listening on {address}");
        let http_stop = stop.clone();
        http::serve::serve(
            listener,
            router,
            state.config.header_read_timeout,
            async move {
                tokio::select! {
                    () = shutdown => {}
                    () = http_stop.cancelled() => {}
                }
            },
        )
        .await;
        tracing::info!("Stopping: no new requests; finishing deliveries in flight");
        stop.cancel();
        tracker.close();
        tracker.wait().await;
        Ok(())
    }
}

/// The admin token's hash: from the configuration, from the store, or newly generated (and then
/// returned in clear once, to print).
async fn admin_token(
    config: &Config,
    store: &dyn Store,
) -> Result<([u8; 32], Option<String>), ServerError> {
    if let Some(token) = &config.admin_token {
        if token.len() < 16 {
            return Err(ServerError::Config(
                "the admin token must be at least 16 characters".into(),
            ));
        }
        return Ok((http::auth::token_hash(token), None));
    }
    let parse = |hex_text: &str| -> Result<[u8; 32], ServerError> {
        let bytes = hex::decode(hex_text)
            .map_err(|_| ServerError::Config("the stored admin token hash is corrupt".into()))?;
        bytes
            .try_into()
            .map_err(|_| ServerError::Config("the stored admin token hash is corrupt".into()))
    };
    if let Some(stored) = store.setting(ADMIN_TOKEN_SETTING).await? {
        return Ok((parse(&stored)?, None));
    }
    let token = format!("ghadm_{}", hex::encode(rand::random::<[u8; 24]>()));
    let hash = http::auth::token_hash(&token);
    if store
        .set_setting_once(ADMIN_TOKEN_SETTING, &hex::encode(hash))
        .await?
    {
        Ok((hash, Some(token)))
    } else {
        // Another node generated one first; use it.
        let stored = store
            .setting(ADMIN_TOKEN_SETTING)
            .await?
            .ok_or_else(|| ServerError::Config("the admin token vanished while starting".into()))?;
        Ok((parse(&stored)?, None))
    }
}
