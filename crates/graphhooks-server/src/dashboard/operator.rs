//! The operator's pages: every app with its mode and delivery health (success rate over 24 h,
//! pending work, oldest pending), creating an app (its secret shown once), and one app's
//! settings: mode, roles and grants.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use graphhooks_core::catalog::validate_name;
use graphhooks_core::model::{App, AppMode, Grant, Role, validate_app_name, validate_object_id};
use graphhooks_store::{AppStats, StoreError};
use http::StatusCode;
use http::header::CACHE_CONTROL;
use maud::{Markup, html};
use serde::Deserialize;

use super::error::DashError;
use super::layout::{Shell, Tab, age, alert_error, csrf, mode_badge, notice, page};
use super::session::{Post, Session};
use crate::clock::{now_ms, now_s};
use crate::http::operator::apps::new_secret;
use crate::state::SharedState;

/// The window of the success rate.
const HEALTH_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// A new random app id: 15 digits, like Meta's (as the operator API makes them).
fn new_app_id() -> String {
    (rand::random::<u64>() % 900_000_000_000_000 + 100_000_000_000_000).to_string()
}

#[derive(Deserialize, Default)]
pub(crate) struct AppsQuery {
    #[serde(default)]
    notice: Option<String>,
}

/// What the create form shows after a POST.
enum Created<'a> {
    Nothing,
    App(&'a App),
    Error { message: String, name: String },
}

/// `GET /dashboard/apps`: the apps list (an app's session goes to its own page).
pub(crate) async fn apps(
    State(state): State<SharedState>,
    session: Session,
    Query(query): Query<AppsQuery>,
) -> Result<Response, DashError> {
    if !session.is_operator() {
        return Ok(Redirect::to(&super::login::home(&session)).into_response());
    }
    let notice_text = match query.notice.as_deref() {
        Some("deleted") => Some("The app was deleted."),
        _ => None,
    };
    Ok(apps_page(&state, &session, Created::Nothing, notice_text)
        .await?
        .into_response())
}

