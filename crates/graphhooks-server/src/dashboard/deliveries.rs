//! The delivery log of one app: newest first, filtered by state and object, each delivery
//! expandable to its exact body, the headers it is sent with (reconstructed), and every
//! attempt; redelivery; and a small JSON view the Test dialog polls.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use graphhooks_core::model::{App, Delivery, DeliveryState, SubscriptionStatus};
use graphhooks_store::{DeliveryFilter, DeliveryTarget};
use maud::{Markup, html};
use serde::Deserialize;

use super::error::DashError;
use super::layout::{Shell, Tab, csrf, notice, page, pretty_json, utc};
use super::session::{Post, Session};
use crate::clock::{now_ms, now_s};
use crate::delivery::send::notification_headers;
use crate::http::views;
use crate::state::SharedState;

/// Deliveries per page.
const PAGE: usize = 25;

const STATES: [DeliveryState; 4] = [
    DeliveryState::Pending,
    DeliveryState::Delivered,
    DeliveryState::Failed,
    DeliveryState::Paused,
];

#[derive(Deserialize, Default)]
pub(crate) struct LogQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    open: Option<String>,
    #[serde(default)]
    notice: Option<String>,
}

fn log_url(app: &App) -> String {
    format!("/dashboard/apps/{}/deliveries", app.id)
}

/// `GET /dashboard/apps/{id}/deliveries`.
pub(crate) async fn list(
    State(state): State<SharedState>,
    session: Session,
    Path(app_id): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Response, DashError> {
    let app = session.app(&state, &app_id).await?;
    let mut problems = Vec::new();
    let state_filter = match query.state.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => match DeliveryState::parse(text) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                problems.push(error.to_string());
                None
            }
        },
        None => None,
    };
    let object_filter = query.object.clone().filter(|o| !o.is_empty());
    let before_id = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(cursor) => match views::parse_cursor(cursor) {
            Some(id) => Some(id),
            None => {
                problems.push("That page link is not valid; showing the newest deliveries.".into());
                None
            }
        },
        None => None,
    };
    let mut rows = state
        .store
        .deliveries(DeliveryFilter {
            app_id: Some(app.id.clone()),
            state: state_filter,
            object_type: object_filter.clone(),
            before_id,
            limit: PAGE + 1,
            ..DeliveryFilter::default()
        })
        .await?;
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    let open: Option<i64> = query.open.as_deref().and_then(|o| o.parse().ok());
    let subscriptions = state.store.subscriptions(&app.id).await?;
    let mut objects: Vec<String> = state.catalog.snapshot().keys().cloned().collect();
    objects.sort();
    let base = log_url(&app);
    let next = more.then(|| {
        rows.last().map(|last| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if let Some(s) = state_filter {
                q.append_pair("state", s.as_str());
            }
            if let Some(o) = &object_filter {
                q.append_pair("object", o);
            }
            q.append_pair("after", &views::cursor(last.id));
            format!("{base}?{}", q.finish())
        })
    });
    let current = {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(s) = state_filter {
            q.append_pair("state", s.as_str());
        }
        if let Some(o) = &object_filter {
            q.append_pair("object", o);
        }
        let q = q.finish();
        if q.is_empty() {
            base.clone()
        } else {
            format!("{base}?{q}")
        }
    };
    let filtered = state_filter.is_some() || object_filter.is_some() || before_id.is_some();
    let notice_text = match query.notice.as_deref() {
        Some("redelivered") => {
            Some("Queued for redelivery: it goes out again now, with the same id and body.")
        }
        _ => None,
    };
    let content = html! {
        div.page-head.with-actions {
            div {
                h1 { "Delivery log" }
                p.lead { "Every notification sent to " (app.name) ", newest first, with each attempt and your endpoint's answer." }
            }
            a.button href=(current) { "Refresh" }
        }
        (notice(notice_text))
        @for s in subscriptions.iter().filter(|s| s.status == SubscriptionStatus::Paused) {
            (super::webhooks::paused_banner(
                &session,
                s,
                &format!("/dashboard/apps/{}/webhooks/{}", app.id, s.object_type),
                &format!("paused-banner-{}", s.object_type),
            ))
        }
        @for problem in &problems {
            div.alert.alert-error role="alert" { (problem) }
        }
        form.filters method="get" action=(base) aria-label="Filter deliveries" {
            div.field {
                label for="filter-state" { "State" }
                select #filter-state name="state" {
                    option value="" { "All states" }
                    @for s in STATES {
                        option value=(s.as_str()) selected[state_filter == Some(s)] { (s.as_str()) }
                    }
                }
            }
            div.field {
                label for="filter-object" { "Object" }
                select #filter-object name="object" {
                    option value="" { "All objects" }
                    @for o in &objects {
                        option value=(o) selected[object_filter.as_deref() == Some(o.as_str())] { (o) }
                    }
                }
            }
            div.filter-actions {
                button.button type="submit" { "Apply" }
                @if filtered { a.button.subtle href=(base) { "Clear" } }
            }
        }
        @if rows.is_empty() {
            section.card.empty {
                h2 { "No deliveries" @if filtered { " match these filters" } }
                p.muted {
                    "Notifications appear here as soon as they are built. Send one with a field's "
                    strong { "Test" } " button on the "
                    a href={ "/dashboard/apps/" (app.id) "/webhooks" } { "Webhooks" } " page."
                }
            }
        } @else {
            ol.deliveries aria-label="Deliveries" {
                @for d in &rows {
                    li { (delivery_item(&session, &app, &subscriptions, d, open == Some(d.id), &base)) }
                }
            }
        }
        @if let Some(Some(next)) = &next {
            nav.pager aria-label="Pages" {
                @if before_id.is_some() { a.button.subtle href=(base) { "Newest" } }
                a.button href=(next) { "Older deliveries →" }
            }
        } @else if before_id.is_some() {
            nav.pager aria-label="Pages" { a.button.subtle href=(base) { "Newest" } }
        }
    };
    Ok(page(
        Shell {
            title: &format!("Delivery log · {}", app.name),
            session: Some(&session),
            app: Some(&app),
            tab: Tab::Log,
        },
        content,
    )
    .into_response())
}

