//! `/admin/object-tokens`: tokens the operator gives an object's owner (a page's, say) so it can
//! manage the apps installed on that object through `/{object-id}/subscribed_apps`. Shown once;
//! only a hash is kept. Issuing a new token for an object revokes the old one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use graphhooks_core::model::validate_object_id;
use serde::Deserialize;
use serde_json::json;

use crate::http::auth::{Admin, OBJECT_TOKEN_PREFIX, object_token_for, object_token_setting};
use crate::http::body::AdminJson;
use crate::http::error::AdminError;
use crate::state::SharedState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectTokenIn {
    object: String,
    id: String,
}

async fn revoke(
    state: &SharedState,
    object_type: &str,
    object_id: &str,
) -> Result<bool, AdminError> {
    let slot = object_token_for(object_type, object_id);
    let Some(old) = state.store.setting(&slot).await? else {
        return Ok(false);
    };
    state
        .store
        .delete_setting(&format!("object_token:{old}"))
        .await?;
    state.store.delete_setting(&slot).await?;
    Ok(true)
}

/// `POST /admin/object-tokens` `{"object","id"}` → 201 `{"token"}`, shown once.
pub(crate) async fn issue(
    _: Admin,
    State(state): State<SharedState>,
    AdminJson(body): AdminJson<ObjectTokenIn>,
) -> Result<Response, AdminError> {
    validate_object_id("object id", &body.id)?;
    if !state
        .catalog
        .reload(&*state.store)
        .await?
        .contains_key(&body.object)
    {
        return Err(graphhooks_core::CoreError::UnknownObjectType(body.object).into());
    }
    revoke(&state, &body.object, &body.id).await?;
    let token = format!(
        "{OBJECT_TOKEN_PREFIX}{}",
        hex::encode(rand::random::<[u8; 24]>())
    );
    let key = object_token_setting(&token);
    let hash = key.trim_start_matches("object_token:").to_owned();
    state
        .store
        .put_setting(&key, &format!("{}\u{1f}{}", body.object, body.id))
        .await?;
    state
        .store
        .put_setting(&object_token_for(&body.object, &body.id), &hash)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "object": body.object, "id": body.id })),
    )
        .into_response())
}

/// `DELETE /admin/object-tokens/{object}/{id}`: revokes the object's token.
pub(crate) async fn delete(
    _: Admin,
    State(state): State<SharedState>,
    Path((object, id)): Path<(String, String)>,
) -> Result<Response, AdminError> {
    if revoke(&state, &object, &id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(AdminError::not_found(format!("{object} {id} has no token")))
    }
}
