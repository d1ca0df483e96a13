//! The only place that turns failures into HTTP responses.
//!
//! Policy: the Graph-compatible API answers `{"error":{"message":"(#code) …","type","code",
//! "fbtrace_id"}}` ([`GraphError`]); the operator API answers `{"error":{"code":"snake_case",
//! "message"}}` ([`AdminError`]). Both take `From<StoreError>` and `From<CoreError>`. Internal
//! causes are logged here with the trace id and never returned to the caller.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use graphhooks_core::CoreError;
use graphhooks_store::StoreError;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde_json::json;

/// Graph error codes (SPEC §3), each with its HTTP status and error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphCode {
    /// 1: an unknown error (500).
    Unknown,
    /// 2: service temporarily unavailable (503).
    Unavailable,
    /// 4: rate limited (429).
    RateLimit,
    /// 100: invalid parameter (400).
    InvalidParameter,
    /// 100 on a node or path that does not exist (404).
    UnknownPath,
    /// 100 on a body over the limit (413).
    TooLarge,
    /// 190: missing or invalid access token (401).
    InvalidToken,
    /// 200: the token may not act on this node (403).
    Permission,
    /// 2200: the callback could not be reached or did not answer 200.
    VerificationTransport,
    /// 2201: the callback answered something other than the challenge.
    VerificationMismatch,
}

impl GraphCode {
    /// (code, HTTP status, error type)
    fn parts(self) -> (u32, StatusCode, &'static str) {
        use GraphCode::*;
        match self {
            Unknown => (1, StatusCode::INTERNAL_SERVER_ERROR, "OAuthException"),
            Unavailable => (2, StatusCode::SERVICE_UNAVAILABLE, "OAuthException"),
            RateLimit => (4, StatusCode::TOO_MANY_REQUESTS, "OAuthException"),
            InvalidParameter => (100, StatusCode::BAD_REQUEST, "OAuthException"),
            UnknownPath => (100, StatusCode::NOT_FOUND, "GraphMethodException"),
            TooLarge => (100, StatusCode::PAYLOAD_TOO_LARGE, "OAuthException"),
            InvalidToken => (190, StatusCode::UNAUTHORIZED, "OAuthException"),
            Permission => (200, StatusCode::FORBIDDEN, "OAuthException"),
            VerificationTransport => (2200, StatusCode::BAD_REQUEST, "OAuthException"),
            VerificationMismatch => (2201, StatusCode::BAD_REQUEST, "OAuthException"),
        }
    }

    /// The numeric code.
    pub fn code(self) -> u32 {
        self.parts().0
    }
}

/// An error of the Graph-compatible API.
#[derive(Debug)]
pub struct GraphError {
    /// Which error.
    pub code: GraphCode,
    /// The message without the `(#code)` prefix.
    pub message: String,
    /// An internal cause to log, never shown.
    pub cause: Option<String>,
    /// When the caller may call again (`Retry-After`), for rate-limited calls.
    pub retry_after: Option<std::time::Duration>,
}

impl GraphError {
    /// An error with a message.
    pub fn new(code: GraphCode, message: impl Into<String>) -> Self {
        GraphError {
            code,
            message: message.into(),
            cause: None,
            retry_after: None,
        }
    }

    /// Code 4: the caller made too many calls; it may call again after `wait`.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        GraphError {
            retry_after: Some(wait),
            ..GraphError::new(GraphCode::RateLimit, "Application request limit reached")
        }
    }

    /// Code 100.
    pub fn invalid(message: impl Into<String>) -> Self {
        GraphError::new(GraphCode::InvalidParameter, message)
    }
}

fn trace_id() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(11)
        .map(char::from)
        .collect()
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let (code, status, kind) = self.code.parts();
        let fbtrace_id = trace_id();
        match (&self.cause, self.code) {
            (Some(cause), GraphCode::Unavailable) => {
                tracing::warn!(fbtrace_id, error = %cause, "Graph API request failed: storage unavailable")
            }
            (Some(cause), _) => {
                tracing::error!(fbtrace_id, error = %cause, "Graph API request failed inside graphhooks")
            }
            (None, _) => {}
        }
        let body = json!({
            "error": {
                "message": format!("(#{code}) {}", self.message),
                "type": kind,
                "code": code,
                "fbtrace_id": fbtrace_id,
            }
        });
        let mut response = (status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up, so a client that waits that long gets through.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<CoreError> for GraphError {
    fn from(error: CoreError) -> Self {
        GraphError::invalid(error.to_string())
    }
}

impl From<StoreError> for GraphError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => {
                GraphError::new(GraphCode::UnknownPath, format!("{what} does not exist"))
            }
            StoreError::Conflict(message) => GraphError::invalid(message),
            StoreError::Unavailable(cause) => GraphError {
                code: GraphCode::Unavailable,
                message: "Service temporarily unavailable".into(),
                cause: Some(error_chain(&*cause)),
                retry_after: None,
            },
            other => GraphError {
                code: GraphCode::Unknown,
                message: "An unknown error occurred".into(),
                cause: Some(error_chain(&other)),
                retry_after: None,
            },
        }
    }
}

