//! Copying a store: changes and deliveries out and in with their ids, so delivery ids stay
//! stable for receivers and explain keeps finding the delivery that carried a change.

use std::collections::HashMap;

use graphhooks_core::model::{Delivery, DeliveryState};
use graphhooks_store::{ChangeRecord, DeliveryRecord, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::changes::{self, CHANGE_COLUMNS};
use crate::error::SqlResultExt;
use crate::rows::corrupt;

/// Settings key remembering the first imported change not yet fanned out: the cursor must stay
/// below it.
const FIRST_UNFANNED: &str = "copy_first_unfanned_change";

pub(crate) fn export_changes(
    c: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<ChangeRecord>, StoreError> {
    let cursor: i64 = c
        .query_row(
            "SELECT last_change_id FROM fanout_cursor WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .store()?;
    let mut statement = c
        .prepare_cached(&format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))
        .store()?;
    let rows = statement
        .query_map(params![after, limit as i64], changes::row)
        .store()?
        .collect::<Result<Vec<_>, _>>()
        .store()?;
    Ok(rows
        .into_iter()
        .map(|change| ChangeRecord {
            fanned_out: change.id <= cursor,
            change,
        })
        .collect())
}

pub(crate) fn import_changes(c: &Connection, records: &[ChangeRecord]) -> Result<(), StoreError> {
    let mut insert = c
        .prepare_cached(
            "INSERT INTO changes (id, object_type, object_id, field, value, actor, time, received_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
        )
        .store()?;
    let mut cursor: i64 = c
        .query_row(
            "SELECT last_change_id FROM fanout_cursor WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .store()?;
    let mut first_unfanned: Option<i64> = c
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [FIRST_UNFANNED],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .store()?
        .and_then(|v| v.parse().ok());
    for record in records {
        let change = &record.change;
        insert
            .execute(params![
                change.id,
                change.change.object_type,
                change.change.object_id,
                change.change.field,
                change.change.value,
                change.change.actor,
                change.change.time
            ])
            .store()?;
        // The cursor says "everything up to here is fanned out": it may only move while no
        // change below is still waiting.
        if record.fanned_out && first_unfanned.is_none() {
            cursor = cursor.max(change.id);
        } else if !record.fanned_out && first_unfanned.is_none() {
            first_unfanned = Some(change.id);
        }
    }
    c.execute(
        "UPDATE fanout_cursor SET last_change_id = ?1 WHERE id = 1",
        [cursor],
    )
    .store()?;
    if let Some(first) = first_unfanned {
        c.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            params![FIRST_UNFANNED, first.to_string()],
        )
        .store()?;
    }
    Ok(())
}

pub(crate) fn export_deliveries(
    c: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let mut statement = c
        .prepare_cached(
            "SELECT id, app_id, object_type, state, created_time, body, test, change_ids, object_ids, due_ms,
                    attempt_count, first_attempt_ms,
                    attempt1_time_ms, attempt1_status, attempt1_error, attempt1_latency_ms, attempt1_response
             FROM deliveries WHERE id > ?1 ORDER BY id LIMIT ?2",
        )
        .store()?;
    let mut rows = statement.query(params![after, limit as i64]).store()?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().store()? {
        let state: String = row.get(3).store()?;
        let change_ids: String = row.get(7).store()?;
        let object_ids: String = row.get(8).store()?;
        records.push(DeliveryRecord {
            delivery: Delivery {
                id: row.get(0).store()?,
                app_id: row.get(1).store()?,
                object_type: row.get(2).store()?,
                state: DeliveryState::parse(&state).map_err(|e| corrupt("delivery state", e))?,
                created_time: row.get(4).store()?,
                body: row.get(5).store()?,
                attempts: crate::deliveries::first_attempt(row, 12)
                    .store()?
                    .into_iter()
                    .collect(),
                test: row.get(6).store()?,
            },
            change_ids: change_ids
                .split(',')
                .filter(|id| !id.is_empty())
                .map(|id| id.parse().map_err(|e| corrupt("delivery change ids", e)))
                .collect::<Result<_, _>>()?,
            object_ids: serde_json::from_str(&object_ids)
                .map_err(|e| corrupt("delivery object ids", e))?,
            due_ms: row.get(9).store()?,
            attempt_count: row.get(10).store()?,
            first_attempt_ms: row.get(11).store()?,
        });
    }
    drop(rows);
    let index: HashMap<i64, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.delivery.id, i))
        .collect();
    if let (Some(first), Some(last)) = (records.first(), records.last()) {
        let mut attempts = c
            .prepare_cached(
                "SELECT delivery_id, number, time_ms, status, error, latency_ms, response FROM attempts
                 WHERE delivery_id BETWEEN ?1 AND ?2 ORDER BY delivery_id, number",
            )
            .store()?;
        let mut rows = attempts
            .query(params![first.delivery.id, last.delivery.id])
            .store()?;
        while let Some(row) = rows.next().store()? {
            let id: i64 = row.get(0).store()?;
            if let Some(&position) = index.get(&id) {
                crate::deliveries::add_attempt(
                    &mut records[position].delivery.attempts,
                    crate::deliveries::attempt_row(row)?,
                );
            }
        }
    }
    Ok(records)
}

