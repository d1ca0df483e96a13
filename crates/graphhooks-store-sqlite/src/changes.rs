//! Accepted changes.

use graphhooks_core::model::{Change, NewChange};
use graphhooks_store::StoreError;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::SqlResultExt;

/// Current time in unix ms, for the `received_ms` audit column only.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn insert(c: &Connection, changes: &[NewChange]) -> Result<Vec<i64>, StoreError> {
    let received = now_ms();
    let mut statement = c
        .prepare_cached(
            "INSERT INTO changes (object_type, object_id, field, value, actor, time, received_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .store()?;
    let mut ids = Vec::with_capacity(changes.len());
    for change in changes {
        statement
            .execute(params![
                change.object_type,
                change.object_id,
                change.field,
                change.value,
                change.actor,
                change.time,
                received
            ])
            .store()?;
        ids.push(c.last_insert_rowid());
    }
    Ok(ids)
}

/// Columns read by [`row`].
pub(crate) const CHANGE_COLUMNS: &str = "id, object_type, object_id, field, value, actor, time";

pub(crate) fn row(r: &Row<'_>) -> rusqlite::Result<Change> {
    Ok(Change {
        id: r.get(0)?,
        change: NewChange {
            object_type: r.get(1)?,
            object_id: r.get(2)?,
            field: r.get(3)?,
            value: r.get(4)?,
            actor: r.get(5)?,
            time: r.get(6)?,
        },
    })
}

pub(crate) fn get(c: &Connection, id: i64) -> Result<Option<Change>, StoreError> {
    c.query_row(
        &format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE id = ?1"),
        [id],
        row,
    )
    .optional()
    .store()
}
