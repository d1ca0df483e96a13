//! Copying a store: changes and deliveries out and in with their ids (sequences are moved past
//! the imported ids), so delivery ids stay stable for receivers and explain keeps working.

use std::collections::HashMap;

use graphhooks_core::model::{Delivery, DeliveryState};
use graphhooks_store::{ChangeRecord, DeliveryRecord, StoreError};
use sqlx::{PgPool, Row};

use crate::changes::{self, CHANGE_COLUMNS};
use crate::error::{SqlResultExt, corrupt};

pub(crate) async fn export_changes(
    pool: &PgPool,
    after: i64,
    limit: usize,
) -> Result<Vec<ChangeRecord>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {CHANGE_COLUMNS}, NOT EXISTS (SELECT 1 FROM change_queue q WHERE q.change_id = changes.id)
         FROM changes WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .store()?;
    rows.iter()
        .map(|row| {
            Ok(ChangeRecord {
                change: changes::row(row)?,
                fanned_out: row.try_get(7).store()?,
            })
        })
        .collect()
}

pub(crate) async fn import_changes(
    pool: &PgPool,
    records: &[ChangeRecord],
) -> Result<(), StoreError> {
    let mut transaction = pool.begin().await.store()?;
    for record in records {
        let c = &record.change;
        sqlx::query(
            "INSERT INTO changes (id, object_type, object_id, field, value, actor, time, received_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
        )
        .bind(c.id)
        .bind(&c.change.object_type)
        .bind(&c.change.object_id)
        .bind(&c.change.field)
        .bind(&c.change.value)
        .bind(&c.change.actor)
        .bind(c.change.time)
        .execute(&mut *transaction)
        .await
        .store()?;
        if !record.fanned_out {
            sqlx::query("INSERT INTO change_queue (change_id) VALUES ($1)")
                .bind(c.id)
                .execute(&mut *transaction)
                .await
                .store()?;
        }
    }
    sqlx::query(
        "SELECT setval('changes_id_seq', greatest(1, (SELECT coalesce(max(id), 0) FROM changes)))",
    )
    .execute(&mut *transaction)
    .await
    .store()?;
    transaction.commit().await.store()
}

pub(crate) async fn export_deliveries(
    pool: &PgPool,
    after: i64,
    limit: usize,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, app_id, object_type, state, created_time, body, test, change_ids, object_ids, due_ms,
                attempt_count, first_attempt_ms,
                attempt1_time_ms, attempt1_status, attempt1_error, attempt1_latency_ms, attempt1_response
         FROM deliveries WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .store()?;
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        let state: String = row.try_get(3).store()?;
        let attempt_count: i32 = row.try_get(10).store()?;
        records.push(DeliveryRecord {
            delivery: Delivery {
                id: row.try_get(0).store()?,
                app_id: row.try_get(1).store()?,
                object_type: row.try_get(2).store()?,
                state: DeliveryState::parse(&state).map_err(|e| corrupt("delivery state", e))?,
                created_time: row.try_get(4).store()?,
                body: row.try_get(5).store()?,
                attempts: crate::deliveries::first_attempt(row, 12)?
                    .into_iter()
                    .collect(),
                test: row.try_get(6).store()?,
            },
            change_ids: row.try_get(7).store()?,
            object_ids: row.try_get(8).store()?,
            due_ms: row.try_get(9).store()?,
            attempt_count: u32::try_from(attempt_count).unwrap_or(0),
            first_attempt_ms: row.try_get(11).store()?,
        });
    }
    let index: HashMap<i64, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.delivery.id, i))
        .collect();
    let ids: Vec<i64> = records.iter().map(|r| r.delivery.id).collect();
    let rows = sqlx::query(
        "SELECT delivery_id, number, time_ms, status, error, latency_ms, response FROM attempts
         WHERE delivery_id = ANY($1) ORDER BY delivery_id, number",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .store()?;
    for row in rows {
        let id: i64 = row.try_get(0).store()?;
        if let Some(&position) = index.get(&id) {
            crate::deliveries::add_attempt(
                &mut records[position].delivery.attempts,
                crate::deliveries::attempt_row(&row)?,
            );
        }
    }
    Ok(records)
}

pub(crate) async fn import_deliveries(
    pool: &PgPool,
    records: &[DeliveryRecord],
) -> Result<(), StoreError> {
    let mut transaction = pool.begin().await.store()?;
    for record in records {
        let d = &record.delivery;
        sqlx::query(
            "INSERT INTO deliveries (id, app_id, object_type, state, created_time, body, change_ids, first_change_id,
                                     last_change_id, object_ids, test, due_ms, attempt_count, first_attempt_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(d.id)
        .bind(&d.app_id)
        .bind(&d.object_type)
        .bind(d.state.as_str())
        .bind(d.created_time)
        .bind(&d.body)
        .bind(&record.change_ids)
        .bind(record.change_ids.iter().min())
        .bind(record.change_ids.iter().max())
        .bind(&record.object_ids)
        .bind(d.test)
        .bind(record.due_ms)
        .bind(i32::try_from(record.attempt_count).unwrap_or(i32::MAX))
        .bind(record.first_attempt_ms)
        .execute(&mut *transaction)
        .await
        .store()?;
        // Every attempt, the first included, goes to `attempts`: the layout of a database from
        // before migration 0002, which the readers take as it is.
        for a in &d.attempts {
            sqlx::query(
                "INSERT INTO attempts (delivery_id, number, time_ms, status, error, latency_ms, response)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(d.id)
            .bind(i32::try_from(a.number).unwrap_or(i32::MAX))
            .bind(a.time_ms)
            .bind(a.status.map(i32::from))
            .bind(&a.error)
            .bind(i32::try_from(a.latency_ms).unwrap_or(i32::MAX))
            .bind(&a.response)
            .execute(&mut *transaction)
            .await
            .store()?;
        }
    }
    let (apps, types): (Vec<&str>, Vec<&str>) = records
        .iter()
        .map(|r| (r.delivery.app_id.as_str(), r.delivery.object_type.as_str()))
        .unzip();
    crate::deliveries::ensure_lanes(&mut transaction, &apps, &types).await?;
    sqlx::query("SELECT setval('deliveries_id_seq', greatest(1, (SELECT coalesce(max(id), 0) FROM deliveries)))")
        .execute(&mut *transaction)
        .await
        .store()?;
    transaction.commit().await.store()
}
