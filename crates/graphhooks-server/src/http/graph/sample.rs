//! `POST /{app-id}/subscriptions_sample`: a signed test notification built from the field's
//! sample value (merged with `custom_fields`), sent to the app's callback now. It needs a
//! subscription to the type, but no grant and no role, so development apps get it too.

use axum::response::Response;
use graphhooks_core::fanout::PlannedDelivery;
use graphhooks_core::model::DeliveryState;
use graphhooks_core::wire::{BatchLimits, ChangeItem, NotificationBuilder, to_meta_json};
use graphhooks_store::NewDelivery;
use http::Method;
use serde_json::Value;

use super::{GraphRequest, app_node, success, unsupported};
use crate::clock::{now_ms, now_s};
use crate::http::error::GraphError;
use crate::state::SharedState;

pub(super) async fn handle(
    state: &SharedState,
    request: &GraphRequest,
) -> Result<Response, GraphError> {
    let app_id = app_node(state, request).await?;
    if request.method != Method::POST {
        return Err(unsupported(request));
    }
    let params = &request.params;
    let object = params
        .text("object_type")?
        .or(params.text("object")?)
        .filter(|o| !o.trim().is_empty())
        .ok_or_else(|| GraphError::invalid("The parameter object_type is required"))?;
    let field = params.required_text("field")?;
    let object_id = params
        .text("object_id")?
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| "0".to_owned());
    graphhooks_core::model::validate_object_id("object id", &object_id)?;

    let catalog = state.catalog.snapshot();
    let object_type = crate::catalog::object_type(&catalog, &object).map_err(|_| {
        GraphError::invalid(format!(
            "Param object_type {object:?} is not an object type"
        ))
    })?;
    let definition = object_type.field(&field).map_err(|_| {
        GraphError::invalid(format!("Param field {field:?} is not a field of {object}"))
    })?;
    let Some(subscription) = state.store.subscription(&app_id, &object).await? else {
        return Err(GraphError::invalid(format!(
            "The app has no subscription to {object}; subscribe first with POST /{app_id}/subscriptions"
        )));
    };

    let mut value = definition.sample.clone();
    if let Some(custom) = params.object("custom_fields")? {
        match &mut value {
            Value::Object(sample) => sample.extend(custom),
            _ => {
                return Err(GraphError::invalid(format!(
                    "Param custom_fields applies to object samples, and the sample of {object}.{field} is not an object"
                )));
            }
        }
    }
    let value = to_meta_json(&value)
        .map_err(|e| GraphError::invalid(format!("The sample value cannot be serialised: {e}")))?;
    let mut builder = NotificationBuilder::new(
        &object,
        subscription.include_values,
        now_s(),
        BatchLimits::default(),
    );
    builder.push(ChangeItem {
        id: 0,
        object_id: &object_id,
        field: &field,
        value: &value,
    });
    let Some(mut notification) = builder.finish().pop() else {
        return Err(GraphError::invalid(
            "The sample notification could not be built",
        ));
    };
    notification.change_ids.clear();
    let delivery = NewDelivery {
        planned: PlannedDelivery {
            app_id: app_id.clone(),
            object_type: object.clone(),
            state: DeliveryState::Pending,
            notification,
        },
        test: true,
    };
    let id = state.store.insert_delivery(delivery, now_ms()).await?;
    tracing::info!(
        delivery_id = id,
        app_id,
        "Queued test notification {id} for app {app_id}"
    );
    state.engine.deliveries_due();
    Ok(success())
}
