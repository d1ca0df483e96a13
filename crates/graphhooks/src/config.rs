//! `serve`'s configuration: the embedded defaults (`config.default.toml`), then an optional
//! TOML file, then `GRAPHHOOKS_*` variables and flags (clap reads those two, flags first),
//! converted once into the server's validated [`Config`].

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use clap::builder::BoolishValueParser;
use graphhooks_core::duration::{parse_duration, parse_schedule};
use graphhooks_core::retry::RetryPolicy;
use graphhooks_server::{Config, DatabaseUrl};
use serde::Deserialize;

/// The documented defaults, which are the defaults.
pub(crate) const DEFAULTS: &str = include_str!("../config.default.toml");

/// One layer of configuration; every key optional so layers can be merged.
#[derive(Default, Clone, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    /// Address to bind [default: 127.0.0.1:8080]
    #[arg(long, env = "GRAPHHOOKS_LISTEN")]
    pub(crate) listen: Option<String>,
    /// sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://graphhooks.db]
    #[arg(long, env = "GRAPHHOOKS_DATABASE")]
    pub(crate) database: Option<String>,
    /// Bearer token of the operator API (generated and printed once when unset)
    #[arg(long, env = "GRAPHHOOKS_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) admin_token: Option<String>,
    /// Extra trusted CA certificates for callbacks (PEM file)
    #[arg(long, env = "GRAPHHOOKS_CALLBACK_CA")]
    pub(crate) callback_ca: Option<PathBuf>,
    /// Allow callbacks on loopback, private and other non-public addresses
    #[arg(long, env = "GRAPHHOOKS_ALLOW_PRIVATE_CALLBACKS", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub(crate) allow_private_callbacks: Option<bool>,
    /// Allow plain http:// callbacks (local development only)
    #[arg(long, env = "GRAPHHOOKS_ALLOW_HTTP_CALLBACKS", num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub(crate) allow_http_callbacks: Option<bool>,
    /// Delays before retry 1, 2, ... (the last repeats) [default: 0s,10s,1m,5m,30m,1h,2h,4h,8h]
    #[arg(long, env = "GRAPHHOOKS_RETRY_SCHEDULE")]
    pub(crate) retry_schedule: Option<String>,
    /// How long after the first attempt retries may happen [default: 36h]
    #[arg(long, env = "GRAPHHOOKS_RETRY_WINDOW")]
    pub(crate) retry_window: Option<String>,
    /// Time limit of one attempt [default: 20s]
    #[arg(long, env = "GRAPHHOOKS_DELIVERY_TIMEOUT")]
    pub(crate) delivery_timeout: Option<String>,
    /// How long fan-out waits for more changes to batch [default: 5ms]
    #[arg(long, env = "GRAPHHOOKS_BATCH_LINGER")]
    pub(crate) batch_linger: Option<String>,
    /// Most changes per notification, 1 to 1000 [default: 1000]
    #[arg(long, env = "GRAPHHOOKS_BATCH_MAX")]
    pub(crate) batch_max: Option<usize>,
    /// Pause a subscription whose callback fails continuously this long (its notifications are kept) [default: 1h]
    #[arg(long, env = "GRAPHHOOKS_PAUSE_AFTER")]
    pub(crate) pause_after: Option<String>,
    /// Operator alert webhook (a subscription paused), signed like any notification
    #[arg(long, env = "GRAPHHOOKS_ALERT_URL")]
    pub(crate) alert_url: Option<String>,
    /// Secret that signs operator alerts (X-Hub-Signature-256)
    #[arg(long, env = "GRAPHHOOKS_ALERT_SECRET", hide_env_values = true)]
    pub(crate) alert_secret: Option<String>,
    /// Client certificate (PEM) for subscriptions with include_client_certificate
    #[arg(long, env = "GRAPHHOOKS_CLIENT_CERT")]
    pub(crate) client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert
    #[arg(long, env = "GRAPHHOOKS_CLIENT_KEY")]
    pub(crate) client_key: Option<PathBuf>,
    /// Most concurrent requests per subscription (app and object type) [default: 16]
    #[arg(long, env = "GRAPHHOOKS_CALLBACK_CONCURRENCY")]
    pub(crate) callback_concurrency: Option<usize>,
    /// Connections in the PostgreSQL pool [default: 16]
    #[arg(long, env = "GRAPHHOOKS_DATABASE_POOL_SIZE")]
    pub(crate) database_pool_size: Option<u32>,
    /// PostgreSQL: a node silent this long is presumed dead and its work taken over [default: 10s]
    #[arg(long, env = "GRAPHHOOKS_NODE_LEASE")]
    pub(crate) node_lease: Option<String>,
    /// Graph API calls per app (or object token) and minute on this node, in bursts of up to as many; 0 turns the limit off [default: 6000]
    #[arg(long, env = "GRAPHHOOKS_GRAPH_RATE_LIMIT")]
    pub(crate) graph_rate_limit: Option<u32>,
}

