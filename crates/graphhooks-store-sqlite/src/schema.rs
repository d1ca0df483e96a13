//! Migrations: numbered SQL files applied in order, tracked with `PRAGMA user_version`.

use graphhooks_store::StoreError;
use rusqlite::Connection;

use crate::error::SqlResultExt;

/// Every migration, in order; the index + 1 is the schema version it produces.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_one_open_index.sql"),
    include_str!("../migrations/0003_first_attempt_in_delivery.sql"),
    include_str!("../migrations/0004_integer_lane_key.sql"),
];

/// Brings the schema up to date in one transaction per migration.
pub(crate) fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    // Migration 0004 fills the lane keys of existing rows.
    crate::lane_key::register(connection).store()?;
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
                "EXPLAIN QUERY PLAN SELECT id FROM deliveries
                 WHERE lane_key = graphhooks_lane_key('1', 'user') AND app_id = '1' AND object_type = 'user'
                   AND state IN ('pending', 'paused') AND claimed_by IS NULL AND state = 'pending'
                   AND due_ms <= 10 ORDER BY due_ms, id LIMIT 10",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("deliveries_lane_due"), "{plan}");
        // Migration 0004 gave the existing rows their lane key.
        let keyed: i64 = connection
            .query_row(
                "SELECT count(*) FROM deliveries WHERE lane_key = ?1",
                [crate::lane_key::lane_key("1", "user")],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(keyed, 3);
    }

    fn attempt(number: u32, time_ms: i64, status: u16) -> graphhooks_core::model::Attempt {
        graphhooks_core::model::Attempt {
            number,
            time_ms,
            status: Some(status),
            error: None,
            latency_ms: 3,
            response: Some(format!("status {status}")),
        }
    }

    /// A first attempt recorded before migration 0003 stays in `attempts` and is read from
    /// there; one recorded afterwards goes into the delivery's row, later ones into `attempts`;
    /// each shows once, in order, in the log and in the apps' stats.
    #[test]
    fn first_attempts_are_read_from_the_row_and_from_before_it() {
        use graphhooks_store::{AttemptOutcome, NextStep, SubscriptionKey};

        let mut connection = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..2] {
            connection.execute_batch(sql).unwrap();
        }
        connection
            .execute_batch(
                "PRAGMA user_version = 2;
                 INSERT INTO apps (id, name, mode, secret, created_time) VALUES ('1', 'a', 'live', 's', 0);
                 INSERT INTO deliveries (id, app_id, object_type, state, created_time, body, change_ids,
                                         object_ids, test, due_ms, attempt_count, first_attempt_ms)
                 VALUES (1, '1', 'user', 'delivered', 7, '{}', '1', '[]', 0, 5, 1, 100),
                        (2, '1', 'user', 'pending', 7, '{}', '2', '[]', 0, 5, 0, NULL),
                        (3, '1', 'user', 'pending', 7, '{}', '3', '[]', 0, 5, 1, 150);
                 INSERT INTO attempts (delivery_id, number, time_ms, status, error, latency_ms, response)
                 VALUES (1, 1, 100, 200, NULL, 3, 'status 200'), (3, 1, 150, 500, NULL, 3, 'status 500');",
            )
            .unwrap();
        migrate(&mut connection).unwrap();
        let key = SubscriptionKey {
            app_id: "1".into(),
            object_type: "user".into(),
        };
        // Delivery 3's first attempt is sent again (its claim was released before the outcome
        // was written) after the migration.
        let outcome = |delivery_id, number, time_ms, status, next| AttemptOutcome {
            delivery_id,
            key: key.clone(),
            attempt: Some(attempt(number, time_ms, status)),
            next,
        };
        crate::deliveries::record(
            &connection,
            &[outcome(2, 1, 200, 500, NextStep::RetryAt(250))],
        )
        .unwrap();
        crate::deliveries::record(
            &connection,
            &[
                outcome(2, 2, 300, 200, NextStep::Delivered),
                outcome(3, 1, 400, 200, NextStep::Delivered),
            ],
        )
        .unwrap();

        let old = crate::deliveries::get(&connection, 1).unwrap().unwrap();
        assert_eq!(old.attempts, vec![attempt(1, 100, 200)]);
        let new = crate::deliveries::get(&connection, 2).unwrap().unwrap();
        assert_eq!(
            new.attempts,
            vec![attempt(1, 200, 500), attempt(2, 300, 200)]
        );
        let in_table: i64 = connection
            .query_row(
                "SELECT count(*) FROM attempts WHERE delivery_id = 2",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(in_table, 1, "only the second attempt has a row of its own");
        let resent = crate::deliveries::get(&connection, 3).unwrap().unwrap();
        assert_eq!(
            resent.attempts,
            vec![attempt(1, 400, 200)],
            "the later of the two first attempts, once"
        );

        let stats = crate::deliveries::app_stats(&connection, 0).unwrap();
        assert_eq!(
            (stats[0].attempts_ok, stats[0].attempts_failed),
            (3, 1),
            "each attempt counted once, as the log shows it: {stats:?}"
        );
        let recent = crate::deliveries::app_stats(&connection, 250).unwrap();
        assert_eq!((recent[0].attempts_ok, recent[0].attempts_failed), (2, 0));
    }
}
