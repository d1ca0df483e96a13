//! The Webhooks product page of one app: pick an object type, set the callback URL and verify
//! token ("Verify and save" runs the handshake and shows its exact result), subscribe and
//! unsubscribe fields, send a test notification per field, and resume a paused subscription.
//! Saving goes through [`save_subscription`] and [`remove_fields`], the same code as the Graph
//! API, so every check and the handshake are identical.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use graphhooks_core::CURRENT_API_VERSION;
use graphhooks_core::catalog::{GrantMode, ObjectType};
use graphhooks_core::fanout::PlannedDelivery;
use graphhooks_core::model::{App, DeliveryState, Subscription, SubscriptionStatus};
use graphhooks_core::wire::{BatchLimits, ChangeItem, NotificationBuilder, to_meta_json};
use graphhooks_store::NewDelivery;
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::DashError;
use super::layout::{Shell, Tab, alert_error, csrf, notice, page, pretty_json, utc};
use super::session::{Post, Session};
use crate::catalog::CatalogMap;
use crate::clock::{now_ms, now_s};
use crate::handshake::handshake_url;
use crate::http::error::{GraphCode, GraphError};
use crate::http::graph::subscriptions::{SubscriptionInput, remove_fields, save_subscription};
use crate::state::SharedState;

/// The catalog, reloaded when it lacks `object` (another node may have declared it).
async fn catalog_with(
    state: &SharedState,
    object: &str,
) -> Result<std::sync::Arc<CatalogMap>, DashError> {
    let catalog = state.catalog.snapshot();
    if object.is_empty() || catalog.contains_key(object) {
        return Ok(catalog);
    }
    Ok(state.catalog.reload(&*state.store).await?)
}

fn sorted_types(catalog: &CatalogMap) -> Vec<&ObjectType> {
    let mut types: Vec<&ObjectType> = catalog.values().collect();
    types.sort_by(|a, b| a.name.cmp(&b.name));
    types
}

fn object_type<'a>(catalog: &'a CatalogMap, object: &str) -> Result<&'a ObjectType, DashError> {
    catalog.get(object).ok_or_else(|| {
        DashError::NotFound(format!(
            "There is no object type {object:?} in the catalog."
        ))
    })
}

/// What the subscription form holds (as typed, when re-shown after an error).
#[derive(Debug, Clone, Default)]
struct SubscriptionForm {
    callback_url: String,
    verify_token: String,
    include_values: bool,
    standard_webhooks: bool,
    include_client_certificate: bool,
    fields: Vec<String>,
}

impl SubscriptionForm {
    fn of(subscription: Option<&Subscription>) -> SubscriptionForm {
        match subscription {
            Some(s) => SubscriptionForm {
                callback_url: s.callback_url.clone(),
                verify_token: s.verify_token.clone(),
                include_values: s.include_values,
                standard_webhooks: s.standard_webhooks,
                include_client_certificate: s.include_client_certificate,
                fields: Vec::new(),
            },
            None => SubscriptionForm {
                include_values: true,
                ..SubscriptionForm::default()
            },
        }
    }
}

/// What to show above or in the page after an action.
enum Feedback {
    None,
    Notice(String),
    /// "Verify and save" failed: the form as typed and the error.
    Verify(SubscriptionForm, GraphError),
    /// A field action failed.
    Fields(String),
}

#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    count: Option<String>,
}

fn base(app: &App) -> String {
    format!("/dashboard/apps/{}/webhooks", app.id)
}

fn page_url(app: &App, object: &str, notice: &str, field: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("object", object);
    if !notice.is_empty() {
        query.append_pair("notice", notice);
    }
    if let Some(field) = field {
        query.append_pair("field", field);
    }
    format!("{}?{}", base(app), query.finish())
}

