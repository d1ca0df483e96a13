//! The validated configuration the server runs with. The binary merges defaults, the TOML file,
//! `GRAPHHOOKS_*` variables and flags into a raw form and converts it into [`Config`] once;
//! nothing after start-up parses configuration again.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use graphhooks_core::retry::RetryPolicy;

/// Where the data lives, picked by URL scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH`: the embedded store.
    Sqlite(PathBuf),
    /// `postgres://...`: the shared store for several nodes.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH`, `sqlite:PATH` or `postgres://…` / `postgresql://…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err("the sqlite:// URL has no path; use sqlite://graphhooks.db".into());
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(text.to_owned()));
        }
        Err(format!(
            "unsupported database URL {text:?}: use sqlite://PATH or postgres://USER@HOST/DB"
        ))
    }
}

/// Everything `serve` needs, validated.
#[derive(Clone)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Where the data lives.
    pub database: DatabaseUrl,
    /// The admin token given by flag or environment; `None` means use (or make) the stored one.
    pub admin_token: Option<String>,
    /// Extra trusted roots for callbacks (PEM file).
    pub callback_ca: Option<PathBuf>,
    /// Let callbacks resolve to loopback, private and other non-public addresses.
    pub allow_private_callbacks: bool,
    /// Let callbacks use plain `http://` (local development only).
    pub allow_http_callbacks: bool,
    /// Retry delays and window.
    pub retry: RetryPolicy,
    /// Time limit of one attempt (connect, send, response).
    pub delivery_timeout: Duration,
    /// How long fan-out waits for more changes before building notifications.
    pub batch_linger: Duration,
    /// Most changes per notification (1 to 1000).
    pub batch_max: usize,
    /// How long a callback may fail continuously before its subscription is paused.
    pub pause_after: Duration,
    /// Where operator alerts (a subscription paused) are sent, if anywhere.
    pub alert_url: Option<String>,
    /// The secret alerts are signed with (`X-Hub-Signature-256`), like app notifications.
    pub alert_secret: Option<String>,
    /// Client certificate presented to subscriptions with `include_client_certificate`.
    pub client_cert: Option<PathBuf>,
    /// Its private key.
    pub client_key: Option<PathBuf>,
    /// Most concurrent requests per subscription (app and object type).
    pub callback_concurrency: usize,
    /// Connections in the database pool (PostgreSQL).
    pub database_pool_size: u32,
    /// On a shared store, how long a node's lease lasts without a heartbeat; a node silent this
    /// long is presumed dead and its work is taken over.
    pub node_lease: Duration,
    /// Graph API calls each app (or object token) may make per minute on this node, in bursts
    /// of up to as many; 0 turns the limit off.
    pub graph_rate_limit: u32,
    /// How long a client has to send a request's headers, counted from when the server starts
    /// waiting for them (a new connection, or the next request on a kept-alive one); a
    /// connection that takes longer is closed. Above the 60 s idle timeout of common load
    /// balancers, so that they close idle connections first; more than zero.
    pub header_read_timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Listed in full so a new field cannot be forgotten; the token is redacted.
        let Config {
            listen,
            database,
            admin_token,
            callback_ca,
            allow_private_callbacks,
            allow_http_callbacks,
            retry,
            delivery_timeout,
            batch_linger,
            batch_max,
            pause_after,
            alert_url,
            alert_secret,
            client_cert,
            client_key,
            callback_concurrency,
            database_pool_size,
            node_lease,
            graph_rate_limit,
            header_read_timeout,
        } = self;
        let database = match database {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(_) => "postgres://[REDACTED]".to_owned(),
        };
        f.debug_struct("Config")
            .field("listen", listen)
            .field("database", &database)
            .field("admin_token", &admin_token.as_ref().map(|_| "[REDACTED]"))
            .field("callback_ca", callback_ca)
            .field("allow_private_callbacks", allow_private_callbacks)
            .field("allow_http_callbacks", allow_http_callbacks)
            .field("retry", retry)
            .field("delivery_timeout", delivery_timeout)
            .field("batch_linger", batch_linger)
            .field("batch_max", batch_max)
            .field("pause_after", pause_after)
            .field("alert_url", alert_url)
            .field("alert_secret", &alert_secret.as_ref().map(|_| "[REDACTED]"))
            .field("client_cert", client_cert)
            .field("client_key", client_key)
            .field("callback_concurrency", callback_concurrency)
            .field("database_pool_size", database_pool_size)
            .field("node_lease", node_lease)
            .field("graph_rate_limit", graph_rate_limit)
            .field("header_read_timeout", header_read_timeout)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: DatabaseUrl::Sqlite(PathBuf::from("graphhooks.db")),
            admin_token: None,
            callback_ca: None,
            allow_private_callbacks: false,
            allow_http_callbacks: false,
            retry: RetryPolicy::default(),
            delivery_timeout: Duration::from_secs(20),
            batch_linger: Duration::from_millis(5),
            batch_max: graphhooks_core::MAX_BATCH,
            pause_after: Duration::from_secs(3600),
            alert_url: None,
            alert_secret: None,
            client_cert: None,
            client_key: None,
            callback_concurrency: 16,
            database_pool_size: 16,
            node_lease: Duration::from_secs(10),
            graph_rate_limit: 6000,
            header_read_timeout: Duration::from_secs(75),
        }
    }
}