/// Operator error codes, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCode {
    /// 400: the body is not JSON or not the expected shape.
    InvalidJson,
    /// 400: a value is invalid.
    InvalidRequest,
    /// 400: an object type is not in the catalog.
    UnknownObjectType,
    /// 400: a field is not declared on its type.
    UnknownField,
    /// 401: missing or wrong admin token.
    Unauthorized,
    /// 404: no such thing.
    NotFound,
    /// 405: method not allowed.
    MethodNotAllowed,
    /// 409: it exists already.
    Conflict,
    /// 413: body over the limit.
    PayloadTooLarge,
    /// 500: a defect.
    Internal,
    /// 503: storage unavailable, retry.
    Unavailable,
}

impl AdminCode {
    fn parts(self) -> (&'static str, StatusCode) {
        use AdminCode::*;
        match self {
            InvalidJson => ("invalid_json", StatusCode::BAD_REQUEST),
            InvalidRequest => ("invalid_request", StatusCode::BAD_REQUEST),
            UnknownObjectType => ("unknown_object_type", StatusCode::BAD_REQUEST),
            UnknownField => ("unknown_field", StatusCode::BAD_REQUEST),
            Unauthorized => ("unauthorized", StatusCode::UNAUTHORIZED),
            NotFound => ("not_found", StatusCode::NOT_FOUND),
            MethodNotAllowed => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
            Conflict => ("conflict", StatusCode::CONFLICT),
            PayloadTooLarge => ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
            Unavailable => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
        }
    }
}

/// An error of the operator API.
#[derive(Debug)]
pub struct AdminError {
    /// Which error.
    pub code: AdminCode,
    /// What went wrong, for the caller.
    pub message: String,
    /// For batch calls, the index of the item that failed.
    pub index: Option<usize>,
    /// An internal cause to log, never shown.
    pub cause: Option<String>,
}

impl AdminError {
    /// An error with a message.
    pub fn new(code: AdminCode, message: impl Into<String>) -> Self {
        AdminError {
            code,
            message: message.into(),
            index: None,
            cause: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        AdminError::new(AdminCode::InvalidRequest, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        AdminError::new(AdminCode::NotFound, message)
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (code, status) = self.code.parts();
        match (&self.cause, self.code) {
            (Some(cause), AdminCode::Unavailable) => {
                tracing::warn!(error = %cause, "Operator API request failed: storage unavailable")
            }
            (Some(cause), _) => {
                tracing::error!(error = %cause, "Operator API request failed inside graphhooks")
            }
            (None, _) => {}
        }
        let mut error = json!({ "code": code, "message": self.message });
        if let (Some(index), Some(object)) = (self.index, error.as_object_mut()) {
            object.insert("index".into(), json!(index));
        }
        (status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<CoreError> for AdminError {
    fn from(error: CoreError) -> Self {
        let code = match &error {
            CoreError::UnknownObjectType(_) => AdminCode::UnknownObjectType,
            CoreError::UnknownField { .. } => AdminCode::UnknownField,
            _ => AdminCode::InvalidRequest,
        };
        AdminError::new(code, error.to_string())
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => AdminError::not_found(format!("{what} not found")),
            StoreError::Conflict(message) => AdminError::new(AdminCode::Conflict, message),
            StoreError::Unavailable(cause) => AdminError {
                cause: Some(error_chain(&*cause)),
                ..AdminError::new(
                    AdminCode::Unavailable,
                    "storage is unavailable; retry later",
                )
            },
            other => AdminError {
                cause: Some(error_chain(&other)),
                ..AdminError::new(AdminCode::Internal, "internal error; see the server log")
            },
        }
    }
}

/// An operator-API error met while serving the Graph API (logic both APIs share, such as
/// explain), in Graph's terms: the cause is kept for the log.
impl From<AdminError> for GraphError {
    fn from(error: AdminError) -> Self {
        use AdminCode::*;
        let code = match error.code {
            InvalidJson | InvalidRequest | UnknownObjectType | UnknownField | Conflict => {
                GraphCode::InvalidParameter
            }
            Unauthorized => GraphCode::InvalidToken,
            NotFound | MethodNotAllowed => GraphCode::UnknownPath,
            PayloadTooLarge => GraphCode::TooLarge,
            Internal => GraphCode::Unknown,
            Unavailable => GraphCode::Unavailable,
        };
        GraphError {
            code,
            message: error.message,
            cause: error.cause,
            retry_after: None,
        }
    }
}

/// An error and its sources, joined with ": ".
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_logic_keeps_storage_outages_retryable_on_the_graph_api() {
        let unavailable = AdminError {
            cause: Some("connection refused".into()),
            ..AdminError::new(
                AdminCode::Unavailable,
                "storage is unavailable; retry later",
            )
        };
        let graph = GraphError::from(unavailable);
        assert_eq!(graph.code.parts().0, 2);
        assert_eq!(graph.code.parts().1, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(graph.cause.as_deref(), Some("connection refused"));
        let missing = GraphError::from(AdminError::not_found("change 9 not found"));
        assert_eq!(missing.code.parts().0, 100);
        assert_eq!(missing.code.parts().1, StatusCode::NOT_FOUND);
    }
}
