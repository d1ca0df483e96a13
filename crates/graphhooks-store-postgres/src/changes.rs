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

/// The ingest statement with `$tail`, its final SELECT.
macro_rules! insert_sql {
    ($tail:literal) => {
        concat!(
            "WITH numbered AS MATERIALIZED (
               SELECT nextval('changes_id_seq') AS id, u.*
               FROM (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
                       WITH ORDINALITY AS u(object_type, object_id, field, value, actor, time, ord)
                     ORDER BY ord) u),
             inserted AS (
               INSERT INTO changes (id, object_type, object_id, field, value, actor, time, received_ms)
               SELECT id, object_type, object_id, field, value, actor, time, $7 FROM numbered
               RETURNING id),
             queued AS (INSERT INTO change_queue (change_id) SELECT id FROM inserted) ",
            $tail
        )
    };
}

/// Ingest that tells the other nodes at commit (`$8` is the channel).
const INSERT_TELLING: &str = insert_sql!(
    "SELECT n.id FROM numbered n CROSS JOIN (SELECT pg_notify($8, concat('changes ', current_setting('graphhooks.instance', true)))) AS told
     ORDER BY n.ord"
);

/// Ingest that tells nobody: no other node is registered.
const INSERT_QUIET: &str = insert_sql!("SELECT n.id FROM numbered n ORDER BY n.ord");

/// Stores `changes` and queues them for fan-out; with `tell_others`, the other nodes are told
/// at commit (see [`crate::events`]).
pub(crate) async fn insert(
    pool: &PgPool,
    changes: &[NewChange],
    tell_others: bool,
) -> Result<Vec<i64>, StoreError> {
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
    // One statement, so one round trip and its own transaction: ids are drawn in the submitted
    // order (the input is read in array order, and `numbered` is evaluated once), the changes
    // are stored and queued for fan-out, and the other nodes (if any) are told at commit.
    let query = sqlx::query_scalar(if tell_others {
        INSERT_TELLING
    } else {
        INSERT_QUIET
    })
    .bind(&object_types)
    .bind(&object_ids)
    .bind(&fields)
    .bind(&values)
    .bind(&actors)
    .bind(&times)
    .bind(received);
    let query = if tell_others {
        query.bind(CHANNEL)
    } else {
        query
    };
    query.fetch_all(pool).await.store()
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