/// The text of a notice code (only fixed texts and catalog names, never free text from the URL).
fn notice_text(query: &PageQuery, object: &ObjectType) -> Option<String> {
    let field = query
        .field
        .as_deref()
        .filter(|f| object.fields.contains_key(*f));
    let text = match (query.notice.as_deref()?, field) {
        ("verified", _) => "Verified and saved. Your callback answered the challenge.".to_owned(),
        ("saved", _) => "Saved. The callback URL and verify token did not change, so no new verification was needed.".to_owned(),
        ("subscribed", Some(field)) => format!("Subscribed to {field}."),
        ("unsubscribed", Some(field)) => format!("Unsubscribed from {field}."),
        ("removed", Some(field)) => format!(
            "Unsubscribed from {field}. It was the last field, so the subscription to {} was removed.",
            object.name
        ),
        ("removed", None) => format!("The subscription to {} was removed.", object.name),
        ("resumed", _) => {
            let count: u64 = query
                .count
                .as_deref()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            format!(
                "Resumed. {count} held notification{} will go out now, oldest first.",
                if count == 1 { "" } else { "s" }
            )
        }
        _ => return None,
    };
    Some(text)
}

/// `GET /dashboard/apps/{id}/webhooks`.
pub(crate) async fn show(
    State(state): State<SharedState>,
    session: Session,
    Path(app_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, DashError> {
    let app = session.app(&state, &app_id).await?;
    let subscriptions = state.store.subscriptions(&app.id).await?;
    let requested = query.object.clone().unwrap_or_default();
    let catalog = catalog_with(&state, &requested).await?;
    let object = if requested.is_empty() {
        subscriptions
            .first()
            .map(|s| s.object_type.clone())
            .or_else(|| catalog.contains_key("user").then(|| "user".to_owned()))
            .or_else(|| sorted_types(&catalog).first().map(|t| t.name.clone()))
            .unwrap_or_default()
    } else {
        requested
    };
    let object_type = object_type(&catalog, &object)?;
    let feedback = notice_text(&query, object_type).map_or(Feedback::None, Feedback::Notice);
    let markup = render(
        &state,
        &session,
        &app,
        &catalog,
        &subscriptions,
        &object,
        feedback,
    )?;
    Ok(markup.into_response())
}

fn render(
    state: &SharedState,
    session: &Session,
    app: &App,
    catalog: &CatalogMap,
    subscriptions: &[Subscription],
    object: &str,
    feedback: Feedback,
) -> Result<Markup, DashError> {
    let object_type = object_type(catalog, object)?;
    let subscription = subscriptions.iter().find(|s| s.object_type == object);
    let (form, verify_error) = match &feedback {
        Feedback::Verify(form, error) => (form.clone(), Some(error)),
        _ => (SubscriptionForm::of(subscription), None),
    };
    let base = base(app);
    let object_base = format!("{base}/{object}");
    let has_client_cert = state.client.has_client_certificate();
    let content = html! {
        div.page-head {
            h1 { "Webhooks" }
            p.lead {
                "Get notified at your callback URL when fields of objects change, instead of polling. "
                "Choose an object type, verify your endpoint, then subscribe to fields."
            }
        }
        div.split {
            nav.objects aria-label="Object types" {
                h2.sidebar-title { "Object types" }
                ul {
                    @for t in sorted_types(catalog) {
                        @let sub = subscriptions.iter().find(|s| s.object_type == t.name);
                        li {
                            a href={ (base) "?object=" (t.name) } aria-current=[(t.name == object).then_some("page")] {
                                span.object-name { (t.name) }
                                @match sub {
                                    Some(s) if s.status == SubscriptionStatus::Paused => span.dot.dot-paused { "Paused" }
                                    Some(s) => span.dot.dot-active { (s.fields.len()) " field" @if s.fields.len() != 1 { "s" } }
                                    None => span.dot.dot-none { "Not subscribed" }
                                }
                            }
                        }
                    }
                }
            }
            div.content {
                @if let Feedback::Notice(text) = &feedback { (notice(Some(text))) }
                @if let Some(s) = subscription.filter(|s| s.status == SubscriptionStatus::Paused) {
                    (paused_banner(session, s, &object_base, "paused-banner"))
                }
                section.card aria-labelledby="subscription-title" {
                    div.card-head {
                        h2 #subscription-title { "Subscription to " code { (object) } }
                        @match subscription {
                            Some(s) if s.status == SubscriptionStatus::Paused => span.badge.badge-paused { "Paused" }
                            Some(_) => span.badge.badge-live { "Active" }
                            None => span.badge.badge-muted { "Not subscribed" }
                        }
                    }
                    p.muted {
                        @if object_type.grant == GrantMode::None {
                            "Changes to " code { (object) } " objects reach every subscribed app; no grant is needed."
                        } @else {
                            "Your app hears about a " code { (object) } " only when it holds a grant for it (and the field's permission)."
                        }
                    }
                    @if let Some(error) = verify_error {
                        (verify_error_box(error, &form))
                    }
                    form.stack method="post" action={ (object_base) "/verify" } novalidate {
                        (csrf(session))
                        div.field {
                            label for="callback_url" { "Callback URL" }
                            input #callback_url name="callback_url" type="url" required
                                placeholder="https://example.com/webhook" autocomplete="url"
                                value=(form.callback_url) aria-describedby="callback_help";
                            p.help #callback_help { "An https:// URL that answers the verification request and receives signed POSTs." }
                        }
                        div.field {
                            label for="verify_token" { "Verify token" }
                            input #verify_token name="verify_token" type="text" required autocomplete="off" spellcheck="false"
                                value=(form.verify_token) aria-describedby="token_help";
                            p.help #token_help {
                                "Any string you choose. graphhooks sends it as " code { "hub.verify_token" }
                                " so your endpoint knows the request is genuine."
                            }
                        }
                        div.checks {
                            div.check {
                                input #include_values type="checkbox" name="include_values" value="on" checked[form.include_values];
                                label for="include_values" { "Include values" span.help { "Send the new values, not only the names of the fields that changed." } }
                            }
                            div.check {
                                input #standard_webhooks type="checkbox" name="standard_webhooks" value="on" checked[form.standard_webhooks];
                                label for="standard_webhooks" { "Standard Webhooks headers" span.help { "Also send webhook-id, webhook-timestamp and webhook-signature." } }
                            }
                            @if has_client_cert {
                                div.check {
                                    input #include_client_certificate type="checkbox" name="include_client_certificate" value="on" checked[form.include_client_certificate];
                                    label for="include_client_certificate" { "Present a client certificate" span.help { "Mutual TLS with this graphhooks's certificate." } }
                                }
                            }
                        }
                        @if subscription.is_none() {
                            fieldset.field-picks {
                                legend { "Fields to subscribe to " span.help { "(at least one; you can change them later)" } }
                                div.pick-grid {
                                    @for (name, _) in &object_type.fields {
                                        div.check {
                                            input type="checkbox" name="fields" value=(name) id={ "pick-" (name) } checked[form.fields.contains(name)];
                                            label for={ "pick-" (name) } { code { (name) } }
                                        }
                                    }
                                }
                            }
                        }
                        div.actions {
                            button.button.primary type="submit" { "Verify and save" }
                        }
                        p.help {
                            "Verification: graphhooks sends " code { "GET <callback>?hub.mode=subscribe&hub.challenge=<number>&hub.verify_token=<token>" }
                            " and expects HTTP 200 with exactly the challenge as the body. Nothing is saved if it fails."
                        }
                    }
                }
                @if let Some(subscription) = subscription {
                    (fields_card(session, object_type, subscription, &object_base, &feedback))
                    (test_dialog(session, &subscription.callback_url))
                    section.card.danger-zone aria-labelledby="remove-title" {
                        h2 #remove-title { "Remove subscription" }
                        p.muted { "Stop all notifications about " code { (object) } " to this app. Notifications already queued still go out." }
                        form method="post" action={ (object_base) "/remove" } data-confirm={ "Remove the subscription to " (object) "?" } {
                            (csrf(session))
                            button.button.danger type="submit" { "Remove subscription to " (object) }
                        }
                    }
                }
            }
        }
    };
    Ok(page(
        Shell {
            title: &format!("Webhooks: {object} · {}", app.name),
            session: Some(session),
            app: Some(app),
            tab: Tab::Webhooks,
        },
        content,
    ))
}

fn verify_error_box(error: &GraphError, form: &SubscriptionForm) -> Markup {
    let verification = matches!(
        error.code,
        GraphCode::VerificationTransport | GraphCode::VerificationMismatch
    );
    let title = if verification {
        "Verification failed: nothing was saved"
    } else {
        "Not saved"
    };
    let sent = (!form.callback_url.is_empty() && verification).then(|| {
        handshake_url(&form.callback_url, "0", &form.verify_token).replacen(
            "hub.challenge=0",
            "hub.challenge=…",
            1,
        )
    });
    html! {
        div.alert.alert-error #verify-error role="alert" {
            strong { (title) }
            p.error-message { "(#" (error.code.code()) ") " (error.message) }
            @if let Some(sent) = sent {
                p.help { "graphhooks sent: " code.break { "GET " (sent) } }
            }
        }
    }
}

