//! `graphhooks serve` and `graphhooks migrate`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use graphhooks_server::{DatabaseUrl, Server};

use crate::config::{RawConfig, load};

/// Flags of `serve` (each also `GRAPHHOOKS_<NAME>` and a key of the `--config` file).
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Optional TOML configuration file (keys as in config.default.toml)
    #[arg(long, env = "GRAPHHOOKS_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    raw: RawConfig,
}

/// Flags of `migrate`.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// sqlite://PATH or postgres://USER@HOST/DB
    #[arg(
        long,
        env = "GRAPHHOOKS_DATABASE",
        default_value = "sqlite://graphhooks.db"
    )]
    database: String,
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "Cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "Cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// Runs the service until SIGTERM or Ctrl-C.
pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = load(args.raw, args.config.as_deref())?;
    tracing::debug!(?config, "Configuration");
    let store = crate::store::open(&config.database, config.database_pool_size).await?;
    let server = Server::build(config, store)
        .await
        .context("starting graphhooks")?;
    if let Some(token) = server.generated_admin_token() {
        // Printed once: only a hash is stored.
        println!("graphhooks: generated admin token (shown only now, save it): {token}");
    }
    println!("graphhooks: listening on http://{}", server.local_addr());
    server
        .run_until(shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}

/// Applies migrations and exits.
pub(crate) async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let database = DatabaseUrl::parse(&args.database).map_err(anyhow::Error::msg)?;
    crate::store::open(&database, 2).await?;
    println!("graphhooks: the database schema is up to date");
    Ok(())
}
