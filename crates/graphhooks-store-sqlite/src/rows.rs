//! Row → model mapping shared by the query modules. Stored text that no longer parses (a state
//! or mode this version does not know) is reported as a store defect, not a panic.

use std::collections::BTreeMap;

use graphhooks_core::model::{App, AppMode, Secret, Subscription, SubscriptionStatus};
use graphhooks_store::StoreError;
use rusqlite::Row;

/// Converts a domain parse error on stored data into a store error.
pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::other(format!("stored {what} is invalid: {error}"))
}

/// Wraps a [`StoreError`] so it can leave a rusqlite row closure.
pub(crate) fn to_sql_error(error: StoreError) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(error))
}

/// Unwraps what [`to_sql_error`] wrapped; other errors map as usual.
pub(crate) fn from_sql_error(error: rusqlite::Error) -> StoreError {
    match error {
        rusqlite::Error::ToSqlConversionFailure(inner) => match inner.downcast::<StoreError>() {
            Ok(store) => *store,
            Err(other) => StoreError::Other(other),
        },
        other => crate::error::map_error(other),
    }
}

/// Columns: id, name, mode, secret, previous_secret, previous_secret_until, created_time.
pub(crate) const APP_COLUMNS: &str =
    "id, name, mode, secret, previous_secret, previous_secret_until, created_time";

pub(crate) fn app(row: &Row<'_>) -> rusqlite::Result<App> {
    let mode: String = row.get(2)?;
    let previous: Option<String> = row.get(4)?;
    let previous_until: Option<i64> = row.get(5)?;
    Ok(App {
        id: row.get(0)?,
        name: row.get(1)?,
        mode: AppMode::parse(&mode).map_err(|e| to_sql_error(corrupt("app mode", e)))?,
        secret: Secret::from_stored(row.get(3)?),
        previous_secret: previous
            .zip(previous_until)
            .map(|(s, until)| (Secret::from_stored(s), until)),
        created_time: row.get(6)?,
    })
}

/// Columns of a subscription row, in the order [`subscription`] reads them.
pub(crate) const SUBSCRIPTION_COLUMNS: &str = "app_id, object_type, callback_url, verify_token, include_values, \
     include_client_certificate, standard_webhooks, status, fields, failing_since";

pub(crate) fn subscription(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    let status: String = row.get(7)?;
    let fields: String = row.get(8)?;
    Ok(Subscription {
        app_id: row.get(0)?,
        object_type: row.get(1)?,
        callback_url: row.get(2)?,
        verify_token: row.get(3)?,
        include_values: row.get(4)?,
        include_client_certificate: row.get(5)?,
        standard_webhooks: row.get(6)?,
        status: match status.as_str() {
            "active" => SubscriptionStatus::Active,
            "paused" => SubscriptionStatus::Paused,
            other => return Err(to_sql_error(corrupt("subscription status", other))),
        },
        fields: serde_json::from_str::<BTreeMap<String, String>>(&fields)
            .map_err(|e| to_sql_error(corrupt("subscription fields", e)))?,
        failing_since: row.get(9)?,
    })
}

/// The stored name of a subscription status.
pub(crate) fn status_name(status: SubscriptionStatus) -> &'static str {
    match status {
        SubscriptionStatus::Active => "active",
        SubscriptionStatus::Paused => "paused",
    }
}