impl std::fmt::Debug for RawConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The admin token and the database URL (which may hold a password) stay out.
        f.debug_struct("RawConfig")
            .field("listen", &self.listen)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

impl RawConfig {
    /// Parses a TOML layer.
    pub(crate) fn from_toml(text: &str, origin: &str) -> anyhow::Result<RawConfig> {
        toml::from_str(text).with_context(|| format!("reading the configuration in {origin}"))
    }

    /// `self` over `lower`: every key set here wins.
    pub(crate) fn over(self, lower: RawConfig) -> RawConfig {
        // Listed in full, without `..`, so a new key cannot be forgotten.
        let RawConfig {
            listen,
            database,
            admin_token,
            callback_ca,
            allow_private_callbacks,
            allow_http_callbacks,
            retry_schedule,
            retry_window,
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
        } = self;
        RawConfig {
            listen: listen.or(lower.listen),
            database: database.or(lower.database),
            admin_token: admin_token.or(lower.admin_token),
            callback_ca: callback_ca.or(lower.callback_ca),
            allow_private_callbacks: allow_private_callbacks.or(lower.allow_private_callbacks),
            allow_http_callbacks: allow_http_callbacks.or(lower.allow_http_callbacks),
            retry_schedule: retry_schedule.or(lower.retry_schedule),
            retry_window: retry_window.or(lower.retry_window),
            delivery_timeout: delivery_timeout.or(lower.delivery_timeout),
            batch_linger: batch_linger.or(lower.batch_linger),
            batch_max: batch_max.or(lower.batch_max),
            pause_after: pause_after.or(lower.pause_after),
            alert_url: alert_url.or(lower.alert_url),
            alert_secret: alert_secret.or(lower.alert_secret),
            client_cert: client_cert.or(lower.client_cert),
            client_key: client_key.or(lower.client_key),
            callback_concurrency: callback_concurrency.or(lower.callback_concurrency),
            database_pool_size: database_pool_size.or(lower.database_pool_size),
            node_lease: node_lease.or(lower.node_lease),
            graph_rate_limit: graph_rate_limit.or(lower.graph_rate_limit),
        }
    }

    /// Validates the merged layers into the server's configuration.
    pub(crate) fn validate(self) -> anyhow::Result<Config> {
        fn required<T>(value: Option<T>, key: &str) -> anyhow::Result<T> {
            value.with_context(|| format!("the configuration has no `{key}`"))
        }
        let duration = |value: Option<String>, key: &str| -> anyhow::Result<std::time::Duration> {
            let text = required(value, key)?;
            parse_duration(&text).with_context(|| format!("--{}", key.replace('_', "-")))
        };
        let listen: SocketAddr = {
            let text = required(self.listen, "listen")?;
            text.parse().with_context(|| {
                format!("--listen {text:?} is not an address like 127.0.0.1:8080")
            })?
        };
        let database = DatabaseUrl::parse(&required(self.database, "database")?)
            .map_err(anyhow::Error::msg)
            .context("--database")?;
        let schedule = parse_schedule(&required(self.retry_schedule, "retry_schedule")?)
            .context("--retry-schedule")?;
        let batch_max = required(self.batch_max, "batch_max")?;
        if !(1..=graphhooks_core::MAX_BATCH).contains(&batch_max) {
            bail!(
                "--batch-max must be between 1 and {}, not {batch_max}",
                graphhooks_core::MAX_BATCH
            );
        }
        let callback_concurrency = required(self.callback_concurrency, "callback_concurrency")?;
        if !(1..=1024).contains(&callback_concurrency) {
            bail!("--callback-concurrency must be between 1 and 1024, not {callback_concurrency}");
        }
        let delivery_timeout = duration(self.delivery_timeout, "delivery_timeout")?;
        if delivery_timeout.is_zero() {
            bail!("--delivery-timeout must be more than zero");
        }
        let batch_linger = duration(self.batch_linger, "batch_linger")?;
        if batch_linger > std::time::Duration::from_secs(10) {
            bail!("--batch-linger must be at most 10s");
        }
        for (flag, path) in [
            ("--callback-ca", &self.callback_ca),
            ("--client-cert", &self.client_cert),
            ("--client-key", &self.client_key),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                bail!("{flag} {} does not exist or is not a file", path.display());
            }
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            bail!("--client-cert and --client-key go together");
        }
        if self.alert_url.is_some() != self.alert_secret.is_some() {
            bail!("--alert-url and --alert-secret go together (alerts are signed)");
        }
        if let Some(url) = &self.alert_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            bail!("--alert-url must be an http(s) URL, not {url:?}");
        }
        let database_pool_size = required(self.database_pool_size, "database_pool_size")?;
        if !(1..=1000).contains(&database_pool_size) {
            bail!("--database-pool-size must be between 1 and 1000, not {database_pool_size}");
        }
        let node_lease = duration(self.node_lease, "node_lease")?;
        if node_lease < std::time::Duration::from_secs(1) {
            bail!("--node-lease must be at least 1s");
        }
        Ok(Config {
            listen,
            database,
            admin_token: self.admin_token.filter(|t| !t.is_empty()),
            callback_ca: self.callback_ca,
            allow_private_callbacks: required(
                self.allow_private_callbacks,
                "allow_private_callbacks",
            )?,
            allow_http_callbacks: required(self.allow_http_callbacks, "allow_http_callbacks")?,
            retry: RetryPolicy {
                schedule,
                window: duration(self.retry_window, "retry_window")?,
            },
            delivery_timeout,
            batch_linger,
            batch_max,
            pause_after: duration(self.pause_after, "pause_after")?,
            alert_url: self.alert_url,
            alert_secret: self.alert_secret,
            client_cert: self.client_cert,
            client_key: self.client_key,
            callback_concurrency,
            database_pool_size,
            node_lease,
            graph_rate_limit: required(self.graph_rate_limit, "graph_rate_limit")?,
            // Not a setting (see graphhooks_server::Config::header_read_timeout).
            header_read_timeout: Config::default().header_read_timeout,
        })
    }
}

