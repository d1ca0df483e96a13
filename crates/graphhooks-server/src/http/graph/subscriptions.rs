//! `/{app-id}/subscriptions`: create or extend (with the handshake), list, delete.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use graphhooks_core::model::{Subscription, SubscriptionStatus};
use http::Method;
use serde_json::json;

use super::{GraphRequest, app_node, success, unsupported};
use crate::catalog::object_type;
use crate::handshake;
use crate::http::error::GraphError;
use crate::state::SharedState;

/// Longest verify token accepted.
const VERIFY_TOKEN_MAX: usize = 1024;

pub(crate) async fn handle(
    state: &SharedState,
    request: &GraphRequest,
) -> Result<Response, GraphError> {
    let app_id = app_node(state, request).await?;
    match request.method {
        Method::POST => create(state, request, &app_id).await,
        Method::GET => list(state, &app_id).await,
        Method::DELETE => delete(state, request, &app_id).await,
        _ => Err(unsupported(request)),
    }
}

/// Object type names for error messages.
fn type_names(state: &SharedState) -> String {
    let mut names: Vec<String> = state.catalog.snapshot().keys().cloned().collect();
    names.sort();
    names.join(", ")
}

/// Checks `object` names a type and every field exists on it.
async fn check_object_and_fields(
    state: &SharedState,
    object: &str,
    fields: &[String],
) -> Result<(), GraphError> {
    let check =
        |catalog: &crate::catalog::CatalogMap| -> Result<(), (usize, graphhooks_core::CoreError)> {
            let object_type = object_type(catalog, object).map_err(|e| (0, e))?;
            for (index, field) in fields.iter().enumerate() {
                object_type.field(field).map_err(|e| (index, e))?;
            }
            Ok(())
        };
    match state.catalog.check(&*state.store, check).await? {
        Ok(()) => Ok(()),
        Err((_, graphhooks_core::CoreError::UnknownObjectType(name))) => {
            Err(GraphError::invalid(format!(
                "Param object must be one of {{{}}}; {name:?} is not an object type",
                type_names(state)
            )))
        }
        Err((index, graphhooks_core::CoreError::UnknownField { field, object_type })) => {
            let catalog = state.catalog.snapshot();
            let known = catalog
                .get(&object_type)
                .map(|t| t.fields.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            Err(GraphError::invalid(format!(
                "Param fields[{index}] must be one of {{{known}}} for object {object_type}, not {field:?}"
            )))
        }
        Err((_, other)) => Err(other.into()),
    }
}

/// What a caller asks of a subscription: the Graph API's parameters, or the dashboard's form.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionInput {
    /// The object type.
    pub object: String,
    /// Fields to add (each pinned to `version`).
    pub fields: Vec<String>,
    /// The API version new fields are pinned to.
    pub version: String,
    /// The callback URL; the existing one when `None`.
    pub callback_url: Option<String>,
    /// The verify token; the existing one when `None`.
    pub verify_token: Option<String>,
    /// Send values; unchanged (or `false` for a new subscription) when `None`.
    pub include_values: Option<bool>,
    /// Present the client certificate; unchanged (or `false`) when `None`.
    pub include_client_certificate: Option<bool>,
    /// Add Standard Webhooks headers; unchanged (or `false`) when `None`.
    pub standard_webhooks: Option<bool>,
}

/// Creates a subscription or adds fields to it, running the handshake when the callback URL or
/// verify token is new; nothing is stored if the handshake fails. The one implementation behind
/// `POST /{app-id}/subscriptions` and the dashboard's "Verify and save".
pub async fn save_subscription(
    state: &SharedState,
    app_id: &str,
    input: SubscriptionInput,
) -> Result<(), GraphError> {
    let SubscriptionInput {
        object,
        fields,
        version,
        callback_url,
        verify_token,
        include_values,
        include_client_certificate,
        standard_webhooks,
    } = input;
    check_object_and_fields(state, &object, &fields).await?;
    let existing = state.store.subscription(app_id, &object).await?;
    if existing.is_none() && fields.is_empty() {
        return Err(GraphError::invalid(
            "The parameter fields is required: name at least one field to subscribe to",
        ));
    }
    let callback_url = match (callback_url, &existing) {
        (Some(url), _) if !url.trim().is_empty() => url.trim().to_owned(),
        (_, Some(existing)) => existing.callback_url.clone(),
        _ => {
            return Err(GraphError::invalid(
                "The parameter callback_url is required",
            ));
        }
    };
    let verify_token = match (verify_token, &existing) {
        (Some(token), _) if !token.is_empty() => token,
        (_, Some(existing)) => existing.verify_token.clone(),
        _ => {
            return Err(GraphError::invalid(
                "The parameter verify_token is required",
            ));
        }
    };
    if verify_token.len() > VERIFY_TOKEN_MAX || verify_token.chars().any(char::is_control) {
        return Err(GraphError::invalid(format!(
            "Param verify_token must be at most {VERIFY_TOKEN_MAX} characters without control characters"
        )));
    }
    let include_values = include_values
        .or(existing.as_ref().map(|s| s.include_values))
        .unwrap_or(false);
    let include_client_certificate = include_client_certificate
        .or(existing.as_ref().map(|s| s.include_client_certificate))
        .unwrap_or(false);
    let standard_webhooks = standard_webhooks
        .or(existing.as_ref().map(|s| s.standard_webhooks))
        .unwrap_or(false);
    if include_client_certificate && !state.client.has_client_certificate() {
        return Err(GraphError::invalid(
            "Param include_client_certificate needs a client certificate, and this graphhooks has none configured (--client-cert/--client-key)",
        ));
    }

    state
        .client
        .check_url(&callback_url)
        .await
        .map_err(|refused| {
            GraphError::invalid(format!("Param callback_url is refused: {}", refused.0))
        })?;
    let needs_handshake = match &existing {
        None => true,
        Some(existing) => {
            existing.callback_url != callback_url || existing.verify_token != verify_token
        }
    };
    if needs_handshake {
        handshake::verify(
            &state.client,
            &callback_url,
            &verify_token,
            state.config.delivery_timeout,
            include_client_certificate,
        )
        .await?;
    }

    // Merge into the subscription as it is now: another edit may have landed while the
    // handshake ran.
    let _edit = state.lock_subscriptions(app_id).await;
    let current = state.store.subscription(app_id, &object).await?;
    let mut subscribed: BTreeMap<String, String> = current
        .as_ref()
        .map(|s| s.fields.clone())
        .unwrap_or_default();
    for field in fields {
        subscribed.insert(field, version.clone());
    }
    let subscription = Subscription {
        app_id: app_id.to_owned(),
        object_type: object,
        callback_url,
        verify_token,
        include_values,
        include_client_certificate,
        standard_webhooks,
        status: current
            .as_ref()
            .map_or(SubscriptionStatus::Active, |s| s.status),
        fields: subscribed,
        failing_since: current.as_ref().and_then(|s| s.failing_since),
    };
    tracing::info!(
        app_id,
        object_type = subscription.object_type,
        fields = subscription.fields.len(),
        "Saved the subscription of app {app_id} to {}",
        subscription.object_type
    );
    state.store.put_subscription(subscription).await?;
    Ok(())
}

