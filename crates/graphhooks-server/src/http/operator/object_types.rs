//! `/admin/object-types`: the catalog.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use graphhooks_core::catalog::{FieldDef, GrantMode, ObjectTypeUpdate, validate_update};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::auth::Admin;
use crate::http::body::AdminJson;
use crate::http::error::AdminError;
use crate::http::views;
use crate::state::SharedState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FieldIn {
    name: String,
    /// Absent: keep the field's permission; `null`: no permission; a name: that permission.
    #[serde(default, deserialize_with = "present")]
    permission: Option<Option<String>>,
    #[serde(default)]
    sample: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectTypeIn {
    #[serde(default)]
    grant: Option<String>,
    #[serde(default)]
    fields: Vec<FieldIn>,
}

/// Tells a key given as `null` (`Some(None)`) from a missing key (`None`, via `default`).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// `GET /admin/object-types`: the catalog.
pub(crate) async fn list(
    _: Admin,
    State(state): State<SharedState>,
) -> Result<Response, AdminError> {
    let types = state.store.object_types().await?;
    Ok(
        Json(json!({ "data": types.iter().map(views::object_type).collect::<Vec<_>>() }))
            .into_response(),
    )
}

/// `GET /admin/object-types/{name}`: one type.
pub(crate) async fn get(
    _: Admin,
    State(state): State<SharedState>,
    Path(name): Path<String>,
) -> Result<Response, AdminError> {
    let catalog = state.catalog.reload(&*state.store).await?;
    let object_type = catalog
        .get(&name)
        .ok_or_else(|| AdminError::not_found(format!("object type {name} not found")))?;
    Ok(Json(views::object_type(object_type)).into_response())
}

/// `PUT /admin/object-types/{name}`: declares a type, or adds/updates the named fields of an
/// existing one (fields not named are kept).
pub(crate) async fn put(
    _: Admin,
    State(state): State<SharedState>,
    Path(name): Path<String>,
    AdminJson(body): AdminJson<ObjectTypeIn>,
) -> Result<Response, AdminError> {
    let existing = state
        .catalog
        .reload(&*state.store)
        .await?
        .get(&name)
        .cloned();
    let grant = match body.grant.as_deref() {
        Some(text) => GrantMode::parse(text)?,
        None => existing.as_ref().map_or(GrantMode::Object, |t| t.grant),
    };
    let update = ObjectTypeUpdate {
        grant,
        fields: body
            .fields
            .into_iter()
            .map(|f| FieldDef {
                // Keep the existing sample when an update does not give one.
                sample: f.sample.unwrap_or_else(|| {
                    existing
                        .as_ref()
                        .and_then(|t| t.fields.get(&f.name))
                        .map(|old| old.sample.clone())
                        .filter(|s| !s.is_null())
                        .unwrap_or_else(|| Value::String(format!("sample {}", f.name)))
                }),
                permission: match f.permission {
                    Some(given) => given.filter(|p| !p.is_empty()),
                    None => existing
                        .as_ref()
                        .and_then(|t| t.fields.get(&f.name))
                        .and_then(|old| old.permission.clone()),
                },
                name: f.name,
            })
            .collect(),
    };
    validate_update(&name, &update)?;
    if existing.is_none() && update.fields.is_empty() {
        return Err(AdminError::invalid(format!(
            "object type {name} is new: declare at least one field"
        )));
    }
    let saved = state.store.put_object_type(&name, update).await?;
    state.catalog.reload(&*state.store).await?;
    tracing::info!(
        object_type = name,
        fields = saved.fields.len(),
        "Declared object type {name}"
    );
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(views::object_type(&saved))).into_response())
}
