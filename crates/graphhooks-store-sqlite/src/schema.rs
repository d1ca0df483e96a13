//! Migrations: numbered SQL files applied in order, tracked with `PRAGMA user_version`.

use graphhooks_store::StoreError;
use rusqlite::Connection;

use crate::error::SqlResultExt;

/// Every migration, in order; the index + 1 is the schema version it produces.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_one_open_index.sql"),
];

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A database made by the first schema keeps its open work through the later migrations,
    /// and the lane index answers the claim query afterwards.
    #[test]
    fn open_work_survives_the_index_migration() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(MIGRATIONS[0]).unwrap();
        connection
            .execute_batch(
                "PRAGMA user_version = 1;
                 INSERT INTO apps (id, name, mode, secret, created_time) VALUES ('1', 'a', 'live', 's', 0);
                 INSERT INTO deliveries (app_id, object_type, state, created_time, body, change_ids,
                                         object_ids, test, due_ms, claimed_by)
                 VALUES ('1', 'user', 'pending', 7, '{}', '1', '[]', 0, 5, NULL),
                        ('1', 'user', 'paused', 8, '{}', '2', '[]', 0, 5, NULL),
                        ('1', 'user', 'pending', 9, '{}', '3', '[]', 0, 5, 'node');",
            )
            .unwrap();
        migrate(&mut connection).unwrap();
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, i64::try_from(MIGRATIONS.len()).unwrap());
        let stats = crate::deliveries::queue_stats(&connection).unwrap();
        assert_eq!(
            (stats.pending, stats.paused, stats.oldest_pending_created),
            (2, 1, Some(7))
        );
        let plan: String = connection
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM deliveries WHERE app_id = '1' AND object_type = 'user'
                   AND state IN ('pending', 'paused') AND claimed_by IS NULL AND state = 'pending'
                   AND due_ms <= 10 ORDER BY due_ms, id LIMIT 10",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("deliveries_lane_due"), "{plan}");
    }
}
