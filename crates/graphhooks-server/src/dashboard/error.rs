//! What the dashboard answers when a request cannot be served: a page saying what happened and
//! what to do (or JSON for the dashboard's own scripts), never a stack trace. Internal causes
//! are logged here and not shown.

use axum::response::{IntoResponse, Redirect, Response};
use graphhooks_store::StoreError;
use http::StatusCode;
use serde_json::json;

use super::layout;
use crate::http::error::error_chain;

/// A dashboard failure.
#[derive(Debug)]
pub(crate) enum DashError {
    /// No valid session: go and sign in (then come back to `next`).
    Unauthenticated {
        /// Where to return after signing in (a dashboard path), or "".
        next: String,
        /// Answer 401 JSON instead of a redirect.
        json: bool,
    },
    /// The CSRF token is missing or wrong.
    Csrf,
    /// Not allowed to see this.
    Forbidden(String),
    /// No such thing.
    NotFound(String),
    /// The request is wrong.
    BadRequest(String),
    /// The form body is over the limit.
    TooLarge,
    /// Storage is unavailable; retry.
    Unavailable(String),
    /// A defect.
    Internal(String),
}

impl From<StoreError> for DashError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => DashError::NotFound(format!("{what} does not exist.")),
            StoreError::Conflict(message) => DashError::BadRequest(message),
            StoreError::Unavailable(cause) => DashError::Unavailable(error_chain(&*cause)),
            other => DashError::Internal(error_chain(&other)),
        }
    }
}

impl From<graphhooks_core::CoreError> for DashError {
    fn from(error: graphhooks_core::CoreError) -> Self {
        DashError::BadRequest(error.to_string())
    }
}

impl DashError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            DashError::Unauthenticated { .. } => (
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your session has ended. Sign in again.".into(),
            ),
            DashError::Csrf => (
                StatusCode::FORBIDDEN,
                "The form expired",
                "This form's security token is missing or out of date (perhaps you signed in again in another tab). Go back, reload the page and try again.".into(),
            ),
            DashError::Forbidden(message) => {
                (StatusCode::FORBIDDEN, "Not allowed", message.clone())
            }
            DashError::NotFound(message) => (StatusCode::NOT_FOUND, "Not found", message.clone()),
            DashError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, "Cannot do that", message.clone())
            }
            DashError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form is larger than 1 MiB.".into(),
            ),
            DashError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Storage unavailable",
                "graphhooks cannot reach its database right now. Try again in a moment.".into(),
            ),
            DashError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "graphhooks hit an internal error; the operator can find it in the server log."
                    .into(),
            ),
        }
    }
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        match &self {
            DashError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "Dashboard request failed: storage unavailable");
            }
            DashError::Internal(cause) => {
                tracing::error!(error = %cause, "Dashboard request failed inside graphhooks");
            }
            _ => {}
        }
        let (status, title, message) = self.parts();
        match self {
            DashError::Unauthenticated { json: true, .. } => {
                (status, axum::Json(json!({"error": message}))).into_response()
            }
            DashError::Unauthenticated { next, json: false } => {
                let target = if next.is_empty() {
                    "/dashboard/login".to_owned()
                } else {
                    let query: String = form_urlencoded::Serializer::new(String::new())
                        .append_pair("next", &next)
                        .finish();
                    format!("/dashboard/login?{query}")
                };
                Redirect::to(&target).into_response()
            }
            _ => (status, layout::error_page(status, title, &message)).into_response(),
        }
    }
}
