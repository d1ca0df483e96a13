//! Opens the store a database URL names.

use std::sync::Arc;

use anyhow::{Context, bail};
use graphhooks_server::DatabaseUrl;
use graphhooks_store::Store;
use graphhooks_store_sqlite::{SqliteOptions, SqliteStore};

/// Opens (and migrates) the store.
pub(crate) async fn open(database: &DatabaseUrl) -> anyhow::Result<Arc<dyn Store>> {
    match database {
        DatabaseUrl::Sqlite(path) => {
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || {
                SqliteStore::open(&path, SqliteOptions::default())
            })
            .await
            .context("opening the SQLite database")?
            .map_err(|error| anyhow::anyhow!(graphhooks_server::http::error::error_chain(&error)))
            .context("opening the SQLite database")?;
            Ok(Arc::new(store))
        }
        DatabaseUrl::Postgres(_) => {
            bail!("postgres:// databases are not supported by this build yet; use sqlite://PATH")
        }
    }
}
