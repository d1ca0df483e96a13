//! Request bodies with a size limit per API: 16 MiB on the operator API, 1 MiB on the Graph API
//! (SPEC §4a). A body over the limit is refused with 413 in that API's error shape, before it is
//! read whole, whenever `Content-Length` tells.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::{AdminCode, AdminError, GraphCode, GraphError};

/// Largest operator API body.
pub const ADMIN_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Largest Graph API body.
pub const GRAPH_BODY_LIMIT: usize = 1024 * 1024;

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Over the limit.
    TooLarge(usize),
    /// The connection failed while reading.
    Read(String),
}

/// Reads a body, refusing more than `limit` bytes.
pub async fn read_limited(
    request: Request,
    limit: usize,
) -> Result<(http::request::Parts, Bytes), BodyError> {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let bytes = axum::body::to_bytes(Body::new(body), limit)
        .await
        .map_err(|error| {
            let inner = error.into_inner();
            if inner
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
                || std::error::Error::source(&*inner).is_some_and(|s| {
                    s.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                })
            {
                BodyError::TooLarge(limit)
            } else {
                BodyError::Read(inner.to_string())
            }
        })?;
    Ok((parts, bytes))
}

impl From<BodyError> for AdminError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge(limit) => AdminError::new(
                AdminCode::PayloadTooLarge,
                format!(
                    "the request body is larger than {} MiB",
                    limit / (1024 * 1024)
                ),
            ),
            BodyError::Read(message) => {
                AdminError::invalid(format!("could not read the request body: {message}"))
            }
        }
    }
}

impl From<BodyError> for GraphError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge(limit) => GraphError::new(
                GraphCode::TooLarge,
                format!(
                    "The request body is larger than {} MiB",
                    limit / (1024 * 1024)
                ),
            ),
            BodyError::Read(message) => {
                GraphError::invalid(format!("Could not read the request body: {message}"))
            }
        }
    }
}

/// A JSON body of the operator API, parsed into `T` with the failing path named in errors.
#[derive(Debug)]
pub struct AdminJson<T>(pub T);

impl<S, T> FromRequest<S> for AdminJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AdminError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (_, bytes) = read_limited(request, ADMIN_BODY_LIMIT).await?;
        parse_json(&bytes).map(AdminJson)
    }
}

/// Parses JSON into `T`, naming the path of the first problem (`changes[3].id: …`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AdminError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AdminError::new(
            AdminCode::InvalidJson,
            "the request body is empty; send a JSON object",
        ));
    }
    // Tracking the path costs on every field, and bodies of change batches are large: parse
    // plainly first, and again with the path only to explain a failure.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = if path.is_empty() || path == "." {
            format!("invalid JSON body: {inner}")
        } else {
            format!("invalid JSON body at {path}: {inner}")
        };
        AdminError::new(AdminCode::InvalidJson, message)
    })?;
    deserializer.end().map_err(|error| {
        AdminError::new(
            AdminCode::InvalidJson,
            format!("invalid JSON body: {error}"),
        )
    })?;
    Ok(value)
}
