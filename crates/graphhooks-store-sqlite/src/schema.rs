//! Migrations: numbered SQL files applied in order, tracked with `PRAGMA user_version`.

use graphhooks_store::StoreError;
use rusqlite::Connection;

use crate::error::SqlResultExt;

/// Every migration, in order; the index + 1 is the schema version it produces.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_init.sql")];

/// Brings the schema up to date in one transaction per migration.
pub(crate) fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let current: usize = connection
        .query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
        .store()?
        .try_into()
        .unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(StoreError::other(format!(
            "the database has schema version {current}, newer than this graphhooks knows ({}); upgrade graphhooks",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let transaction = connection.transaction().store()?;
        transaction.execute_batch(sql).store()?;
        transaction
            .execute_batch(&format!("PRAGMA user_version = {}", index + 1))
            .store()?;
        transaction.commit().store()?;
        tracing::info!(
            version = index + 1,
            "Applied SQLite migration {}",
            index + 1
        );
    }
    Ok(())
}
