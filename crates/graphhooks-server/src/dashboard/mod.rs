//! The dashboard at `/dashboard`: Meta's "Webhooks" product page, self-hosted. Server-rendered
//! pages (maud) with a little unobtrusive JavaScript; the stylesheet and script are embedded
//! in the binary (no CDN, no build step).
//!
//! - [`session`]: sign-in sessions in a signed cookie any node can check, and CSRF.
//! - [`login`]: signing in and out.
//! - [`webhooks`]: an app's subscriptions, fields, test notifications, resume.
//! - [`deliveries`]: an app's delivery log and redelivery.
//! - [`operator`]: the apps list with health, creating apps, mode, roles and grants.
//!
//! An app's session sees that app only (403 for any other app id); the operator's sees all.
//! Every POST goes through [`session::Post`], which checks the session's CSRF token.
//!
//! ```text
//! GET  /dashboard/home                     the session's home, or sign-in
//! GET  /dashboard/login   POST same        sign in (app id + secret, or admin token)
//! POST /dashboard/logout
//! GET  /dashboard/apps    POST same        operator: apps with health; create an app
//! GET  /dashboard/apps/{id}/webhooks?object=
//! POST /dashboard/apps/{id}/webhooks/{object}/verify|resume|remove
//! POST /dashboard/apps/{id}/webhooks/{object}/fields/{field}/subscribe|unsubscribe
//! GET  /dashboard/apps/{id}/webhooks/{object}/test/{field}   POST same (send the test)
//! GET  /dashboard/apps/{id}/deliveries?state=&object=&after=&open=
//! GET  /dashboard/apps/{id}/deliveries/{delivery}[/status]   POST …/redeliver
//! GET  /dashboard/apps/{id}/settings       POST …/settings/mode|roles|roles/remove|grants|grants/remove
//! GET  /dashboard/assets/dashboard.css|dashboard.js
//! ```

mod deliveries;
mod error;
mod layout;
mod login;
mod operator;
mod session;
mod webhooks;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use http::HeaderValue;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};

use crate::state::SharedState;

/// The dashboard's routes, nested under `/dashboard`.
pub fn router() -> Router<SharedState> {
    let app = "/apps/{id}";
    let object = "/apps/{id}/webhooks/{object}";
    Router::new()
        .route("/home", get(login::index))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/assets/dashboard.css", get(layout::stylesheet))
        .route("/assets/dashboard.js", get(layout::script))
        .route("/apps", get(operator::apps).post(operator::create))
        .route(&format!("{app}/webhooks"), get(webhooks::show))
        .route(&format!("{object}/verify"), post(webhooks::verify))
        .route(&format!("{object}/resume"), post(webhooks::resume))
        .route(&format!("{object}/remove"), post(webhooks::remove))
        .route(
            &format!("{object}/fields/{{field}}/subscribe"),
            post(webhooks::subscribe),
        )
        .route(
            &format!("{object}/fields/{{field}}/unsubscribe"),
            post(webhooks::unsubscribe),
        )
        .route(
            &format!("{object}/test/{{field}}"),
            get(webhooks::test_page).post(webhooks::send_test),
        )
        .route(&format!("{app}/deliveries"), get(deliveries::list))
        .route(
            &format!("{app}/deliveries/{{delivery}}"),
            get(deliveries::show),
        )
        .route(
            &format!("{app}/deliveries/{{delivery}}/status"),
            get(deliveries::status),
        )
        .route(
            &format!("{app}/deliveries/{{delivery}}/redeliver"),
            post(deliveries::redeliver),
        )
        .route(&format!("{app}/settings"), get(operator::settings))
        .route(&format!("{app}/settings/mode"), post(operator::set_mode))
        .route(&format!("{app}/settings/roles"), post(operator::put_role))
        .route(
            &format!("{app}/settings/roles/remove"),
            post(operator::delete_role),
        )
        .route(&format!("{app}/settings/grants"), post(operator::put_grant))
        .route(
            &format!("{app}/settings/grants/remove"),
            post(operator::delete_grant),
        )
        .route("/{*rest}", get(not_found).post(not_found))
        .layer(middleware::from_fn(security_headers))
}

async fn not_found() -> error::DashError {
    error::DashError::NotFound("There is no dashboard page at this address.".into())
}

/// Headers on every dashboard answer: scripts and styles from this origin only (no inline
/// code), no framing, no sniffing, no referrer to other sites, and pages never cached (they
/// show secrets and per-session tokens).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
