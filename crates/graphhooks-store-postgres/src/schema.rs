//! Migrations: numbered SQL files applied in order, each in its own transaction, under an
//! advisory lock so that nodes starting together do not race.

use graphhooks_store::StoreError;
use sqlx::PgPool;

use crate::error::SqlResultExt;

/// Every migration, in order; the index + 1 is its version.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_first_attempt_in_delivery.sql"),
];

/// Advisory lock key of migrations ("ghmigrat").
const MIGRATION_LOCK: i64 = 0x6768_6d69_6772_6174;

/// Brings the schema up to date.
pub(crate) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut connection = pool.acquire().await.store()?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *connection)
        .await
        .store()?;
    let result = apply(&mut connection).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *connection)
        .await
        .store()?;
    result
}

async fn apply(connection: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS graphhooks_migrations (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&mut *connection)
    .await
    .store()?;
    let current: i32 =
        sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM graphhooks_migrations")
            .fetch_one(&mut *connection)
            .await
            .store()?;
    let current = usize::try_from(current).unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(StoreError::other(format!(
            "the database has schema version {current}, newer than this graphhooks knows ({}); upgrade graphhooks",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        let mut transaction = sqlx::Connection::begin(&mut *connection).await.store()?;
        sqlx::raw_sql(sql)
            .execute(&mut *transaction)
            .await
            .store()?;
        sqlx::query("INSERT INTO graphhooks_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *transaction)
            .await
            .store()?;
        transaction.commit().await.store()?;
        tracing::info!(version, "Applied PostgreSQL migration {version}");
    }
    Ok(())
}
