//! Subscriptions: one row per (app, object type).

use graphhooks_core::model::Subscription;
use graphhooks_store::StoreError;
use sqlx::{PgExecutor, PgPool};

use crate::error::SqlResultExt;
use crate::rows::{self, status_name, subscription_columns};

pub(crate) async fn for_app(pool: &PgPool, app_id: &str) -> Result<Vec<Subscription>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {} FROM subscriptions WHERE app_id = $1 ORDER BY object_type",
        subscription_columns(None)
    ))
    .bind(app_id)
    .fetch_all(pool)
    .await
    .store()?;
    rows.iter().map(rows::subscription).collect()
}

pub(crate) async fn get<'e>(
    executor: impl PgExecutor<'e>,
    app_id: &str,
    object_type: &str,
) -> Result<Option<Subscription>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {} FROM subscriptions WHERE app_id = $1 AND object_type = $2",
        subscription_columns(None)
    ))
    .bind(app_id)
    .bind(object_type)
    .fetch_optional(executor)
    .await
    .store()?;
    row.as_ref().map(rows::subscription).transpose()
}

pub(crate) async fn put(pool: &PgPool, s: &Subscription) -> Result<(), StoreError> {
    let fields = serde_json::to_value(&s.fields).map_err(StoreError::other)?;
    sqlx::query(&format!(
        "INSERT INTO subscriptions ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (app_id, object_type) DO UPDATE SET
           callback_url = excluded.callback_url, verify_token = excluded.verify_token,
           include_values = excluded.include_values,
           include_client_certificate = excluded.include_client_certificate,
           standard_webhooks = excluded.standard_webhooks, status = excluded.status,
           fields = excluded.fields, failing_since = excluded.failing_since",
        subscription_columns(None)
    ))
    .bind(&s.app_id)
    .bind(&s.object_type)
    .bind(&s.callback_url)
    .bind(&s.verify_token)
    .bind(s.include_values)
    .bind(s.include_client_certificate)
    .bind(s.standard_webhooks)
    .bind(status_name(s.status))
    .bind(fields)
    .bind(s.failing_since)
    .execute(pool)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23503") => {
            StoreError::NotFound("app")
        }
        _ => crate::error::map_error(error),
    })?;
    Ok(())
}

pub(crate) async fn delete(
    pool: &PgPool,
    app_id: &str,
    object_type: &str,
) -> Result<(), StoreError> {
    let mut transaction = pool.begin().await.store()?;
    let deleted = sqlx::query("DELETE FROM subscriptions WHERE app_id = $1 AND object_type = $2")
        .bind(app_id)
        .bind(object_type)
        .execute(&mut *transaction)
        .await
        .store()?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NotFound("subscription"));
    }
    // A paused backlog would otherwise wait for a resume that can no longer come: it goes back
    // to `pending`, and dispatch ends each delivery as `failed` with a "not sent" attempt.
    sqlx::query(
        "UPDATE deliveries SET state = 'pending' WHERE app_id = $1 AND object_type = $2 AND state = 'paused'",
    )
    .bind(app_id)
    .bind(object_type)
    .execute(&mut *transaction)
    .await
    .store()?;
    transaction.commit().await.store()?;
    Ok(())
}
