//! Opens the store a database URL names.

use std::sync::Arc;

use anyhow::Context;
use graphhooks_server::DatabaseUrl;
use graphhooks_server::http::error::error_chain;
use graphhooks_store::Store;
use graphhooks_store_postgres::{PostgresOptions, PostgresStore};
use graphhooks_store_sqlite::{SqliteOptions, SqliteStore};

/// Opens (and migrates) the store; `pool_size` applies to PostgreSQL.
pub(crate) async fn open(database: &DatabaseUrl, pool_size: u32) -> anyhow::Result<Arc<dyn Store>> {
    match database {
        DatabaseUrl::Sqlite(path) => {
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || {
                SqliteStore::open(&path, SqliteOptions::default())
            })
            .await
            .context("opening the SQLite database")?
            .map_err(|error| anyhow::anyhow!(error_chain(&error)))
            .context("opening the SQLite database")?;
            Ok(Arc::new(store))
        }
        DatabaseUrl::Postgres(url) => {
            let options = PostgresOptions {
                pool_size,
                ..PostgresOptions::default()
            };
            let store = PostgresStore::open(url, options)
                .await
                .map_err(|error| anyhow::anyhow!(error_chain(&error)))
                .context("opening the PostgreSQL database")?;
            Ok(Arc::new(store))
        }
    }
}