/// The banner of a paused subscription, with its Resume button.
pub(super) fn paused_banner(
    session: &Session,
    subscription: &Subscription,
    object_base: &str,
    id: &str,
) -> Markup {
    html! {
        div.banner.banner-paused role="alert" id=(id) {
            div {
                strong { "Deliveries of " code { (subscription.object_type) } " notifications are paused." }
                p {
                    "Your endpoint " code.break { (subscription.callback_url) } " kept failing"
                    @if let Some(since) = subscription.failing_since {
                        " since " (utc(since / 1000))
                    }
                    ", so graphhooks stopped sending and is keeping every new notification. "
                    "Fix the endpoint, then resume: the held notifications go out oldest first."
                }
            }
            form method="post" action={ (object_base) "/resume" } {
                (csrf(session))
                button.button.primary type="submit" { "Resume" }
            }
        }
    }
}

fn fields_card(
    session: &Session,
    object_type: &ObjectType,
    subscription: &Subscription,
    object_base: &str,
    feedback: &Feedback,
) -> Markup {
    html! {
        section.card aria-labelledby="fields-title" {
            div.card-head {
                h2 #fields-title { "Fields" }
                span.muted { (subscription.fields.len()) " of " (object_type.fields.len()) " subscribed" }
            }
            p.muted {
                "Notifications go to " code.break { (subscription.callback_url) }
                ", signed with your app secret (" code { "X-Hub-Signature-256" } "). "
                "Each field stays on the API version it was subscribed with."
            }
            @if let Feedback::Fields(message) = feedback {
                (alert_error("That did not work", message))
            }
            div.table-wrap {
                table.fields {
                    thead {
                        tr {
                            th scope="col" { "Field" }
                            th scope="col" { "Permission" }
                            th scope="col" { "Version" }
                            th scope="col" { span.sr-only { "Test" } }
                            th scope="col" { span.sr-only { "Subscription" } }
                        }
                    }
                    tbody {
                        @for (name, field) in &object_type.fields {
                            @let version = subscription.fields.get(name);
                            tr #{ "field-" (name) } .subscribed[version.is_some()] data-field=(name) data-subscribed=(version.is_some()) {
                                th scope="row" { code { (name) } }
                                td.permission { @if let Some(p) = &field.permission { code { (p) } } @else { span.muted { "none" } } }
                                td.version {
                                    @if let Some(v) = version {
                                        span.badge.badge-version title="Subscribed with this API version" { (v) }
                                    } @else {
                                        span.muted.small { "Not subscribed" }
                                    }
                                }
                                td.action {
                                    a.button.small href={ (object_base) "/test/" (name) }
                                        data-test=(name)
                                        data-sample=(pretty_json(&field.sample.to_string()))
                                        aria-label={ "Test " (name) } { "Test" }
                                }
                                td.action {
                                    @if version.is_some() {
                                        form method="post" action={ (object_base) "/fields/" (name) "/unsubscribe" } {
                                            (csrf(session))
                                            button.button.small type="submit" aria-label={ "Unsubscribe from " (name) } { "Unsubscribe" }
                                        }
                                    } @else {
                                        form method="post" action={ (object_base) "/fields/" (name) "/subscribe" } {
                                            (csrf(session))
                                            button.button.small.outline type="submit" aria-label={ "Subscribe to " (name) } { "Subscribe" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The dialog the Test buttons open (the script fills it in).
fn test_dialog(session: &Session, callback_url: &str) -> Markup {
    html! {
        dialog #test-dialog aria-labelledby="test-title" {
            form #test-form method="post" {
                (csrf(session))
                div.dialog-head {
                    h2 #test-title { "Test " code #test-field-name {} }
                    button.icon-button type="button" data-close aria-label="Close" { "×" }
                }
                p.muted {
                    "graphhooks builds a notification with this value, signs it with your app secret and POSTs it to "
                    code.break { (callback_url) } " as a test delivery. Edit the JSON to try other values."
                }
                div.field {
                    label for="test-value" { "Sample value (JSON)" }
                    textarea #test-value name="value" rows="9" spellcheck="false" autocomplete="off" {}
                }
                div.field.field-short {
                    label for="test-object-id" { "Object ID" }
                    input #test-object-id name="object_id" type="text" value="0" autocomplete="off";
                }
                div #test-result role="status" aria-live="polite" {}
                div.actions {
                    button.button.primary #test-send type="submit" { "Send to my server" }
                    button.button type="button" data-close { "Close" }
                }
            }
        }
    }
}

/// `POST /dashboard/apps/{id}/webhooks/{object}/verify`: "Verify and save".
pub(crate) async fn verify(
    State(state): State<SharedState>,
    Path((app_id, object)): Path<(String, String)>,
    post: Post,
) -> Result<Response, DashError> {
    let app = post.session.app(&state, &app_id).await?;
    let catalog = catalog_with(&state, &object).await?;
    object_type(&catalog, &object)?;
    let form = &post.form;
    let has_client_cert = state.client.has_client_certificate();
    let typed = SubscriptionForm {
        callback_url: form.text("callback_url"),
        verify_token: form.get("verify_token").unwrap_or("").to_owned(),
        include_values: form.checked("include_values"),
        standard_webhooks: form.checked("standard_webhooks"),
        include_client_certificate: form.checked("include_client_certificate"),
        fields: form.all("fields"),
    };
    let existing = state.store.subscription(&app.id, &object).await?;
    let check = if typed.callback_url.is_empty() {
        Err(GraphError::invalid("Enter the callback URL."))
    } else if typed.verify_token.is_empty() {
        Err(GraphError::invalid("Enter a verify token."))
    } else if existing.is_none() && typed.fields.is_empty() {
        Err(GraphError::invalid(
            "Choose at least one field to subscribe to.",
        ))
    } else {
        Ok(())
    };
    let handshake = existing.as_ref().is_none_or(|s| {
        s.callback_url != typed.callback_url || s.verify_token != typed.verify_token
    });
    let saved = match check {
        Ok(()) => {
            save_subscription(
                &state,
                &app.id,
                SubscriptionInput {
                    object: object.clone(),
                    fields: typed.fields.clone(),
                    version: CURRENT_API_VERSION.to_owned(),
                    callback_url: Some(typed.callback_url.clone()),
                    verify_token: Some(typed.verify_token.clone()),
                    include_values: Some(typed.include_values),
                    include_client_certificate: has_client_cert
                        .then_some(typed.include_client_certificate),
                    standard_webhooks: Some(typed.standard_webhooks),
                },
            )
            .await
        }
        Err(error) => Err(error),
    };
    match saved {
        Ok(()) => {
            let notice = if handshake { "verified" } else { "saved" };
            Ok(Redirect::to(&page_url(&app, &object, notice, None)).into_response())
        }
        Err(error) => {
            let error = unavailable_or(error)?;
            let subscriptions = state.store.subscriptions(&app.id).await?;
            let markup = render(
                &state,
                &post.session,
                &app,
                &catalog,
                &subscriptions,
                &object,
                Feedback::Verify(typed, error),
            )?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, markup).into_response())
        }
    }
}

/// Storage failures become error pages; everything else is shown inline.
fn unavailable_or(error: GraphError) -> Result<GraphError, DashError> {
    match error.code {
        GraphCode::Unavailable => Err(DashError::Unavailable(
            error.cause.unwrap_or_else(|| error.message.clone()),
        )),
        GraphCode::Unknown => Err(DashError::Internal(
            error.cause.unwrap_or_else(|| error.message.clone()),
        )),
        _ => Ok(error),
    }
}

/// A field action that failed: the page again with the message by the field list.
async fn field_failure(
    state: &SharedState,
    session: &Session,
    app: &App,
    object: &str,
    message: String,
) -> Result<Response, DashError> {
    let catalog = catalog_with(state, object).await?;
    let subscriptions = state.store.subscriptions(&app.id).await?;
    let markup = render(
        state,
        session,
        app,
        &catalog,
        &subscriptions,
        object,
        Feedback::Fields(message),
    )?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, markup).into_response())
}

/// `POST /dashboard/apps/{id}/webhooks/{object}/fields/{field}/subscribe`.
pub(crate) async fn subscribe(
    State(state): State<SharedState>,
    Path((app_id, object, field)): Path<(String, String, String)>,
    post: Post,
) -> Result<Response, DashError> {
    let app = post.session.app(&state, &app_id).await?;
    if state.store.subscription(&app.id, &object).await?.is_none() {
        let message =
            format!("Verify and save a callback for {object} first; then subscribe to its fields.");
        return field_failure(&state, &post.session, &app, &object, message).await;
    }
    let input = SubscriptionInput {
        object: object.clone(),
        fields: vec![field.clone()],
        version: CURRENT_API_VERSION.to_owned(),
        ..SubscriptionInput::default()
    };
    match save_subscription(&state, &app.id, input).await {
        Ok(()) => {
            Ok(Redirect::to(&page_url(&app, &object, "subscribed", Some(&field))).into_response())
        }
        Err(error) => {
            let error = unavailable_or(error)?;
            field_failure(&state, &post.session, &app, &object, error.message).await
        }
    }
}

/// `POST /dashboard/apps/{id}/webhooks/{object}/fields/{field}/unsubscribe`.
pub(crate) async fn unsubscribe(
    State(state): State<SharedState>,
    Path((app_id, object, field)): Path<(String, String, String)>,
    post: Post,
) -> Result<Response, DashError> {
    let app = post.session.app(&state, &app_id).await?;
    let last = state
        .store
        .subscription(&app.id, &object)
        .await?
        .is_some_and(|s| s.fields.len() == 1 && s.fields.contains_key(&field));
    match remove_fields(&state, &app.id, &object, std::slice::from_ref(&field)).await {
        Ok(()) => {
            let notice = if last { "removed" } else { "unsubscribed" };
            Ok(Redirect::to(&page_url(&app, &object, notice, Some(&field))).into_response())
        }
        Err(error) => {
            let error = unavailable_or(error)?;
            field_failure(&state, &post.session, &app, &object, error.message).await
        }
    }
}

/// `POST /dashboard/apps/{id}/webhooks/{object}/remove`: the whole subscription.
pub(crate) async fn remove(
    State(state): State<SharedState>,
    Path((app_id, object)): Path<(String, String)>,
    post: Post,
) -> Result<Response, DashError> {
    let app = post.session.app(&state, &app_id).await?;
    let _edit = state.lock_subscriptions(&app.id).await;
    match state.store.delete_subscription(&app.id, &object).await {
        Ok(()) | Err(graphhooks_store::StoreError::NotFound(_)) => {}
        Err(error) => return Err(error.into()),
    }
    tracing::info!(
        app_id = app.id,
        object_type = object,
        "Removed app {}'s {object} subscription from the dashboard",
        app.id
    );
    Ok(Redirect::to(&page_url(&app, &object, "removed", None)).into_response())
}

/// `POST /dashboard/apps/{id}/webhooks/{object}/resume`: reactivates a paused subscription.
pub(crate) async fn resume(
    State(state): State<SharedState>,
    Path((app_id, object)): Path<(String, String)>,
    post: Post,
) -> Result<Response, DashError> {
    let app = post.session.app(&state, &app_id).await?;
    let resumed = state
        .store
        .resume_subscription(&app.id, &object, now_ms())
        .await
        .map_err(|error| match error {
            graphhooks_store::StoreError::NotFound(_) => {
                DashError::NotFound(format!("The app has no subscription to {object}."))
            }
            other => other.into(),
        })?;
    tracing::info!(
        app_id = app.id,
        object_type = object,
        resumed,
        "Resumed app {}'s {object} subscription from the dashboard; {resumed} held notifications go out",
        app.id
    );
    state.engine.deliveries_due();
    let mut url = page_url(&app, &object, "resumed", None);
    url.push_str(&format!("&count={resumed}"));
    Ok(Redirect::to(&url).into_response())
}

/// `GET /dashboard/apps/{id}/webhooks/{object}/test/{field}`: the test form as a page (what the
/// Test button opens when scripts are off).
pub(crate) async fn test_page(
    State(state): State<SharedState>,
    session: Session,
    Path((app_id, object, field)): Path<(String, String, String)>,
) -> Result<Response, DashError> {
    let app = session.app(&state, &app_id).await?;
    let catalog = catalog_with(&state, &object).await?;
    let definition = object_type(&catalog, &object)?
        .fields
        .get(&field)
        .ok_or_else(|| DashError::NotFound(format!("{object} has no field {field:?}.")))?;
    let sample = pretty_json(&definition.sample.to_string());
    Ok(test_form_page(&session, &app, &object, &field, &sample, "0", None).into_response())
}

fn test_form_page(
    session: &Session,
    app: &App,
    object: &str,
    field: &str,
    value: &str,
    object_id: &str,
    error: Option<&str>,
) -> Markup {
    let back = page_url(app, object, "", None);
    let content = html! {
        div.narrow {
            p { a href=(back) { "← Webhooks: " (object) } }
            section.card aria-labelledby="test-page-title" {
                h1 #test-page-title { "Test " code { (object) "." (field) } }
                p.muted { "graphhooks builds a notification with this value, signs it with your app secret and POSTs it to your callback as a test delivery." }
                @if let Some(error) = error { (alert_error("Not sent", error)) }
                form.stack method="post" {
                    (csrf(session))
                    div.field {
                        label for="value" { "Sample value (JSON)" }
                        textarea #value name="value" rows="14" spellcheck="false" { (value) }
                    }
                    div.field.field-short {
                        label for="object_id" { "Object ID" }
                        input #object_id name="object_id" type="text" value=(object_id);
                    }
                    div.actions { button.button.primary type="submit" { "Send to my server" } }
                }
            }
        }
    };
    page(
        Shell {
            title: &format!("Test {object}.{field}"),
            session: Some(session),
            app: Some(app),
            tab: Tab::Webhooks,
        },
        content,
    )
}

/// `POST /dashboard/apps/{id}/webhooks/{object}/test/{field}`: sends the (edited) sample as a
/// signed test notification, built as `POST /{app-id}/subscriptions_sample` builds it. The
/// script gets `{"delivery_id"}` to follow; a plain form goes to the delivery's page.
pub(crate) async fn send_test(
    State(state): State<SharedState>,
    Path((app_id, object, field)): Path<(String, String, String)>,
    post: Post,
) -> Result<Response, DashError> {
    let app = post.session.app(&state, &app_id).await?;
    let value_text = post.form.get("value").unwrap_or("").to_owned();
    let object_id = post.form.text("object_id");
    let object_id = if object_id.is_empty() {
        "0".to_owned()
    } else {
        object_id
    };
    match build_test(&state, &app, &object, &field, &value_text, &object_id).await? {
        Ok(id) => {
            let delivery_url = format!("/dashboard/apps/{}/deliveries/{id}", app.id);
            if post.json {
                Ok(Json(json!({
                    "delivery_id": id.to_string(),
                    "status_url": format!("{delivery_url}/status"),
                    "log_url": delivery_url,
                }))
                .into_response())
            } else {
                Ok(Redirect::to(&delivery_url).into_response())
            }
        }
        Err(message) => {
            if post.json {
                Ok((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({ "error": message })),
                )
                    .into_response())
            } else {
                let markup = test_form_page(
                    &post.session,
                    &app,
                    &object,
                    &field,
                    &value_text,
                    &object_id,
                    Some(&message),
                );
                Ok((StatusCode::UNPROCESSABLE_ENTITY, markup).into_response())
            }
        }
    }
}

/// Builds and queues the test notification; `Ok(Err(message))` for input to fix.
async fn build_test(
    state: &SharedState,
    app: &App,
    object: &str,
    field: &str,
    value_text: &str,
    object_id: &str,
) -> Result<Result<i64, String>, DashError> {
    let catalog = catalog_with(state, object).await?;
    let Some(object_type) = catalog.get(object) else {
        return Ok(Err(format!("There is no object type {object:?}.")));
    };
    if !object_type.fields.contains_key(field) {
        return Ok(Err(format!("{object} has no field {field:?}.")));
    }
    if let Err(error) = graphhooks_core::model::validate_object_id("object ID", object_id) {
        return Ok(Err(error.to_string()));
    }
    let value: Value = match serde_json::from_str(value_text) {
        Ok(value) => value,
        Err(error) => {
            return Ok(Err(format!(
                "The sample value is not valid JSON: {error}. Use JSON text, for example \"text\" in quotes or {{\"key\": 1}}."
            )));
        }
    };
    let Some(subscription) = state.store.subscription(&app.id, object).await? else {
        return Ok(Err(format!(
            "The app has no subscription to {object}; verify and save a callback first."
        )));
    };
    let value = match to_meta_json(&value) {
        Ok(value) => value,
        Err(error) => return Ok(Err(format!("The value cannot be serialised: {error}"))),
    };
    if value.len() > graphhooks_core::MAX_BODY_BYTES / 2 {
        return Ok(Err(
            "The sample value is too large for a test notification.".into(),
        ));
    }
    let mut builder = NotificationBuilder::new(
        object,
        subscription.include_values,
        now_s(),
        BatchLimits::default(),
    );
    builder.push(ChangeItem {
        id: 0,
        object_id,
        field,
        value: &value,
    });
    let Some(mut notification) = builder.finish().pop() else {
        return Ok(Err("The test notification could not be built.".into()));
    };
    notification.change_ids.clear();
    let id = state
        .store
        .insert_delivery(
            NewDelivery {
                planned: PlannedDelivery {
                    app_id: app.id.clone(),
                    object_type: object.to_owned(),
                    state: DeliveryState::Pending,
                    notification,
                },
                test: true,
            },
            now_ms(),
        )
        .await?;
    tracing::info!(
        delivery_id = id,
        app_id = app.id,
        "Queued dashboard test notification {id} for app {}",
        app.id
    );
    state.engine.deliveries_due();
    Ok(Ok(id))
}
