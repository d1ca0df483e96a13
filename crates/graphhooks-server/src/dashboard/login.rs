//! Signing in (app id and secret, or the admin token) and out. The sign-in form carries its
//! own CSRF token, checked against a cookie set with the form, since there is no session yet.

use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use graphhooks_core::model::validate_app_id;
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;

use super::error::DashError;
use super::layout::{Shell, Tab, page};
use super::session::{
    self, COOKIE_NAME, CSRF_FIELD, FormData, LOGIN_COOKIE_NAME, Post, SESSION_SECONDS, Session,
    Who, same, set_cookie, with_cookie,
};
use crate::clock::{now_ms, now_s};
use crate::http::auth::is_admin_token;
use crate::state::SharedState;

/// How long a sign-in form stays usable.
const SIGNIN_FORM_SECONDS: i64 = 3600;

/// The page a session starts on.
pub(crate) fn home(session: &Session) -> String {
    match &session.who {
        Who::Operator => "/dashboard/apps".into(),
        Who::App(app) => format!("/dashboard/apps/{}/webhooks", app.id),
    }
}

/// Only a dashboard path may be a `next` target (no open redirect).
fn safe_next(next: &str) -> Option<&str> {
    (next.starts_with("/dashboard/")
        && !next.starts_with("/dashboard/login")
        && !next.contains("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control))
    .then_some(next)
}

/// `GET /dashboard/home`: the session's home page when signed in, sign-in otherwise.
pub(crate) async fn index(session: Option<Session>) -> Redirect {
    match session {
        Some(session) => Redirect::to(&home(&session)),
        None => Redirect::to("/dashboard/login"),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    signed_out: Option<String>,
}

/// What the sign-in page shows besides the forms.
#[derive(Default)]
struct LoginView<'a> {
    next: &'a str,
    error: Option<(&'a str, &'a str)>,
    app_id: &'a str,
    signed_out: bool,
    expired: bool,
}

fn login_page(token: &str, view: &LoginView<'_>) -> Markup {
    let app_error = view.error.filter(|(kind, _)| *kind == "app").map(|e| e.1);
    let operator_error = view
        .error
        .filter(|(kind, _)| *kind == "operator")
        .map(|e| e.1);
    let content = html! {
        div.signin {
            div.signin-intro {
                h1 { "Sign in to graphhooks" }
                p.lead { "Configure your app's webhooks, send test notifications and read the delivery log." }
                @if view.signed_out {
                    div.alert.alert-success role="status" { "You are signed out." }
                }
                @if view.expired {
                    div.alert.alert-error role="alert" { strong { "The sign-in form expired" } p { "Sign in again." } }
                }
            }
            div.signin-grid {
                section.card aria-labelledby="app-signin" {
                    h2 #app-signin { "App developer" }
                    p.muted { "Use your app's ID and app secret." }
                    @if let Some(message) = app_error {
                        div.alert.alert-error role="alert" #app-error { (message) }
                    }
                    form method="post" action="/dashboard/login" {
                        input type="hidden" name=(CSRF_FIELD) value=(token);
                        input type="hidden" name="kind" value="app";
                        input type="hidden" name="next" value=(view.next);
                        div.field {
                            label for="app_id" { "App ID" }
                            input #app_id name="app_id" type="text" inputmode="numeric" autocomplete="username"
                                required value=(view.app_id) aria-invalid=[app_error.map(|_| "true")]
                                aria-describedby=[app_error.map(|_| "app-error")];
                        }
                        div.field {
                            label for="app_secret" { "App secret" }
                            input #app_secret name="app_secret" type="password" autocomplete="current-password" required
                                aria-invalid=[app_error.map(|_| "true")];
                        }
                        button.button.primary type="submit" { "Sign in" }
                    }
                }
                section.card aria-labelledby="operator-signin" {
                    h2 #operator-signin { "Operator" }
                    p.muted { "Use the admin token printed when graphhooks first started." }
                    @if let Some(message) = operator_error {
                        div.alert.alert-error role="alert" #operator-error { (message) }
                    }
                    form method="post" action="/dashboard/login" {
                        input type="hidden" name=(CSRF_FIELD) value=(token);
                        input type="hidden" name="kind" value="operator";
                        // Lets password managers file the token under a name.
                        input.sr-only type="text" name="username" value="operator" autocomplete="username" tabindex="-1" aria-hidden="true" readonly;
                        input type="hidden" name="next" value=(view.next);
                        div.field {
                            label for="admin_token" { "Admin token" }
                            input #admin_token name="admin_token" type="password" autocomplete="current-password" required
                                aria-invalid=[operator_error.map(|_| "true")]
                                aria-describedby=[operator_error.map(|_| "operator-error")];
                        }
                        button.button type="submit" { "Sign in as operator" }
                    }
                }
            }
        }
    };
    page(
        Shell {
            title: "Sign in",
            session: None,
            app: None,
            tab: Tab::None,
        },
        content,
    )
}

/// The sign-in page with a fresh form token (and its cookie).
fn render_login(headers: &HeaderMap, status: StatusCode, view: &LoginView<'_>) -> Response {
    let token = hex::encode(rand::random::<[u8; 16]>());
    let response = (status, login_page(&token, view)).into_response();
    with_cookie(
        response,
        set_cookie(headers, LOGIN_COOKIE_NAME, &token, SIGNIN_FORM_SECONDS),
    )
}

/// `GET /dashboard/login`.
pub(crate) async fn show(
    session: Option<Session>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = query.next.as_deref().and_then(safe_next).unwrap_or("");
    if let Some(session) = session {
        let target = if next.is_empty() {
            home(&session)
        } else {
            next.to_owned()
        };
        return Redirect::to(&target).into_response();
    }
    render_login(
        &headers,
        StatusCode::OK,
        &LoginView {
            next,
            signed_out: query.signed_out.is_some(),
            ..LoginView::default()
        },
    )
}

/// Who the form's credentials name, or the message to show.
async fn authenticate(
    state: &SharedState,
    form: &FormData,
) -> Result<Result<Who, (&'static str, &'static str)>, DashError> {
    if form.get("kind") == Some("operator") {
        let token = form.get("admin_token").unwrap_or("").trim();
        if !token.is_empty() && is_admin_token(state, token) {
            return Ok(Ok(Who::Operator));
        }
        return Ok(Err(("operator", "That is not the admin token.")));
    }
    let app_id = form.text("app_id");
    let secret = form.text("app_secret");
    if app_id.is_empty() || secret.is_empty() {
        return Ok(Err(("app", "Enter both the app ID and the app secret.")));
    }
    const WRONG: (&str, &str) = (
        "app",
        "The app ID or app secret is wrong. (The secret was shown when the app was created or its secret last rotated.)",
    );
    if validate_app_id(&app_id).is_err() {
        return Ok(Err(("app", "An app ID is a number, like 482910375518233.")));
    }
    let Some(app) = state.store.app(&app_id).await? else {
        return Ok(Err(WRONG));
    };
    let current = same(secret.as_bytes(), app.secret.expose().as_bytes());
    let previous = app
        .previous_secret_at(now_ms())
        .is_some_and(|previous| same(secret.as_bytes(), previous.expose().as_bytes()));
    if current || previous {
        Ok(Ok(Who::App(app)))
    } else {
        Ok(Err(WRONG))
    }
}

/// `POST /dashboard/login`.
pub(crate) async fn submit(
    State(state): State<SharedState>,
    request: Request,
) -> Result<Response, DashError> {
    let (headers, form) = session::read_form(request).await?;
    let next_field = form.text("next");
    let next = safe_next(&next_field).unwrap_or("");
    let expected = session::cookie(&headers, LOGIN_COOKIE_NAME).unwrap_or("");
    let given = form.get(CSRF_FIELD).unwrap_or("");
    if expected.is_empty() || !same(expected.as_bytes(), given.as_bytes()) {
        return Ok(render_login(
            &headers,
            StatusCode::FORBIDDEN,
            &LoginView {
                next,
                expired: true,
                ..LoginView::default()
            },
        ));
    }
    let app_id = form.text("app_id");
    let who = match authenticate(&state, &form).await? {
        Ok(who) => who,
        Err(error) => {
            tracing::info!(
                kind = error.0,
                "Dashboard sign-in refused: wrong credentials"
            );
            return Ok(render_login(
                &headers,
                StatusCode::UNAUTHORIZED,
                &LoginView {
                    next,
                    error: Some(error),
                    app_id: &app_id,
                    ..LoginView::default()
                },
            ));
        }
    };
    let cookie = session::issue(&state, &who, now_s()).await?;
    let session = Session {
        who,
        csrf: String::new(),
    };
    match &session.who {
        Who::Operator => tracing::info!("Operator signed in to the dashboard"),
        Who::App(app) => {
            tracing::info!(app_id = app.id, "App {} signed in to the dashboard", app.id)
        }
    }
    let target = if next.is_empty() {
        home(&session)
    } else {
        next.to_owned()
    };
    let response = Redirect::to(&target).into_response();
    let response = with_cookie(
        response,
        set_cookie(&headers, COOKIE_NAME, &cookie, SESSION_SECONDS),
    );
    Ok(with_cookie(
        response,
        set_cookie(&headers, LOGIN_COOKIE_NAME, "", 0),
    ))
}

/// `POST /dashboard/logout`: forgets the session cookie.
pub(crate) async fn logout(headers: HeaderMap, _post: Post) -> Response {
    with_cookie(
        Redirect::to("/dashboard/login?signed_out=1").into_response(),
        set_cookie(&headers, COOKIE_NAME, "", 0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dashboard_paths_are_next_targets() {
        assert_eq!(
            safe_next("/dashboard/apps/1/webhooks"),
            Some("/dashboard/apps/1/webhooks")
        );
        assert_eq!(safe_next("https://evil.example/"), None);
        assert_eq!(safe_next("//evil.example/dashboard/"), None);
        assert_eq!(safe_next("/dashboard//evil.example"), None);
        assert_eq!(safe_next("/dashboard/login"), None);
        assert_eq!(safe_next("/admin/apps"), None);
    }
}
