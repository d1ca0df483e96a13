//! The app-facing delivery log: `GET /{app-id}/deliveries` and
//! `POST /{app-id}/deliveries/{id}/redeliver`, with the app's token and the operator's shapes.

use axum::response::{IntoResponse, Response};
use http::Method;

use super::{GraphRequest, app_node, unsupported};
use crate::clock::now_ms;
use crate::http::deliveries::{page, parse_filter, repeat_params};
use crate::http::error::{GraphCode, GraphError};
use crate::state::SharedState;

pub(super) async fn list(
    state: &SharedState,
    request: &GraphRequest,
) -> Result<Response, GraphError> {
    let app_id = app_node(state, request).await?;
    if request.method != Method::GET {
        return Err(unsupported(request));
    }
    let params = &request.params;
    let mut filter =
        parse_filter(|name| params.text(name).ok().flatten()).map_err(GraphError::invalid)?;
    // An app sees its own deliveries only, whatever it asks for.
    filter.app_id = Some(app_id.clone());
    let base = format!("{}/{}/{app_id}/deliveries", request.origin, request.version);
    let mut repeat = repeat_params(&filter, false);
    // Like Meta's paging links, `next` works as given when the token came as a parameter.
    for name in ["access_token", "appsecret_proof"] {
        if let Some(value) = params.text(name)? {
            repeat.push((name, value));
        }
    }
    let body = page(state, filter, &base, &repeat).await?;
    Ok(axum::Json(body).into_response())
}

pub(super) async fn redeliver(
    state: &SharedState,
    request: &GraphRequest,
    id: &str,
) -> Result<Response, GraphError> {
    let app_id = app_node(state, request).await?;
    if request.method != Method::POST {
        return Err(unsupported(request));
    }
    let not_found = || {
        GraphError::new(
            GraphCode::UnknownPath,
            format!("Delivery {id} does not exist"),
        )
    };
    let id: i64 = id.parse().map_err(|_| not_found())?;
    match state.store.delivery(id).await? {
        Some(delivery) if delivery.app_id == app_id => {}
        _ => return Err(not_found()),
    }
    state.store.redeliver(id, now_ms()).await?;
    state.engine.deliveries_due();
    Ok(super::success())
}