pub(crate) fn import_deliveries(
    c: &Connection,
    records: &[DeliveryRecord],
) -> Result<(), StoreError> {
    let mut insert = c
        .prepare_cached(
            "INSERT INTO deliveries (id, app_id, object_type, state, created_time, body, change_ids, first_change_id,
                                     last_change_id, object_ids, test, due_ms, attempt_count, first_attempt_ms,
                                     lane_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .store()?;
    let mut attempt = c
        .prepare_cached(
            "INSERT INTO attempts (delivery_id, number, time_ms, status, error, latency_ms, response)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .store()?;
    for record in records {
        let d = &record.delivery;
        let change_ids = record
            .change_ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        insert
            .execute(params![
                d.id,
                d.app_id,
                d.object_type,
                d.state.as_str(),
                d.created_time,
                d.body,
                change_ids,
                record.change_ids.iter().min(),
                record.change_ids.iter().max(),
                serde_json::to_string(&record.object_ids).map_err(StoreError::other)?,
                d.test,
                record.due_ms,
                record.attempt_count,
                record.first_attempt_ms,
                crate::lane_key::lane_key(&d.app_id, &d.object_type),
            ])
            .store()?;
        crate::deliveries::ensure_lane(c, &d.app_id, &d.object_type)?;
        for a in &d.attempts {
            attempt
                .execute(params![
                    d.id,
                    a.number,
                    a.time_ms,
                    a.status,
                    a.error,
                    a.latency_ms,
                    a.response
                ])
                .store()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use graphhooks_core::model::{Attempt, Delivery, DeliveryState};
    use graphhooks_store::{DeliveryRecord, SubscriptionKey};
    use rusqlite::Connection;

    use super::*;

    /// Deliveries copied in get their lane key, so the lane queries (claims, explain) find them.
    #[test]
    fn imported_deliveries_are_found_through_their_lane() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut c).unwrap();
        c.execute_batch(
            "INSERT INTO apps (id, name, mode, secret, created_time) VALUES ('1', 'a', 'live', 's', 0)",
        )
        .unwrap();
        let record = DeliveryRecord {
            delivery: Delivery {
                id: 41,
                app_id: "1".into(),
                object_type: "user".into(),
                state: DeliveryState::Pending,
                created_time: 7,
                body: "{}".into(),
                attempts: vec![Attempt {
                    number: 1,
                    time_ms: 5,
                    status: Some(500),
                    error: None,
                    latency_ms: 2,
                    response: None,
                }],
                test: false,
            },
            change_ids: vec![3, 9],
            object_ids: vec!["u1".into()],
            due_ms: 10,
            attempt_count: 1,
            first_attempt_ms: Some(5),
        };
        import_deliveries(&c, &[record]).unwrap();
        let key = SubscriptionKey {
            app_id: "1".into(),
            object_type: "user".into(),
        };
        let claims = crate::claims::Claims::default();
        let queue = crate::deliveries::lane_queue(&c, &claims, &key, 10, 10, None).unwrap();
        assert_eq!(queue, vec![(10, 41)]);
        let carrying = crate::deliveries::carrying_change(&c, "1", "user", 9).unwrap();
        assert_eq!(carrying, Some(41));
        let copied = crate::deliveries::get(&c, 41).unwrap().unwrap();
        assert_eq!(copied.attempts.len(), 1);
    }
}
