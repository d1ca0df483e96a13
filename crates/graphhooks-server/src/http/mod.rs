//! The HTTP surface: every route in one list ([`router`]). The Graph-compatible API is one
//! catch-all dispatcher ([`graph`]) because its paths are `/{node}/{edge}` with an optional
//! `/vX.Y` prefix; the operator API lives under `/admin` ([`operator`]).

pub mod auth;
pub mod body;
pub mod deliveries;
pub mod error;
pub mod graph;
pub mod operator;
pub mod params;
pub mod rate_limit;
pub(crate) mod serve;
pub mod views;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use serde_json::json;

use crate::state::SharedState;
use error::{AdminCode, AdminError};

/// Builds the router.
pub fn router(state: SharedState) -> Router {
    let admin = Router::new()
        .route("/object-types", get(operator::object_types::list))
        .route(
            "/object-types/{name}",
            put(operator::object_types::put).get(operator::object_types::get),
        )
        .route(
            "/apps",
            post(operator::apps::create).get(operator::apps::list),
        )
        .route(
            "/apps/{id}",
            get(operator::apps::get)
                .patch(operator::apps::update)
                .delete(operator::apps::delete),
        )
        .route("/apps/{id}/secret", post(operator::apps::rotate_secret))
        .route("/apps/{id}/roles", get(operator::apps::roles))
        .route(
            "/apps/{id}/roles/{user_id}",
            put(operator::apps::put_role).delete(operator::apps::delete_role),
        )
        .route("/apps/{id}/grants", get(operator::apps::grants))
        .route(
            "/apps/{id}/grants/{object_type}/{object_id}",
            put(operator::apps::put_grant).delete(operator::apps::delete_grant),
        )
        .route(
            "/apps/{id}/subscriptions",
            get(operator::apps::subscriptions),
        )
        .route(
            "/apps/{id}/subscriptions/{object}/resume",
            post(operator::apps::resume),
        )
        .route("/apps/{id}/replay", post(operator::apps::replay))
        .route("/object-tokens", post(operator::object_tokens::issue))
        .route(
            "/object-tokens/{object}/{id}",
            axum::routing::delete(operator::object_tokens::delete),
        )
        .route("/changes", post(operator::changes::accept))
        .route("/changes/{id}", get(operator::changes::get))
        .route("/changes/{id}/explain", get(operator::changes::explain))
        .route("/deliveries", get(operator::deliveries::list))
        .route("/deliveries/{id}", get(operator::deliveries::get))
        .route(
            "/deliveries/{id}/redeliver",
            post(operator::deliveries::redeliver),
        )
        .method_not_allowed_fallback(admin_method_not_allowed);

    Router::new()
        .route("/healthz", get(healthz))
        .nest("/dashboard", crate::dashboard::router())
        .route(
            "/dashboard",
            get(|| async { axum::response::Redirect::to("/dashboard/home") }),
        )
        .route(
            "/dashboard/",
            get(|| async { axum::response::Redirect::to("/dashboard/home") }),
        )
        .route("/metrics", get(crate::metrics::render))
        .nest("/admin", admin)
        // Unknown operator paths answer in the operator's error shape, not the Graph one.
        .route("/admin", any(admin_not_found))
        .route("/admin/{*rest}", any(admin_not_found))
        .route("/", any(graph::root))
        .route("/{*path}", any(graph::dispatch))
        .with_state(state)
}

async fn admin_not_found() -> AdminError {
    AdminError::new(AdminCode::NotFound, "no such operator API path")
}

async fn admin_method_not_allowed() -> AdminError {
    AdminError::new(
        AdminCode::MethodNotAllowed,
        "this path does not support that method",
    )
}

/// Liveness, and whether the store answers.
async fn healthz(State(state): State<SharedState>) -> Response {
    match state.store.health().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ok", "database": "up"})),
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(error = %error::error_chain(&error), "Health check: the store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "degraded", "database": "down"})),
            )
                .into_response()
        }
    }
}