async fn apps_page(
    state: &SharedState,
    session: &Session,
    created: Created<'_>,
    notice_text: Option<&str>,
) -> Result<Markup, DashError> {
    let apps = state.store.apps().await?;
    let stats: HashMap<String, AppStats> = state
        .store
        .app_stats(now_ms() - HEALTH_WINDOW_MS)
        .await?
        .into_iter()
        .map(|s| (s.app_id.clone(), s))
        .collect();
    let now = now_s();
    let (error, typed_name) = match &created {
        Created::Error { message, name } => (Some(message.as_str()), name.as_str()),
        _ => (None, ""),
    };
    let content = html! {
        div.page-head {
            h1 { "Apps" }
            p.lead { "Every app on this graphhooks, with the health of its deliveries over the last 24 hours." }
        }
        (notice(notice_text))
        @if let Created::App(app) = &created {
            (secret_once(app))
        }
        section.card aria-labelledby="apps-title" {
            div.card-head {
                h2 #apps-title { (apps.len()) " app" @if apps.len() != 1 { "s" } }
            }
            @if apps.is_empty() {
                p.muted { "No apps yet. Create the first one below." }
            } @else {
                div.table-wrap {
                    table.apps {
                        thead {
                            tr {
                                th scope="col" { "App" }
                                th scope="col" { "Mode" }
                                th scope="col" { abbr title="Attempts answered 2xx over all attempts, last 24 hours" { "Success (24 h)" } }
                                th scope="col" { "Pending" }
                                th scope="col" { "Oldest pending" }
                                th scope="col" { span.sr-only { "Pages" } }
                            }
                        }
                        tbody {
                            @for app in &apps {
                                @let s = stats.get(&app.id);
                                tr data-app=(app.id) {
                                    th scope="row" {
                                        a.app-link href={ "/dashboard/apps/" (app.id) "/webhooks" } { (app.name) }
                                        div.muted.small { code { (app.id) } }
                                    }
                                    td { (mode_badge(app.mode)) }
                                    td { (success_rate(s)) }
                                    td.num { (s.map_or(0, |s| s.pending)) }
                                    td {
                                        @match s.and_then(|s| s.oldest_pending_created) {
                                            Some(created) => { (age(now - created)) }
                                            None => span.muted { "—" }
                                        }
                                    }
                                    td.links {
                                        a href={ "/dashboard/apps/" (app.id) "/webhooks" } { "Webhooks" }
                                        a href={ "/dashboard/apps/" (app.id) "/deliveries" } { "Log" }
                                        a href={ "/dashboard/apps/" (app.id) "/settings" } { "Settings" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="create-title" {
            h2 #create-title { "Create an app" }
            p.muted { "graphhooks makes a random 15-digit app ID and a 64-character secret. The secret is shown once." }
            @if let Some(message) = error { (alert_error("Not created", message)) }
            form.inline-form method="post" action="/dashboard/apps" {
                (csrf(session))
                div.field {
                    label for="new-name" { "Name" }
                    input #new-name name="name" type="text" required maxlength="200" value=(typed_name) autocomplete="off";
                }
                div.field {
                    label for="new-mode" { "Mode" }
                    select #new-mode name="mode" {
                        option value="development" { "Development" }
                        option value="live" { "Live" }
                    }
                }
                div.filter-actions {
                    button.button.primary type="submit" { "Create app" }
                }
            }
        }
    };
    Ok(page(
        Shell {
            title: "Apps",
            session: Some(session),
            app: None,
            tab: Tab::Apps,
        },
        content,
    ))
}

fn success_rate(stats: Option<&AppStats>) -> Markup {
    let Some(stats) = stats else {
        return html! { span.muted { "no attempts" } };
    };
    let total = stats.attempts_ok + stats.attempts_failed;
    if total == 0 {
        return html! { span.muted { "no attempts" } };
    }
    let rate = stats.attempts_ok as f64 * 100.0 / total as f64;
    let class = if rate >= 99.0 {
        "health health-good"
    } else if rate >= 90.0 {
        "health health-warn"
    } else {
        "health health-bad"
    };
    let shown = if rate > 99.9 && stats.attempts_failed == 0 {
        "100%".to_owned()
    } else {
        format!("{rate:.1}%")
    };
    html! {
        span class=(class) { (shown) }
        span.muted.small { " of " (total) }
    }
}

fn secret_once(app: &App) -> Markup {
    html! {
        section.card.secret-card role="status" aria-labelledby="secret-title" {
            h2 #secret-title { "Created " (app.name) }
            p { "App ID " code #created-app-id { (app.id) } }
            p { strong { "App secret — shown only now. " } "Copy it to the app's developers; graphhooks keeps it but never shows it again." }
            div.secret-row {
                code.secret #created-secret { (app.secret.expose()) }
                button.button.small type="button" data-copy="#created-secret" { "Copy" }
            }
            p.actions {
                a.button.primary href={ "/dashboard/apps/" (app.id) "/webhooks" } { "Open its Webhooks page" }
                a.button href={ "/dashboard/apps/" (app.id) "/settings" } { "Settings" }
            }
        }
    }
}

/// `POST /dashboard/apps`: creates an app and shows its secret once.
pub(crate) async fn create(
    State(state): State<SharedState>,
    post: Post,
) -> Result<Response, DashError> {
    post.session.require_operator()?;
    let name = post.form.text("name");
    let mode = AppMode::parse(post.form.get("mode").unwrap_or("development"));
    let invalid = |message: String| Created::Error {
        message,
        name: name.clone(),
    };
    let outcome = match (validate_app_name(&name), mode) {
        (Err(_), _) => Err(invalid(
            "Give the app a name of 1 to 200 characters.".to_owned(),
        )),
        (_, Err(error)) => Err(invalid(error.to_string())),
        (Ok(()), Ok(mode)) => {
            let mut created = None;
            let secret = new_secret();
            // A random id may collide; try a few times.
            for _ in 0..5 {
                let app = App {
                    id: new_app_id(),
                    name: name.clone(),
                    mode,
                    secret: secret.clone(),
                    previous_secret: None,
                    created_time: now_s(),
                };
                match state.store.create_app(app.clone()).await {
                    Ok(()) => {
                        created = Some(app);
                        break;
                    }
                    Err(StoreError::Conflict(_)) => continue,
                    Err(error) => return Err(error.into()),
                }
            }
            created.ok_or_else(|| invalid("Could not find a free app ID; try again.".into()))
        }
    };
    match outcome {
        Ok(app) => {
            tracing::info!(app_id = app.id, "Created app {} from the dashboard", app.id);
            let markup = apps_page(&state, &post.session, Created::App(&app), None).await?;
            // The page holds a secret: never cache it.
            Ok((StatusCode::CREATED, [(CACHE_CONTROL, "no-store")], markup).into_response())
        }
        Err(created) => {
            let markup = apps_page(&state, &post.session, created, None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, markup).into_response())
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct SettingsQuery {
    #[serde(default)]
    notice: Option<String>,
}

fn settings_url(app: &App, notice: &str) -> String {
    format!("/dashboard/apps/{}/settings?notice={notice}", app.id)
}

/// `GET /dashboard/apps/{id}/settings`.
pub(crate) async fn settings(
    State(state): State<SharedState>,
    session: Session,
    Path(app_id): Path<String>,
    Query(query): Query<SettingsQuery>,
) -> Result<Response, DashError> {
    session.require_operator()?;
    let app = session.app(&state, &app_id).await?;
    let text = match query.notice.as_deref() {
        Some("mode") => Some(format!("The app is now in {} mode.", app.mode.as_str())),
        Some("role-saved") => Some("Role saved.".to_owned()),
        Some("role-removed") => Some("Role removed.".to_owned()),
        Some("grant-saved") => Some("Grant saved.".to_owned()),
        Some("grant-removed") => Some("Grant removed.".to_owned()),
        _ => None,
    };
    Ok(settings_page(&state, &session, &app, text.as_deref(), None)
        .await?
        .into_response())
}

/// Which form an error belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Mode,
    Roles,
    Grants,
}

async fn settings_page(
    state: &SharedState,
    session: &Session,
    app: &App,
    notice_text: Option<&str>,
    error: Option<(Section, String)>,
) -> Result<Markup, DashError> {
    let roles = state.store.roles(&app.id).await?;
    let grants = state.store.grants(&app.id).await?;
    let mut types: Vec<String> = state.catalog.snapshot().keys().cloned().collect();
    types.sort();
    let base = format!("/dashboard/apps/{}/settings", app.id);
    let error_for = |section: Section| {
        error
            .as_ref()
            .filter(|(s, _)| *s == section)
            .map(|(_, m)| alert_error("Not saved", m))
    };
    let content = html! {
        div.page-head {
            h1 { "Settings" }
            p.lead { "Mode, roles and grants decide which changes reach " (app.name) "." }
        }
        (notice(notice_text))
        section.card aria-labelledby="mode-title" {
            h2 #mode-title { "Mode" }
            p.muted {
                strong { "Live" } ": every eligible change. "
                strong { "Development" } ": only changes made by people with a role on the app, and test notifications."
            }
            @if let Some(e) = error_for(Section::Mode) { (e) }
            form.inline-form method="post" action={ (base) "/mode" } {
                (csrf(session))
                div.field {
                    label for="mode" { "Mode" }
                    select #mode name="mode" {
                        option value="development" selected[app.mode == AppMode::Development] { "Development" }
                        option value="live" selected[app.mode == AppMode::Live] { "Live" }
                    }
                }
                div.filter-actions { button.button.primary type="submit" { "Switch mode" } }
            }
        }
        section.card aria-labelledby="roles-title" {
            h2 #roles-title { "Roles" }
            p.muted { "People with a role on the app: in development mode, only their changes reach it." }
            @if let Some(e) = error_for(Section::Roles) { (e) }
            @if roles.is_empty() {
                p.muted { "No roles." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "User ID" } th scope="col" { "Role" } th scope="col" { span.sr-only { "Remove" } } } }
                        tbody {
                            @for (user, role) in &roles {
                                tr {
                                    td { code { (user) } }
                                    td { (role.as_str()) }
                                    td.action {
                                        form method="post" action={ (base) "/roles/remove" } {
                                            (csrf(session))
                                            input type="hidden" name="user_id" value=(user);
                                            button.button.small type="submit" aria-label={ "Remove the role of " (user) } { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.inline-form method="post" action={ (base) "/roles" } {
                (csrf(session))
                div.field {
                    label for="role-user" { "User ID" }
                    input #role-user name="user_id" type="text" required autocomplete="off";
                }
                div.field {
                    label for="role-role" { "Role" }
                    select #role-role name="role" {
                        option value="administrator" { "Administrator" }
                        option value="developer" selected { "Developer" }
                        option value="tester" { "Tester" }
                    }
                }
                div.filter-actions { button.button type="submit" { "Add role" } }
            }
        }
        section.card aria-labelledby="grants-title" {
            h2 #grants-title { "Grants" }
            p.muted { "Objects whose owner let the app see them, with the permissions granted." }
            @if let Some(e) = error_for(Section::Grants) { (e) }
            @if grants.is_empty() {
                p.muted { "No grants." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "Object" } th scope="col" { "Permissions" } th scope="col" { span.sr-only { "Remove" } } } }
                        tbody {
                            @for grant in &grants {
                                tr {
                                    td { code { (grant.object_type) " " (grant.object_id) } }
                                    td {
                                        @if grant.permissions.is_empty() { span.muted { "none" } }
                                        @for p in &grant.permissions { span.badge.badge-muted { (p) } " " }
                                    }
                                    td.action {
                                        form method="post" action={ (base) "/grants/remove" } {
                                            (csrf(session))
                                            input type="hidden" name="object_type" value=(grant.object_type);
                                            input type="hidden" name="object_id" value=(grant.object_id);
                                            button.button.small type="submit" aria-label={ "Remove the grant for " (grant.object_type) " " (grant.object_id) } { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.inline-form method="post" action={ (base) "/grants" } {
                (csrf(session))
                div.field {
                    label for="grant-type" { "Object type" }
                    select #grant-type name="object_type" {
                        @for t in &types { option value=(t) selected[t == "user"] { (t) } }
                    }
                }
                div.field {
                    label for="grant-id" { "Object ID" }
                    input #grant-id name="object_id" type="text" required autocomplete="off";
                }
                div.field.grow {
                    label for="grant-permissions" { "Permissions " span.help.inline { "(comma-separated)" } }
                    input #grant-permissions name="permissions" type="text" placeholder="email, public_profile" autocomplete="off";
                }
                div.filter-actions { button.button type="submit" { "Save grant" } }
            }
        }
    };
    Ok(page(
        Shell {
            title: &format!("Settings · {}", app.name),
            session: Some(session),
            app: Some(app),
            tab: Tab::Settings,
        },
        content,
    ))
}

/// Renders the settings page again with an error by the form that failed.
async fn settings_failure(
    state: &SharedState,
    session: &Session,
    app: &App,
    section: Section,
    message: String,
) -> Result<Response, DashError> {
    let markup = settings_page(state, session, app, None, Some((section, message))).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, markup).into_response())
}

/// `POST /dashboard/apps/{id}/settings/mode`.
pub(crate) async fn set_mode(
    State(state): State<SharedState>,
    Path(app_id): Path<String>,
    post: Post,
) -> Result<Response, DashError> {
    post.session.require_operator()?;
    let app = post.session.app(&state, &app_id).await?;
    let mode = match AppMode::parse(post.form.get("mode").unwrap_or("")) {
        Ok(mode) => mode,
        Err(error) => {
            return settings_failure(
                &state,
                &post.session,
                &app,
                Section::Mode,
                error.to_string(),
            )
            .await;
        }
    };
    state.store.update_app(&app.id, None, Some(mode)).await?;
    tracing::info!(
        app_id = app.id,
        mode = mode.as_str(),
        "Switched app {} to {} mode from the dashboard",
        app.id,
        mode.as_str()
    );
    Ok(Redirect::to(&settings_url(&app, "mode")).into_response())
}

/// `POST /dashboard/apps/{id}/settings/roles`: sets a person's role.
pub(crate) async fn put_role(
    State(state): State<SharedState>,
    Path(app_id): Path<String>,
    post: Post,
) -> Result<Response, DashError> {
    post.session.require_operator()?;
    let app = post.session.app(&state, &app_id).await?;
    let user_id = post.form.text("user_id");
    let checked = validate_object_id("user ID", &user_id)
        .and_then(|()| Role::parse(post.form.get("role").unwrap_or("")));
    match checked {
        Ok(role) => {
            state.store.put_role(&app.id, &user_id, role).await?;
            Ok(Redirect::to(&settings_url(&app, "role-saved")).into_response())
        }
        Err(error) => {
            settings_failure(
                &state,
                &post.session,
                &app,
                Section::Roles,
                error.to_string(),
            )
            .await
        }
    }
}

/// `POST /dashboard/apps/{id}/settings/roles/remove`.
pub(crate) async fn delete_role(
    State(state): State<SharedState>,
    Path(app_id): Path<String>,
    post: Post,
) -> Result<Response, DashError> {
    post.session.require_operator()?;
    let app = post.session.app(&state, &app_id).await?;
    let user_id = post.form.text("user_id");
    match state.store.delete_role(&app.id, &user_id).await {
        Ok(()) => Ok(Redirect::to(&settings_url(&app, "role-removed")).into_response()),
        Err(StoreError::NotFound(_)) => {
            let message = format!("User {user_id} has no role on this app.");
            settings_failure(&state, &post.session, &app, Section::Roles, message).await
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /dashboard/apps/{id}/settings/grants`: creates or replaces a grant.
pub(crate) async fn put_grant(
    State(state): State<SharedState>,
    Path(app_id): Path<String>,
    post: Post,
) -> Result<Response, DashError> {
    post.session.require_operator()?;
    let app = post.session.app(&state, &app_id).await?;
    let object_type = post.form.text("object_type");
    let object_id = post.form.text("object_id");
    let mut permissions: Vec<String> = post
        .form
        .text("permissions")
        .split([',', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    permissions.sort();
    permissions.dedup();
    let known = state.catalog.snapshot().contains_key(&object_type)
        || state
            .catalog
            .reload(&*state.store)
            .await?
            .contains_key(&object_type);
    let checked = if known {
        validate_object_id("object ID", &object_id).and_then(|()| {
            permissions
                .iter()
                .try_for_each(|p| validate_name("permission", p))
        })
    } else {
        Err(graphhooks_core::CoreError::UnknownObjectType(
            object_type.clone(),
        ))
    };
    if let Err(error) = checked {
        return settings_failure(
            &state,
            &post.session,
            &app,
            Section::Grants,
            error.to_string(),
        )
        .await;
    }
    state
        .store
        .put_grant(Grant {
            app_id: app.id.clone(),
            object_type,
            object_id,
            permissions,
        })
        .await?;
    Ok(Redirect::to(&settings_url(&app, "grant-saved")).into_response())
}

/// `POST /dashboard/apps/{id}/settings/grants/remove`.
pub(crate) async fn delete_grant(
    State(state): State<SharedState>,
    Path(app_id): Path<String>,
    post: Post,
) -> Result<Response, DashError> {
    post.session.require_operator()?;
    let app = post.session.app(&state, &app_id).await?;
    let object_type = post.form.text("object_type");
    let object_id = post.form.text("object_id");
    match state
        .store
        .delete_grant(&app.id, &object_type, &object_id)
        .await
    {
        Ok(()) => Ok(Redirect::to(&settings_url(&app, "grant-removed")).into_response()),
        Err(StoreError::NotFound(_)) => {
            let message = format!("The app has no grant for {object_type} {object_id}.");
            settings_failure(&state, &post.session, &app, Section::Grants, message).await
        }
        Err(error) => Err(error.into()),
    }
}
