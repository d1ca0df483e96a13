//! Row → model mapping shared by the query modules.

use std::collections::BTreeMap;

use graphhooks_core::model::{App, AppMode, Secret, Subscription, SubscriptionStatus};
use graphhooks_store::StoreError;
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::error::{SqlResultExt, corrupt};

/// Columns read by [`app`].
pub(crate) const APP_COLUMNS: &str =
    "id, name, mode, secret, previous_secret, previous_secret_until, created_time";

pub(crate) fn app(row: &PgRow) -> Result<App, StoreError> {
    let mode: String = row.try_get(2).store()?;
    let previous: Option<String> = row.try_get(4).store()?;
    let previous_until: Option<i64> = row.try_get(5).store()?;
    Ok(App {
        id: row.try_get(0).store()?,
        name: row.try_get(1).store()?,
        mode: AppMode::parse(&mode).map_err(|e| corrupt("app mode", e))?,
        secret: Secret::from_stored(row.try_get(3).store()?),
        previous_secret: previous
            .zip(previous_until)
            .map(|(s, until)| (Secret::from_stored(s), until)),
        created_time: row.try_get(6).store()?,
    })
}

/// Columns read by [`subscription`] (prefix each with an alias where joined).
pub(crate) const SUBSCRIPTION_COLUMNS: [&str; 10] = [
    "app_id",
    "object_type",
    "callback_url",
    "verify_token",
    "include_values",
    "include_client_certificate",
    "standard_webhooks",
    "status",
    "fields",
    "failing_since",
];

/// The subscription columns, each prefixed with `alias.` when an alias is given.
pub(crate) fn subscription_columns(alias: Option<&str>) -> String {
    SUBSCRIPTION_COLUMNS
        .iter()
        .map(|column| match alias {
            Some(alias) => format!("{alias}.{column}"),
            None => (*column).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn subscription(row: &PgRow) -> Result<Subscription, StoreError> {
    let status: String = row.try_get(7).store()?;
    let fields: serde_json::Value = row.try_get(8).store()?;
    Ok(Subscription {
        app_id: row.try_get(0).store()?,
        object_type: row.try_get(1).store()?,
        callback_url: row.try_get(2).store()?,
        verify_token: row.try_get(3).store()?,
        include_values: row.try_get(4).store()?,
        include_client_certificate: row.try_get(5).store()?,
        standard_webhooks: row.try_get(6).store()?,
        status: match status.as_str() {
            "active" => SubscriptionStatus::Active,
            "paused" => SubscriptionStatus::Paused,
            other => return Err(corrupt("subscription status", other)),
        },
        fields: serde_json::from_value::<BTreeMap<String, String>>(fields)
            .map_err(|e| corrupt("subscription fields", e))?,
        failing_since: row.try_get(9).store()?,
    })
}

/// The stored name of a subscription status.
pub(crate) fn status_name(status: SubscriptionStatus) -> &'static str {
    match status {
        SubscriptionStatus::Active => "active",
        SubscriptionStatus::Paused => "paused",
    }
}