/// Merges flags/env (`cli`) over the file (if any) over the embedded defaults.
pub(crate) fn load(cli: RawConfig, file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let defaults = RawConfig::from_toml(DEFAULTS, "the embedded defaults")?;
    let from_file = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            RawConfig::from_toml(&text, &path.display().to_string())?
        }
        None => RawConfig::default(),
    };
    cli.over(from_file).over(defaults).validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_defaults_are_the_server_defaults() {
        let config = load(RawConfig::default(), None).unwrap();
        let expected = Config::default();
        assert_eq!(config.listen, expected.listen);
        assert_eq!(config.database, expected.database);
        assert_eq!(config.retry, expected.retry);
        assert_eq!(config.delivery_timeout, expected.delivery_timeout);
        assert_eq!(config.batch_linger, expected.batch_linger);
        assert_eq!(config.batch_max, expected.batch_max);
        assert_eq!(config.pause_after, expected.pause_after);
        assert_eq!(config.callback_concurrency, expected.callback_concurrency);
        assert_eq!(config.database_pool_size, expected.database_pool_size);
        assert_eq!(config.node_lease, expected.node_lease);
        assert_eq!(config.graph_rate_limit, expected.graph_rate_limit);
        assert!(!config.allow_private_callbacks && !config.allow_http_callbacks);
    }

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("graphhooks.toml");
        std::fs::write(
            &file,
            "batch_max = 10\nretry_schedule = \"0s,1s\"\nlisten = \"127.0.0.1:9000\"\n",
        )
        .unwrap();
        let cli = RawConfig {
            batch_max: Some(1),
            ..RawConfig::default()
        };
        let config = load(cli, Some(&file)).unwrap();
        assert_eq!(config.batch_max, 1);
        assert_eq!(config.retry.schedule.len(), 2);
        assert_eq!(config.listen.port(), 9000);
    }

    #[test]
    fn bad_values_are_named() {
        let bad = |raw: RawConfig| load(raw, None).unwrap_err().to_string();
        assert!(
            bad(RawConfig {
                batch_max: Some(0),
                ..RawConfig::default()
            })
            .contains("--batch-max")
        );
        let error = format!(
            "{:#}",
            load(
                RawConfig {
                    retry_window: Some("soon".into()),
                    ..RawConfig::default()
                },
                None
            )
            .unwrap_err()
        );
        assert!(error.contains("--retry-window"), "{error}");
        assert!(
            bad(RawConfig {
                database: Some("mysql://x".into()),
                ..RawConfig::default()
            })
            .contains("--database")
        );
        assert!(
            bad(RawConfig {
                listen: Some("nope".into()),
                ..RawConfig::default()
            })
            .contains("--listen")
        );
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        assert!(RawConfig::from_toml("batch_maxx = 3", "test").is_err());
    }
}
