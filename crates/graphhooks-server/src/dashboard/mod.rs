//! The dashboard at `/dashboard`: Meta's "Webhooks" product page, self-hosted. Server-rendered
//! pages with a little unobtrusive JavaScript, assets embedded in the binary.

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;

use crate::state::SharedState;

/// The dashboard's routes, nested under `/dashboard`.
pub fn router() -> Router<SharedState> {
    Router::new().route("/", get(|| async { Redirect::to("/dashboard/login") }))
}
