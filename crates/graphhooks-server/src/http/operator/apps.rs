//! `/admin/apps`: apps, their secrets, roles and grants.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use graphhooks_core::duration::parse_duration;
use graphhooks_core::model::{
    App, AppMode, Grant, Role, Secret, validate_app_id, validate_app_name, validate_object_id,
};
use graphhooks_store::StoreError;
use serde::Deserialize;
use serde_json::json;

use super::require_app;
use crate::clock::{now_ms, now_s};
use crate::http::auth::Admin;
use crate::http::body::AdminJson;
use crate::http::error::{AdminCode, AdminError};
use crate::http::views;
use crate::state::SharedState;

/// Longest grace period a rotation may give the old secret.
const GRACE_MAX: Duration = Duration::from_secs(30 * 24 * 3600);

/// A new random secret: 32 bytes as 64 hex characters.
pub(crate) fn new_secret() -> Secret {
    Secret::from_stored(hex::encode(rand::random::<[u8; 32]>()))
}

/// A new random app id: 15 digits, like Meta's.
fn new_app_id() -> String {
    (rand::random::<u64>() % 900_000_000_000_000 + 100_000_000_000_000).to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppIn {
    name: String,
    #[serde(default)]
    mode: Option<String>,
    /// Optional: keep an id from elsewhere (a migration).
    #[serde(default)]
    id: Option<String>,
}

/// `POST /admin/apps` → 201 with the secret, shown this once.
pub(crate) async fn create(
    _: Admin,
    State(state): State<SharedState>,
    AdminJson(body): AdminJson<AppIn>,
) -> Result<Response, AdminError> {
    validate_app_name(&body.name)?;
    let mode = body
        .mode
        .as_deref()
        .map(AppMode::parse)
        .transpose()?
        .unwrap_or(AppMode::Development);
    if let Some(id) = &body.id {
        validate_app_id(id)?;
    }
    let secret = new_secret();
    // A random id may collide; try a few times.
    for _ in 0..5 {
        let app = App {
            id: body.id.clone().unwrap_or_else(new_app_id),
            name: body.name.clone(),
            mode,
            secret: secret.clone(),
            previous_secret: None,
            created_time: now_s(),
        };
        match state.store.create_app(app.clone()).await {
            Ok(()) => {
                tracing::info!(app_id = app.id, "Created app {}", app.id);
                let mut out = views::app(&app);
                out["secret"] = json!(secret.expose());
                return Ok((StatusCode::CREATED, Json(out)).into_response());
            }
            Err(StoreError::Conflict(_)) if body.id.is_none() => continue,
            Err(StoreError::Conflict(_)) => {
                return Err(AdminError::new(
                    AdminCode::Conflict,
                    format!("an app with id {} exists", app.id),
                ));
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(AdminError::new(
        AdminCode::Internal,
        "could not find a free app id",
    ))
}

/// `GET /admin/apps`.
pub(crate) async fn list(
    _: Admin,
    State(state): State<SharedState>,
) -> Result<Response, AdminError> {
    let apps = state.store.apps().await?;
    Ok(Json(json!({ "data": apps.iter().map(views::app).collect::<Vec<_>>() })).into_response())
}

/// `GET /admin/apps/{id}`.
pub(crate) async fn get(
    _: Admin,
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let app = require_app(&state, &id).await?;
    Ok(Json(views::app(&app)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    mode: Option<String>,
}

/// `PATCH /admin/apps/{id}`: name and/or mode.
pub(crate) async fn update(
    _: Admin,
    State(state): State<SharedState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<AppPatch>,
) -> Result<Response, AdminError> {
    require_app(&state, &id).await?;
    if let Some(name) = &body.name {
        validate_app_name(name)?;
    }
    let mode = body.mode.as_deref().map(AppMode::parse).transpose()?;
    let app = state.store.update_app(&id, body.name, mode).await?;
    Ok(Json(views::app(&app)).into_response())
}

/// `DELETE /admin/apps/{id}`: the app with its roles, grants, subscriptions and deliveries.
pub(crate) async fn delete(
    _: Admin,
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    require_app(&state, &id).await?;
    state.store.delete_app(&id).await?;
    tracing::info!(app_id = id, "Deleted app {id}");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateIn {
    #[serde(default)]
    grace_period: Option<String>,
}

/// `POST /admin/apps/{id}/secret`: a new secret; the old one keeps signing (in
/// `X-Hub-Signature-256-Previous`) for the grace period.
pub(crate) async fn rotate_secret(
    _: Admin,
    State(state): State<SharedState>,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Result<Response, AdminError> {
    require_app(&state, &id).await?;
    let (_, body) =
        crate::http::body::read_limited(request, crate::http::body::ADMIN_BODY_LIMIT).await?;
    let body: RotateIn = if body.iter().all(u8::is_ascii_whitespace) {
        RotateIn::default()
    } else {
        crate::http::body::parse_json(&body)?
    };
    let grace = match body.grace_period.as_deref() {
        Some(text) => parse_duration(text)?,
        None => Duration::ZERO,
    };
    if grace > GRACE_MAX {
        return Err(AdminError::invalid("grace_period may be at most 30 days"));
    }
    let secret = new_secret();
    let until = now_ms() + i64::try_from(grace.as_millis()).unwrap_or(0);
    state
        .store
        .rotate_secret(&id, secret.clone(), until)
        .await?;
    tracing::info!(
        app_id = id,
        grace_ms = grace.as_millis() as u64,
        "Rotated the secret of app {id}"
    );
    Ok(
        Json(json!({ "secret": secret.expose(), "previous_valid_until": until / 1000 }))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleIn {
    role: String,
}

/// `GET /admin/apps/{id}/roles`.
pub(crate) async fn roles(
    _: Admin,
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    require_app(&state, &id).await?;
    let roles = state.store.roles(&id).await?;
    let data: Vec<_> = roles
        .iter()
        .map(|(user, role)| json!({"user_id": user, "role": role.as_str()}))
        .collect();
    Ok(Json(json!({ "data": data })).into_response())
}

/// `PUT /admin/apps/{id}/roles/{user_id}`.
pub(crate) async fn put_role(
    _: Admin,
    State(state): State<SharedState>,
    Path((id, user_id)): Path<(String, String)>,
    AdminJson(body): AdminJson<RoleIn>,
) -> Result<Response, AdminError> {
    require_app(&state, &id).await?;
    validate_object_id("user id", &user_id)?;
    let role = Role::parse(&body.role)?;
    state.store.put_role(&id, &user_id, role).await?;
    Ok(Json(json!({"app_id": id, "user_id": user_id, "role": role.as_str()})).into_response())
}

/// `DELETE /admin/apps/{id}/roles/{user_id}`.
pub(crate) async fn delete_role(
    _: Admin,
    State(state): State<SharedState>,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Response, AdminError> {
    require_app(&state, &id).await?;
    state
        .store
        .delete_role(&id, &user_id)
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => {
                AdminError::not_found(format!("user {user_id} has no role on app {id}"))
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantIn {
    #[serde(default)]
    permissions: Vec<String>,
}

/// `GET /admin/apps/{id}/grants`.
pub(crate) async fn grants(
    _: Admin,
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    require_app(&state, &id).await?;
    let grants = state.store.grants(&id).await?;
    Ok(Json(json!({ "data": grants })).into_response())
}

/// `PUT /admin/apps/{id}/grants/{type}/{object_id}`.
pub(crate) async fn put_grant(
    _: Admin,
    State(state): State<SharedState>,
    Path((id, object_type, object_id)): Path<(String, String, String)>,
    AdminJson(body): AdminJson<GrantIn>,
) -> Result<Response, AdminError> {
    require_app(&state, &id).await?;
    validate_object_id("object id", &object_id)?;
    let catalog = state.catalog.snapshot();
    if !catalog.contains_key(&object_type)
        && !state
            .catalog
            .reload(&*state.store)
            .await?
            .contains_key(&object_type)
    {
        return Err(graphhooks_core::CoreError::UnknownObjectType(object_type).into());
    }
    for permission in &body.permissions {
        graphhooks_core::catalog::validate_name("permission", permission)?;
    }
    let mut permissions = body.permissions;
    permissions.sort();
    permissions.dedup();
    let grant = Grant {
        app_id: id,
        object_type,
        object_id,
        permissions,
    };
    state.store.put_grant(grant.clone()).await?;
    Ok(Json(json!(grant)).into_response())
}

/// `DELETE /admin/apps/{id}/grants/{type}/{object_id}`.
pub(crate) async fn delete_grant(
    _: Admin,
    State(state): State<SharedState>,
    Path((id, object_type, object_id)): Path<(String, String, String)>,
) -> Result<Response, AdminError> {
    require_app(&state, &id).await?;
    state
        .store
        .delete_grant(&id, &object_type, &object_id)
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => AdminError::not_found(format!(
                "app {id} has no grant for {object_type} {object_id}"
            )),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /admin/apps/{id}/subscriptions`: the app's subscriptions as the operator sees them
/// (with `include_values` and status, still without tokens).
pub(crate) async fn subscriptions(
    _: Admin,
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    require_app(&state, &id).await?;
    let subscriptions = state.store.subscriptions(&id).await?;
    let data: Vec<_> = subscriptions
        .iter()
        .map(|s| {
            let mut view = views::subscription(s);
            view["include_values"] = json!(s.include_values);
            view["standard_webhooks"] = json!(s.standard_webhooks);
            view["include_client_certificate"] = json!(s.include_client_certificate);
            view
        })
        .collect();
    Ok(Json(json!({ "data": data })).into_response())
}

/// `POST /admin/apps/{id}/subscriptions/{object}/resume`: reactivates a paused subscription; its
/// backlog goes out oldest first.
pub(crate) async fn resume(
    _: Admin,
    State(state): State<SharedState>,
    Path((id, object_type)): Path<(String, String)>,
) -> Result<Response, AdminError> {
    require_app(&state, &id).await?;
    let resumed = state
        .store
        .resume_subscription(&id, &object_type, now_ms())
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => {
                AdminError::not_found(format!("app {id} has no subscription to {object_type}"))
            }
            other => other.into(),
        })?;
    tracing::info!(
        app_id = id,
        object_type,
        resumed,
        "Resumed app {id}'s {object_type} subscription; {resumed} held notifications go out"
    );
    state.engine.deliveries_due();
    Ok(Json(json!({ "success": true, "resumed": resumed })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayIn {
    since: i64,
    until: i64,
    #[serde(default)]
    object: Option<String>,
}

/// `POST /admin/apps/{id}/replay`: builds again the notifications of the changes of a time window
/// (event time, unix seconds) for this app, with its subscriptions and grants as they are now.
pub(crate) async fn replay(
    _: Admin,
    State(state): State<SharedState>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<ReplayIn>,
) -> Result<Response, AdminError> {
    require_app(&state, &id).await?;
    if body.since > body.until {
        return Err(AdminError::invalid("since must not be after until"));
    }
    if let Some(object) = &body.object
        && !state
            .catalog
            .reload(&*state.store)
            .await?
            .contains_key(object)
    {
        return Err(graphhooks_core::CoreError::UnknownObjectType(object.clone()).into());
    }
    let limits = graphhooks_core::wire::BatchLimits {
        max_changes: state.config.batch_max,
        max_bytes: graphhooks_core::MAX_BODY_BYTES,
    };
    let planner: graphhooks_store::Planner = std::sync::Arc::new(move |changes, facts| {
        graphhooks_core::fanout::plan(changes, facts, now_s(), limits)
    });
    let report = state
        .store
        .replay(
            &id,
            (body.since, body.until),
            body.object.as_deref(),
            now_ms(),
            planner,
        )
        .await?;
    tracing::info!(
        app_id = id,
        changes = report.changes,
        deliveries = report.deliveries,
        "Replayed {} changes to app {id}",
        report.changes
    );
    state.engine.deliveries_due();
    Ok(Json(json!({ "replayed": report.deliveries, "changes": report.changes })).into_response())
}