fn state_badge(state: DeliveryState) -> Markup {
    let class = match state {
        DeliveryState::Delivered => "badge badge-live",
        DeliveryState::Pending => "badge badge-pending",
        DeliveryState::Failed => "badge badge-failed",
        DeliveryState::Paused => "badge badge-paused",
    };
    html! { span class=(class) { (state.as_str()) } }
}

/// The last attempt in a few words.
fn last_attempt(d: &Delivery) -> String {
    match d.attempts.last() {
        None => "not attempted yet".into(),
        Some(a) => match (a.status, &a.error) {
            (Some(status), _) => format!("HTTP {status} in {} ms", a.latency_ms),
            (None, Some(error)) => {
                let short: String = error.chars().take(60).collect();
                if short.len() < error.len() {
                    format!("{short}…")
                } else {
                    short
                }
            }
            (None, None) => "no answer".into(),
        },
    }
}

/// The headers an attempt of `d` carries, rebuilt from the stored body with the app's secret
/// as it is now.
fn reconstructed_headers(
    app: &App,
    subscriptions: &[graphhooks_core::model::Subscription],
    d: &Delivery,
) -> (Vec<(String, String)>, u32) {
    let subscription = subscriptions
        .iter()
        .find(|s| s.object_type == d.object_type);
    let now = now_ms();
    let target = DeliveryTarget::new(
        subscription
            .map(|s| s.callback_url.clone())
            .unwrap_or_default(),
        subscription.is_some_and(|s| s.include_client_certificate),
        subscription.is_some_and(|s| s.standard_webhooks),
        app.secret.expose().to_owned(),
        app.previous_secret_at(now).map(|s| s.expose().to_owned()),
    );
    let attempt = d.attempts.last().map_or(1, |a| a.number);
    let headers = notification_headers(&target, d.id, attempt, d.body.as_bytes(), now);
    let list = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    (list, attempt)
}

fn delivery_item(
    session: &Session,
    app: &App,
    subscriptions: &[graphhooks_core::model::Subscription],
    d: &Delivery,
    open: bool,
    base: &str,
) -> Markup {
    html! {
        details.delivery #{ "delivery-" (d.id) } open[open] data-delivery=(d.id) data-state=(d.state.as_str()) {
            summary {
                span.d-id { "#" (d.id) }
                span.d-object { code { (d.object_type) } }
                (state_badge(d.state))
                @if d.test { span.badge.badge-muted { "test" } }
                span.d-time { time datetime=(utc(d.created_time).replace(" UTC", "Z").replacen(' ', "T", 1)) { (utc(d.created_time)) } }
                span.d-last {
                    (d.attempts.len()) " attempt" @if d.attempts.len() != 1 { "s" }
                    " · " (last_attempt(d))
                }
            }
            (delivery_detail(session, app, subscriptions, d, base))
        }
    }
}

