//! The delivery log as both APIs serve it: the same filters, cursor pagination and shapes for
//! the operator (`/admin/deliveries`) and for an app (`/{app-id}/deliveries`).

use graphhooks_core::model::DeliveryState;
use graphhooks_store::DeliveryFilter;
use serde_json::{Value, json};

use super::views;
use crate::state::SharedState;

/// Default page size.
const PAGE: usize = 25;
/// Largest page size.
const PAGE_MAX: usize = 100;

/// A filter parsed from request parameters, or the message saying which one is wrong.
pub fn parse_filter(get: impl Fn(&str) -> Option<String>) -> Result<DeliveryFilter, String> {
    let integer = |name: &str| -> Result<Option<i64>, String> {
        get(name)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    format!("{name} must be an integer (unix seconds for since/until)")
                })
            })
            .transpose()
    };
    let limit = match integer("limit")? {
        None => PAGE,
        Some(n) if n >= 1 => usize::try_from(n).unwrap_or(PAGE_MAX).min(PAGE_MAX),
        Some(_) => return Err("limit must be at least 1".into()),
    };
    let before_id = match get("after").filter(|v| !v.is_empty()) {
        Some(cursor) => {
            Some(views::parse_cursor(&cursor).ok_or("after is not a cursor this API returned")?)
        }
        None => None,
    };
    Ok(DeliveryFilter {
        app_id: get("app_id").filter(|v| !v.is_empty()),
        state: get("state")
            .filter(|v| !v.is_empty())
            .map(|s| DeliveryState::parse(&s).map_err(|e| e.to_string()))
            .transpose()?,
        object_type: get("object").filter(|v| !v.is_empty()),
        since: integer("since")?,
        until: integer("until")?,
        before_id,
        limit,
    })
}

/// One page as `{"data":[...],"paging":{"cursors":{"after"},"next"?}}`.
pub async fn page(
    state: &SharedState,
    filter: DeliveryFilter,
    next_base: &str,
    next_params: &[(&str, String)],
) -> Result<Value, graphhooks_store::StoreError> {
    let limit = filter.limit;
    // One extra row tells whether another page exists.
    let mut rows = state
        .store
        .deliveries(DeliveryFilter {
            limit: limit + 1,
            ..filter
        })
        .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let data: Vec<Value> = rows.iter().map(views::delivery).collect();
    let mut paging = json!({});
    if let Some(last) = rows.last() {
        let after = views::cursor(last.id);
        paging["cursors"] = json!({ "after": after });
        if more {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (key, value) in next_params {
                query.append_pair(key, value);
            }
            query.append_pair("limit", &limit.to_string());
            query.append_pair("after", &after);
            paging["next"] = json!(format!("{next_base}?{}", query.finish()));
        }
    }
    Ok(json!({ "data": data, "paging": paging }))
}

/// The filter parameters to repeat in a `next` link.
pub fn repeat_params(filter: &DeliveryFilter, include_app: bool) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    if include_app && let Some(app_id) = &filter.app_id {
        params.push(("app_id", app_id.clone()));
    }
    if let Some(state) = filter.state {
        params.push(("state", state.as_str().to_owned()));
    }
    if let Some(object) = &filter.object_type {
        params.push(("object", object.clone()));
    }
    if let Some(since) = filter.since {
        params.push(("since", since.to_string()));
    }
    if let Some(until) = filter.until {
        params.push(("until", until.to_string()));
    }
    params
}
