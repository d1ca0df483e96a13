//! `GET /{app-id}/changes/{change-id}/explain`: an app asks where one of its changes went. It
//! sees only its own result, and only for changes about objects it may see (a grant for the
//! object, or a type that needs none): other changes answer as unknown, so an app cannot learn
//! of objects it has no grant for.

use axum::response::{IntoResponse, Response};
use graphhooks_core::catalog::GrantMode;
use http::Method;

use super::{GraphRequest, app_node, unsupported};
use crate::http::error::{GraphCode, GraphError};
use crate::http::operator::changes::explain_change;
use crate::state::SharedState;

pub(super) async fn handle(
    state: &SharedState,
    request: &GraphRequest,
    id: &str,
) -> Result<Response, GraphError> {
    let app_id = app_node(state, request).await?;
    if request.method != Method::GET {
        return Err(unsupported(request));
    }
    let not_found = || {
        GraphError::new(
            GraphCode::UnknownPath,
            format!("Change {id} does not exist"),
        )
    };
    let change_id: i64 = id.parse().map_err(|_| not_found())?;
    let Some(facts) = state.store.explain_facts(change_id, Some(&app_id)).await? else {
        return Err(not_found());
    };
    let visible =
        facts.object_type.grant == GrantMode::None || facts.apps.iter().any(|a| a.grant.is_some());
    if !visible {
        return Err(not_found());
    }
    let body = explain_change(state, change_id, Some(&app_id))
        .await
        .map_err(GraphError::from)?
        .ok_or_else(not_found)?;
    Ok(axum::Json(body).into_response())
}