fn delivery_detail(
    session: &Session,
    app: &App,
    subscriptions: &[graphhooks_core::model::Subscription],
    d: &Delivery,
    base: &str,
) -> Markup {
    let (headers, attempt) = reconstructed_headers(app, subscriptions, d);
    html! {
        div.delivery-body {
            div.detail-actions {
                form method="post" action={ (base) "/" (d.id) "/redeliver" } {
                    (csrf(session))
                    button.button.small.primary type="submit" { "Redeliver" }
                }
                a.button.small.subtle href={ (base) "/" (d.id) } { "Permalink" }
            }
            h3 { "Attempts" }
            @if d.attempts.is_empty() {
                p.muted {
                    @match d.state {
                        DeliveryState::Paused => "Held while the subscription is paused.",
                        _ => "Not attempted yet; it is queued.",
                    }
                }
            } @else {
                div.table-wrap {
                    table.attempts {
                        thead {
                            tr {
                                th scope="col" { "#" }
                                th scope="col" { "Time" }
                                th scope="col" { "Status" }
                                th scope="col" { "Latency" }
                                th scope="col" { "Response or error" }
                            }
                        }
                        tbody {
                            @for a in &d.attempts {
                                tr {
                                    td data-label="Attempt" { (a.number) }
                                    td.nowrap data-label="Time" { (utc(a.time_ms / 1000)) }
                                    td data-label="Status" {
                                        @match a.status {
                                            Some(s) if (200..300).contains(&s) => span.status.status-ok { (s) }
                                            Some(s) => span.status.status-bad { (s) }
                                            None => span.status.status-bad { "no response" }
                                        }
                                    }
                                    td.nowrap data-label="Latency" { (a.latency_ms) " ms" }
                                    td.snippet data-label="Response" {
                                        @if let Some(error) = &a.error { div.attempt-error { (error) } }
                                        @if let Some(response) = a.response.as_deref().filter(|r| !r.is_empty()) {
                                            code.break { (response) }
                                        }
                                        @if a.error.is_none() && a.response.as_deref().is_none_or(str::is_empty) {
                                            span.muted { "(empty body)" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Request headers" }
            p.help {
                "Reconstructed from the stored body and your app's current secret, as attempt "
                (attempt) " carries them (signatures are HMACs of the exact body below)."
            }
            pre.code.wrap.headers { @for (name, value) in &headers { (name) ": " (value) "\n" } }
            h3 { "Body" }
            pre.code.json { (pretty_json(&d.body)) }
            details.raw {
                summary { "Exact bytes as sent and signed (" (d.body.len()) " bytes)" }
                pre.code.wrap { (d.body) }
            }
        }
    }
}

fn parse_id(id: &str) -> Result<i64, DashError> {
    id.parse()
        .map_err(|_| DashError::NotFound(format!("There is no delivery {id}.")))
}

/// The delivery if it is this app's; another app's is "not found", as on the Graph API.
async fn own_delivery(state: &SharedState, app: &App, id: &str) -> Result<Delivery, DashError> {
    match state.store.delivery(parse_id(id)?).await? {
        Some(d) if d.app_id == app.id => Ok(d),
        _ => Err(DashError::NotFound(format!(
            "This app has no delivery {id}."
        ))),
    }
}

/// `GET /dashboard/apps/{id}/deliveries/{delivery}`: one delivery, expanded.
pub(crate) async fn show(
    State(state): State<SharedState>,
    session: Session,
    Path((app_id, id)): Path<(String, String)>,
) -> Result<Response, DashError> {
    let app = session.app(&state, &app_id).await?;
    let d = own_delivery(&state, &app, &id).await?;
    let subscriptions = state.store.subscriptions(&app.id).await?;
    let base = log_url(&app);
    let content = html! {
        p { a href=(base) { "← Delivery log" } }
        div.page-head {
            h1 { "Delivery #" (d.id) }
            p.lead {
                code { (d.object_type) } " · " (state_badge(d.state))
                @if d.test { " " span.badge.badge-muted { "test" } }
                " · built " (utc(d.created_time)) " (" (crate::dashboard::layout::age(now_s() - d.created_time)) " ago)"
            }
        }
        section.card.delivery.single data-delivery=(d.id) data-state=(d.state.as_str()) {
            (delivery_detail(&session, &app, &subscriptions, &d, &base))
        }
    };
    Ok(page(
        Shell {
            title: &format!("Delivery {} · {}", d.id, app.name),
            session: Some(&session),
            app: Some(&app),
            tab: Tab::Log,
        },
        content,
    )
    .into_response())
}

/// `GET /dashboard/apps/{id}/deliveries/{delivery}/status`: the delivery as JSON (the Graph
/// API's shape), for the Test dialog to follow.
pub(crate) async fn status(
    State(state): State<SharedState>,
    session: Session,
    Path((app_id, id)): Path<(String, String)>,
) -> Result<Response, DashError> {
    let app = session.app(&state, &app_id).await?;
    let d = own_delivery(&state, &app, &id).await?;
    Ok(Json(views::delivery(&d)).into_response())
}

/// `POST /dashboard/apps/{id}/deliveries/{delivery}/redeliver`.
pub(crate) async fn redeliver(
    State(state): State<SharedState>,
    Path((app_id, id)): Path<(String, String)>,
    post: Post,
) -> Result<Response, DashError> {
    let app = post.session.app(&state, &app_id).await?;
    let d = own_delivery(&state, &app, &id).await?;
    state.store.redeliver(d.id, now_ms()).await?;
    state.engine.deliveries_due();
    tracing::info!(
        delivery_id = d.id,
        app_id = app.id,
        "Redelivery of {} requested from the dashboard",
        d.id
    );
    if post.json {
        return Ok(
            Json(serde_json::json!({"success": true, "id": d.id.to_string()})).into_response(),
        );
    }
    Ok(Redirect::to(&format!(
        "{}?open={}&notice=redelivered#delivery-{}",
        log_url(&app),
        d.id,
        d.id
    ))
    .into_response())
}
