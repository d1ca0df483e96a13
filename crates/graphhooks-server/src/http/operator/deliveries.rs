//! `/admin/deliveries`: the delivery log of every app, and redelivery.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::query_map;
use crate::clock::now_ms;
use crate::http::auth::Admin;
use crate::http::deliveries::{page, parse_filter, repeat_params};
use crate::http::error::AdminError;
use crate::http::views;
use crate::state::SharedState;

/// `GET /admin/deliveries?app_id&state&object&since&until&after&limit`: newest first.
pub(crate) async fn list(
    _: Admin,
    State(state): State<SharedState>,
    OriginalUri(uri): OriginalUri,
    headers: http::HeaderMap,
) -> Result<Response, AdminError> {
    let query = query_map(&uri);
    let filter = parse_filter(|name| query.get(name).cloned()).map_err(AdminError::invalid)?;
    let base = format!("{}/admin/deliveries", crate::http::graph::origin(&headers));
    let repeat = repeat_params(&filter, true);
    Ok(Json(page(&state, filter, &base, &repeat).await?).into_response())
}

fn parse_id(id: &str) -> Result<i64, AdminError> {
    id.parse()
        .map_err(|_| AdminError::not_found(format!("delivery {id} not found")))
}

/// `GET /admin/deliveries/{id}`.
pub(crate) async fn get(
    _: Admin,
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let delivery = state
        .store
        .delivery(parse_id(&id)?)
        .await?
        .ok_or_else(|| AdminError::not_found(format!("delivery {id} not found")))?;
    Ok(Json(views::delivery(&delivery)).into_response())
}

/// `POST /admin/deliveries/{id}/redeliver`: send again now, as a new attempt of the same
/// delivery (same id and body).
pub(crate) async fn redeliver(
    _: Admin,
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let id = parse_id(&id)?;
    state.store.redeliver(id, now_ms()).await?;
    state.engine.deliveries_due();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "success": true, "id": id.to_string() })),
    )
        .into_response())
}
