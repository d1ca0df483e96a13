//! Node leases: each heartbeat renews this node's lease and reaps nodes whose lease lapsed,
//! releasing their claims and lanes so the surviving nodes take the work over. Times are the
//! database's (`now()`), so node clocks need not agree.

use std::time::Duration;

use graphhooks_store::{Heartbeat, StoreError};
use sqlx::PgPool;

use crate::error::SqlResultExt;
use crate::events::{CHANNEL, NOTIFY_DELIVERIES};

/// Renews `node`'s lease and reaps lapsed nodes; also answers whether any other node is still
/// registered.
pub(crate) async fn heartbeat(
    pool: &PgPool,
    node: &str,
    ttl: Duration,
    registered_before: bool,
) -> Result<(Heartbeat, bool), StoreError> {
    let mut transaction = pool.begin().await.store()?;
    let renewed = sqlx::query("UPDATE nodes SET heartbeat_at = now() WHERE id = $1")
        .bind(node)
        .execute(&mut *transaction)
        .await
        .store()?;
    let reaped = renewed.rows_affected() == 0 && registered_before;
    if renewed.rows_affected() == 0 {
        sqlx::query("INSERT INTO nodes (id, heartbeat_at) VALUES ($1, now()) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()")
            .bind(node)
            .execute(&mut *transaction)
            .await
            .store()?;
    }
    let seconds = ttl.as_secs_f64();
    let dead: Vec<String> = sqlx::query_scalar(
        "DELETE FROM nodes WHERE heartbeat_at < now() - make_interval(secs => $1) AND id <> $2 RETURNING id",
    )
    .bind(seconds)
    .bind(node)
    .fetch_all(&mut *transaction)
    .await
    .store()?;
    // Claims and lanes of reaped nodes, and of any node no longer registered.
    sqlx::query(
        "UPDATE lanes SET node_id = NULL WHERE node_id = ANY($1) OR node_id NOT IN (SELECT id FROM nodes)",
    )
    .bind(&dead)
    .execute(&mut *transaction)
    .await
    .store()?;
    let released = sqlx::query(
        "UPDATE deliveries SET claimed_by = NULL
         WHERE claimed_by IS NOT NULL AND (claimed_by = ANY($1) OR claimed_by NOT IN (SELECT id FROM nodes))",
    )
    .bind(&dead)
    .execute(&mut *transaction)
    .await
    .store()?
    .rows_affected();
    if released > 0 {
        sqlx::query(NOTIFY_DELIVERIES)
            .bind(CHANNEL)
            .execute(&mut *transaction)
            .await
            .store()?;
    }
    let others: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM nodes WHERE id <> $1)")
        .bind(node)
        .fetch_one(&mut *transaction)
        .await
        .store()?;
    transaction.commit().await.store()?;
    for node in &dead {
        tracing::warn!(
            node,
            "Node {node} stopped renewing its lease; its work is released to the others"
        );
    }
    Ok((Heartbeat { reaped, released }, others))
}
