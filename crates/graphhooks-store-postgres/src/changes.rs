//! Accepted changes: one multi-row insert per call, queued for fan-out in the same transaction.

use graphhooks_core::model::{Change, NewChange};
use graphhooks_store::StoreError;
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, PgPool, Row};

use crate::error::SqlResultExt;
use crate::events::CHANNEL;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) async fn insert(pool: &PgPool, changes: &[NewChange]) -> Result<Vec<i64>, StoreError> {
    let count = i64::try_from(changes.len()).unwrap_or(i64::MAX);
    let mut transaction = pool.begin().await.store()?;
    // Ids first, so they follow the submitted order whatever order the insert takes.
    let mut ids: Vec<i64> =
        sqlx::query_scalar("SELECT nextval('changes_id_seq') FROM generate_series(1, $1)")
            .bind(count)
            .fetch_all(&mut *transaction)
            .await
            .store()?;
    ids.sort_unstable();
    let received = now_ms();
    let mut object_types = Vec::with_capacity(changes.len());
    let mut object_ids = Vec::with_capacity(changes.len());
    let mut fields = Vec::with_capacity(changes.len());
    let mut values = Vec::with_capacity(changes.len());
    let mut actors = Vec::with_capacity(changes.len());
    let mut times = Vec::with_capacity(changes.len());
    for change in changes {
        object_types.push(change.object_type.as_str());
        object_ids.push(change.object_id.as_str());
        fields.push(change.field.as_str());
        values.push(change.value.as_str());
        actors.push(change.actor.as_deref());
        times.push(change.time);
    }
    sqlx::query(
        "WITH inserted AS (
           INSERT INTO changes (id, object_type, object_id, field, value, actor, time, received_ms)
           SELECT *, $8 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
           RETURNING id)
         INSERT INTO change_queue (change_id) SELECT id FROM inserted",
    )
    .bind(&ids)
    .bind(&object_types)
    .bind(&object_ids)
    .bind(&fields)
    .bind(&values)
    .bind(&actors)
    .bind(&times)
    .bind(received)
    .execute(&mut *transaction)
    .await
    .store()?;
    sqlx::query("SELECT pg_notify($1, 'changes')")
        .bind(CHANNEL)
        .execute(&mut *transaction)
        .await
        .store()?;
    transaction.commit().await.store()?;
    Ok(ids)
}

/// Columns read by [`row`].
pub(crate) const CHANGE_COLUMNS: &str = "id, object_type, object_id, field, value, actor, time";

pub(crate) fn row(r: &PgRow) -> Result<Change, StoreError> {
    Ok(Change {
        id: r.try_get(0).store()?,
        change: NewChange {
            object_type: r.try_get(1).store()?,
            object_id: r.try_get(2).store()?,
            field: r.try_get(3).store()?,
            value: r.try_get(4).store()?,
            actor: r.try_get(5).store()?,
            time: r.try_get(6).store()?,
        },
    })
}

pub(crate) async fn get<'e>(
    executor: impl PgExecutor<'e>,
    id: i64,
) -> Result<Option<Change>, StoreError> {
    let found = sqlx::query(&format!(
        "SELECT {CHANGE_COLUMNS} FROM changes WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await
    .store()?;
    found.as_ref().map(row).transpose()
}
