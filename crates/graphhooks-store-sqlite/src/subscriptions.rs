//! Subscriptions: one row per (app, object type).

use graphhooks_core::model::Subscription;
use graphhooks_store::{StoreError, SubscriptionKey};
use rusqlite::{Connection, OptionalExtension, params};

use crate::claims::SharedClaims;
use crate::error::SqlResultExt;
use crate::rows::{self, SUBSCRIPTION_COLUMNS, from_sql_error, status_name};

pub(crate) fn for_app(c: &Connection, app_id: &str) -> Result<Vec<Subscription>, StoreError> {
    let mut statement = c
        .prepare_cached(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE app_id = ?1 ORDER BY object_type"
        ))
        .store()?;
    statement
        .query_map([app_id], rows::subscription)
        .store()?
        .collect::<Result<_, _>>()
        .map_err(from_sql_error)
}

pub(crate) fn get(
    c: &Connection,
    app_id: &str,
    object_type: &str,
) -> Result<Option<Subscription>, StoreError> {
    c.query_row(
        &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE app_id = ?1 AND object_type = ?2"),
        params![app_id, object_type],
        rows::subscription,
    )
    .optional()
    .map_err(from_sql_error)
}

pub(crate) fn put(c: &Connection, s: &Subscription) -> Result<(), StoreError> {
    let exists: Option<i64> = c
        .query_row("SELECT 1 FROM apps WHERE id = ?1", [&s.app_id], |r| {
            r.get(0)
        })
        .optional()
        .store()?;
    if exists.is_none() {
        return Err(StoreError::NotFound("app"));
    }
    let fields = serde_json::to_string(&s.fields).map_err(StoreError::other)?;
    c.execute(
        &format!(
            "INSERT INTO subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (app_id, object_type) DO UPDATE SET
               callback_url = excluded.callback_url, verify_token = excluded.verify_token,
               include_values = excluded.include_values,
               include_client_certificate = excluded.include_client_certificate,
               standard_webhooks = excluded.standard_webhooks, status = excluded.status,
               fields = excluded.fields, failing_since = excluded.failing_since"
        ),
        params![
            s.app_id,
            s.object_type,
            s.callback_url,
            s.verify_token,
            s.include_values,
            s.include_client_certificate,
            s.standard_webhooks,
            status_name(s.status),
            fields,
            s.failing_since,
        ],
    )
    .store()?;
    Ok(())
}

pub(crate) fn delete(
    c: &Connection,
    claims: &SharedClaims,
    app_id: &str,
    object_type: &str,
) -> Result<(), StoreError> {
    let deleted = c
        .execute(
            "DELETE FROM subscriptions WHERE app_id = ?1 AND object_type = ?2",
            params![app_id, object_type],
        )
        .store()?;
    if deleted == 0 {
        return Err(StoreError::NotFound("subscription"));
    }
    // A paused backlog would otherwise wait for a resume that can no longer come: it goes back
    // to `pending`, and dispatch ends each delivery as `failed` with a "not sent" attempt.
    c.execute(
        "UPDATE deliveries SET state = 'pending'
         WHERE lane_key = graphhooks_lane_key(?1, ?2) AND app_id = ?1 AND object_type = ?2
           AND state IN ('pending', 'paused') AND claimed_by IS NULL AND state = 'paused'",
        params![app_id, object_type],
    )
    .store()?;
    // That backlog is due before the lane's cursor.
    claims.lock().reset(&SubscriptionKey {
        app_id: app_id.to_owned(),
        object_type: object_type.to_owned(),
    });
    Ok(())
}
