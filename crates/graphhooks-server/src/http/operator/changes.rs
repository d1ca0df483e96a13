//! `/admin/changes`: accepting changes, reading one, and explaining where it went.

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use graphhooks_core::eligibility::{AppFacts, ChangeFacts, explain as explain_rules};
use graphhooks_core::model::SubscriptionStatus;
use serde_json::{Value, json};

use super::{query_map, require_app};
use crate::clock::now_s;
use crate::http::auth::Admin;
use crate::http::body::{ADMIN_BODY_LIMIT, parse_json, read_limited};
use crate::http::error::AdminError;
use crate::ingest::{ChangesIn, MAX_CHANGES_PER_CALL, into_new_changes, validate};
use crate::state::SharedState;

/// `POST /admin/changes` → 202 `{"accepted":n,"ids":[...]}` once the changes are durable.
pub(crate) async fn accept(
    _: Admin,
    State(state): State<SharedState>,
    request: axum::extract::Request,
) -> Result<Response, AdminError> {
    let (_, body) = read_limited(request, ADMIN_BODY_LIMIT).await?;
    let input: ChangesIn = parse_json(&body)?;
    if input.changes.len() > MAX_CHANGES_PER_CALL {
        return Err(AdminError::invalid(format!(
            "{} changes in one call; the most is {MAX_CHANGES_PER_CALL}",
            input.changes.len()
        )));
    }
    let now = now_s();
    let checked = state
        .catalog
        .check(&*state.store, |catalog| {
            validate(catalog, &input.changes, now)
        })
        .await?
        .map_err(|(index, error)| {
            let mut error = AdminError::from(error);
            error.message = format!("changes[{index}]: {}", error.message);
            error.index = Some(index);
            error
        })?;
    let changes = into_new_changes(input.changes, checked);
    let count = changes.len();
    let ids = if count == 0 {
        Vec::new()
    } else {
        state.store.insert_changes(changes).await?
    };
    metrics::counter!("graphhooks_changes_accepted_total").increment(count as u64);
    state.engine.changes_accepted();
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": count, "ids": ids })),
    )
        .into_response())
}

fn parse_id(id: &str) -> Result<i64, AdminError> {
    id.parse()
        .map_err(|_| AdminError::not_found(format!("change {id} not found")))
}

/// `GET /admin/changes/{id}`.
pub(crate) async fn get(
    _: Admin,
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let change = state
        .store
        .change(parse_id(&id)?)
        .await?
        .ok_or_else(|| AdminError::not_found(format!("change {id} not found")))?;
    let c = &change.change;
    Ok(Json(json!({
        "id": change.id.to_string(),
        "object": c.object_type,
        "object_id": c.object_id,
        "field": c.field,
        "value": graphhooks_core::wire::parse_value(&c.value),
        "actor": c.actor,
        "time": c.time,
    }))
    .into_response())
}

/// `GET /admin/changes/{id}/explain?app_id=`: per app, the rule that stopped the change or the
/// delivery that carried it.
pub(crate) async fn explain(
    _: Admin,
    State(state): State<SharedState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, AdminError> {
    let app_id = query_map(&uri).remove("app_id").filter(|a| !a.is_empty());
    if let Some(app_id) = &app_id {
        require_app(&state, app_id).await?;
    }
    let body = explain_change(&state, parse_id(&id)?, app_id.as_deref())
        .await?
        .ok_or_else(|| AdminError::not_found(format!("change {id} not found")))?;
    Ok(Json(body).into_response())
}

/// The explain body for a change (shared with the app-facing view).
pub(crate) async fn explain_change(
    state: &SharedState,
    change_id: i64,
    app_id: Option<&str>,
) -> Result<Option<Value>, AdminError> {
    let Some(facts) = state.store.explain_facts(change_id, app_id).await? else {
        return Ok(None);
    };
    let c = &facts.change.change;
    let change_facts = ChangeFacts {
        object_type: &facts.object_type,
        object_id: &c.object_id,
        field: &c.field,
        actor: c.actor.as_deref(),
    };
    let results: Vec<Value> = facts
        .apps
        .iter()
        .map(|app| {
            let subscription = app.subscription.as_ref();
            let app_facts = AppFacts {
                mode: app.mode,
                subscribed_to_type: subscription.is_some(),
                subscribed_to_field: subscription.is_some_and(|s| s.fields.contains_key(&c.field)),
                grant: app.grant.as_deref(),
                actor_has_role: app.actor_has_role,
            };
            let explained = explain_rules(&change_facts, &app_facts);
            let mut detail = explained.detail;
            if explained.eligible {
                match (app.delivery_id, facts.fanned_out) {
                    (Some(id), _) => detail.push_str(&format!(" It went out in delivery {id}.")),
                    (None, false) => detail.push_str(" It has not been processed yet; a delivery will follow shortly."),
                    (None, true) => detail.push_str(
                        " No delivery carried it, so the app's settings must have changed since it was processed.",
                    ),
                }
                if subscription.is_some_and(|s| s.status == SubscriptionStatus::Paused) {
                    detail.push_str(" The subscription is paused; its notifications are kept until it is resumed.");
                }
            }
            let mut result = json!({
                "app_id": app.app_id,
                "eligible": explained.eligible,
                "rule": explained.rule.map(|r| r.as_str()),
                "detail": detail,
            });
            if let Some(id) = app.delivery_id {
                result["delivery_id"] = json!(id.to_string());
            }
            result
        })
        .collect();
    Ok(Some(
        json!({ "change_id": change_id.to_string(), "results": results }),
    ))
}