/// Removes fields from a subscription, and the subscription when none is left. The one
/// implementation behind `DELETE /{app-id}/subscriptions?object=&fields=` and the dashboard.
pub async fn remove_fields(
    state: &SharedState,
    app_id: &str,
    object: &str,
    fields: &[String],
) -> Result<(), GraphError> {
    check_object_and_fields(state, object, fields).await?;
    let _edit = state.lock_subscriptions(app_id).await;
    if let Some(mut subscription) = state.store.subscription(app_id, object).await? {
        for field in fields {
            subscription.fields.remove(field);
        }
        if subscription.fields.is_empty() {
            remove(state, app_id, object).await?;
        } else {
            state.store.put_subscription(subscription).await?;
        }
    }
    Ok(())
}

/// `POST`: creates the subscription or adds fields to it (see [`save_subscription`]).
async fn create(
    state: &SharedState,
    request: &GraphRequest,
    app_id: &str,
) -> Result<Response, GraphError> {
    let params = &request.params;
    let input = SubscriptionInput {
        object: params.required_text("object")?,
        fields: params.list("fields")?.unwrap_or_default(),
        version: request.version.clone(),
        callback_url: params.text("callback_url")?,
        verify_token: params.text("verify_token")?,
        include_values: params.boolean("include_values")?,
        include_client_certificate: params.boolean("include_client_certificate")?,
        standard_webhooks: params.boolean("standard_webhooks")?,
    };
    save_subscription(state, app_id, input).await?;
    Ok(success())
}

/// `GET`: the app's subscriptions, without tokens.
async fn list(state: &SharedState, app_id: &str) -> Result<Response, GraphError> {
    let subscriptions = state.store.subscriptions(app_id).await?;
    let data: Vec<_> = subscriptions
        .iter()
        .map(crate::http::views::subscription)
        .collect();
    Ok(axum::Json(json!({ "data": data })).into_response())
}

/// `DELETE`: with `object` and `fields`, removes those fields (and the subscription when none
/// is left); with `object` only, that subscription; with neither, all of the app's.
async fn delete(
    state: &SharedState,
    request: &GraphRequest,
    app_id: &str,
) -> Result<Response, GraphError> {
    let params = &request.params;
    let object = params.text("object")?.filter(|o| !o.trim().is_empty());
    let fields = params.list("fields")?.filter(|f| !f.is_empty());
    match (object, fields) {
        (None, Some(_)) => Err(GraphError::invalid(
            "The parameter object is required when fields are given",
        )),
        (None, None) => {
            for subscription in state.store.subscriptions(app_id).await? {
                remove(state, app_id, &subscription.object_type).await?;
            }
            Ok(success())
        }
        (Some(object), None) => {
            check_object_and_fields(state, &object, &[]).await?;
            remove(state, app_id, &object).await?;
            Ok(success())
        }
        (Some(object), Some(fields)) => {
            remove_fields(state, app_id, &object, &fields).await?;
            Ok(success())
        }
    }
}

/// Deletes a subscription; deleting one that does not exist is not an error.
async fn remove(state: &SharedState, app_id: &str, object: &str) -> Result<(), GraphError> {
    match state.store.delete_subscription(app_id, object).await {
        Ok(()) | Err(graphhooks_store::StoreError::NotFound(_)) => Ok(()),
        Err(error) => Err(error.into()),
    }
}
