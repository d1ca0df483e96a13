//! `/{object-id}/subscribed_apps` (SPEC §3, §4a): the apps installed on an object, Meta's way
//! for pages. Callers are the operator (admin token) or the object's owner (an object token the
//! operator issued, which only reaches its own object). Installing is the grant for that object:
//! it gets the permissions the subscribed fields need, added to any it had.

use axum::response::{IntoResponse, Response};
use graphhooks_core::model::{Grant, validate_app_id, validate_object_id};
use http::Method;
use serde_json::json;

use super::{GraphRequest, success, unsupported};
use crate::http::auth::Caller;
use crate::http::error::{GraphCode, GraphError};
use crate::state::SharedState;

pub(super) async fn handle(
    state: &SharedState,
    request: &GraphRequest,
) -> Result<Response, GraphError> {
    let object_id = request.segments[0].clone();
    validate_object_id("object id", &object_id)?;
    // An object token reaches its own object only, and fixes the type.
    let bound_type = match &request.caller {
        Caller::Operator => None,
        Caller::Object {
            object_type,
            object_id: owned,
        } if *owned == object_id => Some(object_type.clone()),
        _ => {
            return Err(GraphError::new(
                GraphCode::Permission,
                "Permissions error: subscribed_apps needs the object's token or the operator's",
            ));
        }
    };
    match request.method {
        Method::GET => list(state, &object_id, bound_type.as_deref()).await,
        Method::POST => install(state, request, &object_id, bound_type).await,
        Method::DELETE => uninstall(state, request, &object_id, bound_type).await,
        _ => Err(unsupported(request)),
    }
}

async fn list(
    state: &SharedState,
    object_id: &str,
    bound_type: Option<&str>,
) -> Result<Response, GraphError> {
    let installs = state.store.installs(object_id).await?;
    let data: Vec<_> = installs
        .iter()
        .filter(|install| bound_type.is_none_or(|t| t == install.object_type))
        .map(|install| {
            json!({
                "id": install.app_id,
                "name": install.app_name,
                "object_type": install.object_type,
                "subscribed_fields": install.subscribed_fields,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "data": data })).into_response())
}

async fn install(
    state: &SharedState,
    request: &GraphRequest,
    object_id: &str,
    bound_type: Option<String>,
) -> Result<Response, GraphError> {
    let params = &request.params;
    let app_id = params.required_text("app_id")?;
    if validate_app_id(&app_id).is_err() || state.store.app(&app_id).await?.is_none() {
        return Err(GraphError::invalid(format!(
            "Param app_id {app_id:?} is not an app"
        )));
    }
    let object_type = match (bound_type, params.text("object_type")?) {
        (Some(bound), Some(given)) if bound != given => {
            return Err(GraphError::invalid(format!(
                "This token is for a {bound}, not a {given}"
            )));
        }
        (Some(bound), _) => bound,
        (None, Some(given)) => given,
        (None, None) => return Err(GraphError::invalid("The parameter object_type is required")),
    };
    let fields = params.list("subscribed_fields")?.unwrap_or_default();
    let catalog = state.catalog.reload(&*state.store).await?;
    let Some(definition) = catalog.get(&object_type) else {
        return Err(GraphError::invalid(format!(
            "Param object_type {object_type:?} is not an object type"
        )));
    };
    let mut permissions = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        let Some(field) = definition.fields.get(field) else {
            return Err(GraphError::invalid(format!(
                "Param subscribed_fields[{index}] must be one of {{{}}}, not {field:?}",
                definition
                    .fields
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        permissions.extend(field.permission.clone());
    }
    permissions.sort();
    permissions.dedup();
    let grant = Grant {
        app_id: app_id.clone(),
        object_type,
        object_id: object_id.to_owned(),
        permissions,
    };
    state.store.install_app(grant, fields).await?;
    tracing::info!(
        app_id,
        object_id,
        "Installed app {app_id} on object {object_id}"
    );
    Ok(success())
}

async fn uninstall(
    state: &SharedState,
    request: &GraphRequest,
    object_id: &str,
    bound_type: Option<String>,
) -> Result<Response, GraphError> {
    let app_id = request.params.required_text("app_id")?;
    // An object token removes installs on its own object only; the operator may name a type or
    // remove the app from every object with this id.
    let object_type = match (bound_type, request.params.text("object_type")?) {
        (Some(bound), Some(given)) if bound != given => {
            return Err(GraphError::invalid(format!(
                "This token is for a {bound}, not a {given}"
            )));
        }
        (Some(bound), _) => Some(bound),
        (None, given) => given,
    };
    state
        .store
        .uninstall_app(&app_id, object_type.as_deref(), object_id)
        .await?;
    Ok(success())
}
