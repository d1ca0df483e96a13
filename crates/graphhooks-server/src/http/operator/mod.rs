//! The operator API (SPEC §4) under `/admin`, one file per resource. Every handler takes the
//! [`Admin`](super::auth::Admin) extractor, so an unauthenticated call never reaches it.

pub mod apps;
pub mod changes;
pub mod deliveries;
pub mod object_tokens;
pub mod object_types;

use graphhooks_core::model::validate_app_id;

use super::error::AdminError;
use crate::state::SharedState;

/// Checks an app exists; 404 otherwise.
pub(crate) async fn require_app(
    state: &SharedState,
    id: &str,
) -> Result<graphhooks_core::model::App, AdminError> {
    if validate_app_id(id).is_err() {
        return Err(AdminError::not_found(format!("app {id} not found")));
    }
    state
        .store
        .app(id)
        .await?
        .ok_or_else(|| AdminError::not_found(format!("app {id} not found")))
}

/// Reads the query string into a map (last value wins).
pub(crate) fn query_map(uri: &http::Uri) -> std::collections::HashMap<String, String> {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}
