//! The Graph-compatible API (SPEC §3): `/{node}/{edge}` with an optional `/vX.Y` prefix that
//! also pins new subscription fields to that version. One dispatcher reads the path, the
//! parameters (any encoding, see [`super::params`]) and the token, then calls the edge handler.

mod deliveries;
mod explain;
mod sample;
mod subscribed_apps;
pub mod subscriptions;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};

use super::auth::{Caller, graph_caller};
use super::body::{GRAPH_BODY_LIMIT, read_limited};
use super::error::{GraphCode, GraphError};
use super::params::Params;
use crate::state::SharedState;

/// A parsed Graph request.
pub(crate) struct GraphRequest {
    /// The effective method (POST may carry `method=delete`, as Meta's JS SDK sends).
    pub(crate) method: Method,
    /// The API version of the path, or the server's current one.
    pub(crate) version: String,
    /// Path segments after the version.
    pub(crate) segments: Vec<String>,
    /// All parameters.
    pub(crate) params: Params,
    /// Who is calling.
    pub(crate) caller: Caller,
    /// `scheme://host` the client used, for `paging.next` links.
    pub(crate) origin: String,
}

fn is_version(segment: &str) -> bool {
    let Some(rest) = segment.strip_prefix('v') else {
        return false;
    };
    let mut parts = rest.split('.');
    let major = parts.next().unwrap_or("");
    let minor = parts.next().unwrap_or("");
    parts.next().is_none()
        && !major.is_empty()
        && !minor.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor.bytes().all(|b| b.is_ascii_digit())
}

/// The request's origin as the client saw it.
pub(crate) fn origin(headers: &http::HeaderMap) -> String {
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|s| *s == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

/// `GET /`: Meta answers unknown roots with an error too.
pub(crate) async fn root() -> Response {
    GraphError::new(GraphCode::UnknownPath, "Unknown path components: /").into_response()
}

/// Entry point of every Graph path.
pub(crate) async fn dispatch(State(state): State<SharedState>, request: Request) -> Response {
    match handle(state, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn handle(state: SharedState, request: Request) -> Result<Response, GraphError> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let method = request.method().clone();
    let (parts, body) = read_limited(request, GRAPH_BODY_LIMIT).await?;
    let params = Params::collect(query.as_deref(), &parts.headers, body).await?;

    let mut segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let version = if segments.first().is_some_and(|s| is_version(s)) {
        segments.remove(0)
    } else {
        graphhooks_core::CURRENT_API_VERSION.to_owned()
    };
    let method = match (
        &method,
        params.text("method")?.map(|m| m.to_ascii_uppercase()),
    ) {
        (&Method::POST, Some(m)) if m == "DELETE" => Method::DELETE,
        (&Method::POST, Some(m)) if m == "GET" => Method::GET,
        _ => method,
    };
    if segments.len() < 2 {
        return Err(unknown_path(&path));
    }
    let caller = graph_caller(&state, &parts.headers, &params).await?;
    let request = GraphRequest {
        method,
        version,
        segments,
        params,
        caller,
        origin: origin(&parts.headers),
    };
    let edge: Vec<&str> = request.segments[1..].iter().map(String::as_str).collect();
    match edge.as_slice() {
        ["subscriptions"] => subscriptions::handle(&state, &request).await,
        ["subscriptions_sample"] => sample::handle(&state, &request).await,
        ["deliveries"] => deliveries::list(&state, &request).await,
        ["deliveries", id, "redeliver"] => deliveries::redeliver(&state, &request, id).await,
        ["changes", id, "explain"] => explain::handle(&state, &request, id).await,
        ["subscribed_apps"] => subscribed_apps::handle(&state, &request).await,
        _ => Err(unknown_path(&path)),
    }
}

/// Decodes `%XX` escapes of a path segment (invalid escapes are kept as written).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let (Some(high), Some(low)) =
                (hex_value(bytes[index + 1]), hex_value(bytes[index + 2]))
        {
            out.push(high * 16 + low);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

pub(crate) fn unknown_path(path: &str) -> GraphError {
    GraphError::new(
        GraphCode::UnknownPath,
        format!("Unknown path components: {path}"),
    )
}

/// Checks the node is an app the caller may act on, and returns its id.
pub(crate) async fn app_node(
    state: &SharedState,
    request: &GraphRequest,
) -> Result<String, GraphError> {
    let app_id = &request.segments[0];
    let exists = graphhooks_core::model::validate_app_id(app_id).is_ok()
        && state.store.app(app_id).await?.is_some();
    if !exists {
        // A token holder learns no more than "no app here you may use".
        return Err(match &request.caller {
            Caller::App(app) if app.id != *app_id => GraphError::new(
                GraphCode::Permission,
                "Permissions error: the access token belongs to another app",
            ),
            Caller::Object { .. } => GraphError::new(
                GraphCode::Permission,
                "Permissions error: an object token cannot act on an app",
            ),
            _ => GraphError::new(
                GraphCode::UnknownPath,
                format!(
                    "Unsupported {} request. Object with ID '{app_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation",
                    request.method.as_str().to_ascii_lowercase()
                ),
            ),
        });
    }
    request.caller.require_app(app_id)?;
    Ok(app_id.clone())
}

/// `{"success":true}`.
pub(crate) fn success() -> Response {
    axum::Json(serde_json::json!({"success": true})).into_response()
}

/// Meta's error for a method an edge does not support.
pub(crate) fn unsupported(request: &GraphRequest) -> GraphError {
    GraphError::invalid(format!(
        "Unsupported {} request",
        request.method.as_str().to_ascii_lowercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_recognised() {
        assert!(is_version("v25.0"));
        assert!(is_version("v2.12"));
        assert!(!is_version("v25"));
        assert!(!is_version("25.0"));
        assert!(!is_version("v25.0.1"));
        assert!(!is_version("vx.0"));
    }

    #[test]
    fn path_segments_are_decoded() {
        assert_eq!(percent_decode("a%7Cb"), "a|b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
