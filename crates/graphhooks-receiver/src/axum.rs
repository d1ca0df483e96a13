//! The axum integration (feature `axum`): the [`Verified`] extractor, which refuses a request
//! whose signature does not verify with `401` before the handler runs; the [`handshake`] handler;
//! and [`endpoint`], both on one route.
//!
//! A complete receiver, with the verifier and the verify token in a [`WebhookState`]:
//!
//! ```no_run
//! use axum::Router;
//! use graphhooks_receiver::Verifier;
//! use graphhooks_receiver::axum::{VerifiedNotification, WebhookState, endpoint};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let state = WebhookState::new(Verifier::new("app secret"), "verify token");
//!     let app = Router::new().route(
//!         "/webhook",
//!         endpoint(state, |verified: VerifiedNotification| async move {
//!             for (entry, change) in verified.payload.changes() {
//!                 println!("{} {}: {}", entry.id, change.field, change.value);
//!             }
//!             "ok"
//!         }),
//!     );
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await
//! }
//! ```
//!
//! With state of your own, implement [`FromRef`] for [`Verifier`] (and [`VerifyToken`] for the
//! handshake) and take [`VerifiedNotification`] in any handler:
//!
//! ```
//! use axum::Router;
//! use axum::extract::FromRef;
//! use axum::routing::get;
//! use graphhooks_receiver::Verifier;
//! use graphhooks_receiver::axum::{VerifiedNotification, VerifyToken, handshake};
//!
//! #[derive(Clone)]
//! struct AppState {
//!     verifier: Verifier,
//!     verify_token: VerifyToken,
//! }
//!
//! impl FromRef<AppState> for Verifier {
//!     fn from_ref(state: &AppState) -> Verifier {
//!         state.verifier.clone()
//!     }
//! }
//!
//! impl FromRef<AppState> for VerifyToken {
//!     fn from_ref(state: &AppState) -> VerifyToken {
//!         state.verify_token.clone()
//!     }
//! }
//!
//! async fn notifications(verified: VerifiedNotification) -> &'static str {
//!     // Only reached when the signature verified.
//!     println!("delivery {:?}: {}", verified.delivery_id, verified.payload.object);
//!     "ok"
//! }
//!
//! let state = AppState {
//!     verifier: Verifier::new("app secret"),
//!     verify_token: VerifyToken::new("verify token"),
//! };
//! let app: Router = Router::new()
//!     .route("/webhook", get(handshake).post(notifications))
//!     .with_state(state);
//! ```

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use crate::{HandshakeError, Notification, Verifier, VerifyError, verify_handshake_uri};

/// `X-Graphhooks-Delivery`: the delivery id, stable across retries (de-duplicate on it).
pub const DELIVERY_HEADER: &str = "X-Graphhooks-Delivery";
/// `X-Graphhooks-Attempt`: 1 for the first attempt, then 2, 3, …
pub const ATTEMPT_HEADER: &str = "X-Graphhooks-Attempt";

/// A request body whose signature verified, parsed as `T`.
///
/// As an extractor it reads the raw body (up to [`Verifier::body_limit`]), verifies it with the
/// [`Verifier`] taken from the state ([`FromRef`]), and only then parses it. It answers for the
/// handler, which never runs, when:
///
/// - the signature is missing or wrong: `401` ([`VerifiedRejection::Signature`]); an unsigned
///   request is refused before its body is read;
/// - the body is larger than the limit: `413`;
/// - the body verified but is not a `T`: `400`.
///
/// ```
/// use axum::Router;
/// use axum::body::Body;
/// use axum::http::{Request, StatusCode};
/// use graphhooks_receiver::axum::VerifiedNotification;
/// use graphhooks_receiver::{Secret, Verifier};
/// use tower::ServiceExt;
///
/// async fn handler(verified: VerifiedNotification) -> String {
///     verified.payload.object
/// }
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let app = Router::new()
///     .route("/", axum::routing::post(handler))
///     .with_state(Verifier::new("test_app_secret"));
/// let body = r#"{"object":"user","entry":[]}"#;
/// let signed = |secret: &str| {
///     Request::post("/")
///         .header("x-hub-signature-256", Secret::new(secret).sign_sha256(body.as_bytes()))
///         .body(Body::from(body))
/// };
/// let response = app.clone().oneshot(signed("test_app_secret")?).await?;
/// assert_eq!(response.status(), StatusCode::OK);
/// let response = app.oneshot(signed("wrong secret")?).await?;
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Verified<T = Notification> {
    /// The parsed body.
    pub payload: T,
    /// The body exactly as received (what the signature covers).
    pub raw_body: Bytes,
    /// The `X-Graphhooks-Delivery` header: graphhooks' delivery id, the same on every retry of a
    /// notification, so de-duplicate on it. `None` from Meta, which sends no such header.
    pub delivery_id: Option<String>,
    /// The `X-Graphhooks-Attempt` header (1, 2, …), when present.
    pub attempt: Option<u32>,
}

/// [`Verified`] with the payload typed as a [`Notification`].
pub type VerifiedNotification = Verified<Notification>;

impl<S, T> FromRequest<S> for Verified<T>
where
    Verifier: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = VerifiedRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        let (parts, body) = request.into_parts();
        if !verifier.has_signature_header(&parts.headers) {
            return Err(VerifyError::MissingHeader(crate::SIGNATURE_256).into());
        }
        let limit = verifier.body_limit();
        let raw_body = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<LengthLimitError>() => {
                return Err(VerifiedRejection::BodyTooLarge { limit });
            }
            Err(error) => return Err(VerifiedRejection::BodyRead(error.to_string())),
        };
        verifier.verify(&parts.headers, &raw_body)?;
        let payload = serde_json::from_slice(&raw_body).map_err(VerifiedRejection::Payload)?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Verified {
            payload,
            delivery_id: header(DELIVERY_HEADER),
            attempt: header(ATTEMPT_HEADER).and_then(|text| text.parse().ok()),
            raw_body,
        })
    }
}

/// Why [`Verified`] refused a request; its response is the status below with the message as a
/// plain-text body (graphhooks shows the start of it in the delivery log).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifiedRejection {
    /// The signature did not verify: `401 Unauthorized`.
    #[error("{0}")]
    Signature(#[from] VerifyError),
    /// The body is larger than [`Verifier::body_limit`]: `413 Payload Too Large`.
    #[error("the body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body could not be read: `400 Bad Request`.
    #[error("reading the body: {0}")]
    BodyRead(String),
    /// The body verified but is not the expected JSON: `400 Bad Request`.
    #[error("the body is not a notification: {0}")]
    Payload(#[source] serde_json::Error),
}

impl VerifiedRejection {
    /// The HTTP status this rejection answers with.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use graphhooks_receiver::VerifyError;
    /// use graphhooks_receiver::axum::VerifiedRejection;
    ///
    /// let rejection = VerifiedRejection::from(VerifyError::SignatureMismatch);
    /// assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            VerifiedRejection::Signature(_) => StatusCode::UNAUTHORIZED,
            VerifiedRejection::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            VerifiedRejection::BodyRead(_) | VerifiedRejection::Payload(_) => {
                StatusCode::BAD_REQUEST
            }
        }
    }
}

impl IntoResponse for VerifiedRejection {
    fn into_response(self) -> Response {
        (self.status(), self.to_string()).into_response()
    }
}

/// The verify token the [`handshake`] handler expects. Its `Debug` prints `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyToken(Arc<str>);

impl VerifyToken {
    /// The token given as `verify_token` when subscribing.
    ///
    /// ```
    /// use graphhooks_receiver::axum::VerifyToken;
    ///
    /// let token = VerifyToken::new("verify-me");
    /// assert_eq!(token.expose(), "verify-me");
    /// assert_eq!(format!("{token:?}"), "VerifyToken([REDACTED])");
    /// ```
    pub fn new(token: impl Into<String>) -> VerifyToken {
        VerifyToken(Arc::from(token.into()))
    }

    /// The token's text.
    ///
    /// ```
    /// use graphhooks_receiver::axum::VerifyToken;
    ///
    /// assert_eq!(VerifyToken::new("t").expose(), "t");
    /// ```
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for VerifyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyToken([REDACTED])")
    }
}

/// The handshake `GET`: `200` with the `hub.challenge` as plain text when `hub.mode` is
/// `subscribe` and `hub.verify_token` is the [`VerifyToken`] from the state; `403` otherwise.
///
/// ```
/// use axum::Router;
/// use axum::body::Body;
/// use axum::http::{Request, StatusCode};
/// use axum::routing::get;
/// use graphhooks_receiver::axum::{VerifyToken, handshake};
/// use http_body_util::BodyExt;
/// use tower::ServiceExt;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let app = Router::new()
///     .route("/webhook", get(handshake))
///     .with_state(VerifyToken::new("verify-me"));
/// let uri = "/webhook?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verify-me";
/// let response = app.clone().oneshot(Request::get(uri).body(Body::empty())?).await?;
/// assert_eq!(response.status(), StatusCode::OK);
/// assert_eq!(response.into_body().collect().await?.to_bytes(), "1158201444");
///
/// let wrong = "/webhook?hub.mode=subscribe&hub.challenge=1&hub.verify_token=nope";
/// let response = app.oneshot(Request::get(wrong).body(Body::empty())?).await?;
/// assert_eq!(response.status(), StatusCode::FORBIDDEN);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn handshake(State(token): State<VerifyToken>, uri: Uri) -> Response {
    handshake_response(&uri, token.expose())
}

/// The handshake's response for a request URI, for handlers of your own.
///
/// ```
/// use axum::http::{StatusCode, Uri};
/// use graphhooks_receiver::axum::handshake_response;
///
/// let uri: Uri = "/?hub.mode=subscribe&hub.challenge=7&hub.verify_token=t".parse()?;
/// assert_eq!(handshake_response(&uri, "t").status(), StatusCode::OK);
/// assert_eq!(handshake_response(&uri, "x").status(), StatusCode::FORBIDDEN);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn handshake_response(uri: &Uri, verify_token: &str) -> Response {
    match verify_handshake_uri(uri, verify_token) {
        Ok(challenge) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )
            .into_response(),
        Err(error) => handshake_rejection(&error),
    }
}

/// `403` with the reason.
fn handshake_rejection(error: &HandshakeError) -> Response {
    (StatusCode::FORBIDDEN, error.to_string()).into_response()
}

/// What [`endpoint`] needs: the verifier for notifications and the token for the handshake.
#[derive(Debug, Clone)]
pub struct WebhookState {
    /// Checks notification signatures.
    pub verifier: Verifier,
    /// Answers the handshake.
    pub verify_token: VerifyToken,
}

impl WebhookState {
    /// A state from a verifier and the verify token.
    ///
    /// ```
    /// use graphhooks_receiver::Verifier;
    /// use graphhooks_receiver::axum::WebhookState;
    ///
    /// let state = WebhookState::new(Verifier::new("app secret"), "verify token");
    /// assert_eq!(state.verify_token.expose(), "verify token");
    /// ```
    pub fn new(verifier: Verifier, verify_token: impl Into<String>) -> WebhookState {
        WebhookState {
            verifier,
            verify_token: VerifyToken::new(verify_token),
        }
    }
}

impl FromRef<WebhookState> for Verifier {
    fn from_ref(state: &WebhookState) -> Verifier {
        state.verifier.clone()
    }
}

impl FromRef<WebhookState> for VerifyToken {
    fn from_ref(state: &WebhookState) -> VerifyToken {
        state.verify_token.clone()
    }
}

/// One route for a callback URL: `GET` answers the handshake, `POST` verifies the notification
/// and calls `on_notification` with it (whose answer is the response; answer `2xx` quickly, since
/// anything else is retried). Mount it with `Router::route("/your/path", endpoint(..))`.
///
/// ```
/// use axum::Router;
/// use axum::body::Body;
/// use axum::http::{Request, StatusCode};
/// use graphhooks_receiver::axum::{VerifiedNotification, WebhookState, endpoint};
/// use graphhooks_receiver::{Secret, Verifier};
/// use tower::ServiceExt;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
/// let state = WebhookState::new(Verifier::new("test_app_secret"), "verify-me");
/// let app: Router = Router::new().route(
///     "/webhook",
///     endpoint(state, move |verified: VerifiedNotification| {
///         let sender = sender.clone();
///         async move {
///             let _ = sender.send(verified.payload);
///             StatusCode::OK
///         }
///     }),
/// );
///
/// let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
/// let request = Request::post("/webhook")
///     .header("x-hub-signature-256", Secret::new("test_app_secret").sign_sha256(body))
///     .body(Body::from(&body[..]))?;
/// assert_eq!(app.oneshot(request).await?.status(), StatusCode::OK);
/// assert_eq!(received.recv().await.map(|n| n.object).as_deref(), Some("whatsapp_business_account"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn endpoint<S, H, F>(state: WebhookState, on_notification: H) -> MethodRouter<S>
where
    H: Fn(VerifiedNotification) -> F + Clone + Send + Sync + 'static,
    F: Future + Send + 'static,
    F::Output: IntoResponse,
    S: Clone + Send + Sync + 'static,
{
    let notifications = move |verified: VerifiedNotification| {
        let on_notification = on_notification.clone();
        async move { on_notification(verified).await.into_response() }
    };
    get(handshake).post(notifications).with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::post;
    use tower::ServiceExt;

    const SECRET: &str = "test_app_secret";
    const BODY: &[u8] = br#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"message":{"text":"caf\u00e9"}}]}]}"#;

    async fn echo(verified: VerifiedNotification) -> String {
        format!(
            "{} {:?} {:?} {}",
            verified.payload.object,
            verified.delivery_id,
            verified.attempt,
            verified.raw_body.len()
        )
    }

    fn app(verifier: Verifier) -> Router {
        Router::new().route("/", post(echo)).with_state(verifier)
    }

    async fn send(app: Router, headers: &[(&str, String)], body: Vec<u8>) -> (StatusCode, String) {
        let mut request = axum::http::Request::post("/");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = app
            .oneshot(request.body(Body::from(body)).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn signature(secret: &str, body: &[u8]) -> (&'static str, String) {
        ("x-hub-signature-256", Secret::new(secret).sign_sha256(body))
    }

    #[tokio::test]
    async fn a_verified_body_reaches_the_handler_with_its_delivery_headers() {
        let (status, text) = send(
            app(Verifier::new(SECRET)),
            &[
                signature(SECRET, BODY),
                ("x-graphhooks-delivery", "d-123".into()),
                ("x-graphhooks-attempt", "2".into()),
            ],
            BODY.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(text, format!("page Some(\"d-123\") Some(2) {}", BODY.len()));
    }

    #[tokio::test]
    async fn a_bad_or_missing_signature_is_401_before_the_handler() {
        let (status, text) = send(
            app(Verifier::new(SECRET)),
            &[signature("wrong", BODY)],
            BODY.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(text.contains("signature mismatch"), "{text}");

        let (status, text) = send(app(Verifier::new(SECRET)), &[], BODY.to_vec()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(text, "missing header X-Hub-Signature-256");
    }

    #[tokio::test]
    async fn a_reserialised_body_is_401() {
        let literal = String::from_utf8(BODY.to_vec())
            .expect("utf-8")
            .replace(r"\u00e9", "é");
        let (status, _) = send(
            app(Verifier::new(SECRET)),
            &[signature(SECRET, BODY)],
            literal.into_bytes(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn a_verified_body_that_is_not_a_notification_is_400() {
        let body = br#"{"hello":"world"}"#;
        let (status, text) = send(
            app(Verifier::new(SECRET)),
            &[signature(SECRET, body)],
            body.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.starts_with("the body is not a notification"), "{text}");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413() {
        let body = vec![b' '; 2048];
        let (status, _) = send(
            app(Verifier::new(SECRET).with_body_limit(1024)),
            &[signature(SECRET, &body)],
            body,
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_generic_payload_type_is_parsed_after_verification() {
        #[derive(serde::Deserialize)]
        struct Custom {
            object: String,
        }
        async fn custom(verified: Verified<Custom>) -> String {
            verified.payload.object
        }
        let app = Router::new()
            .route("/", post(custom))
            .with_state(Verifier::new(SECRET));
        let (status, text) = send(app, &[signature(SECRET, BODY)], BODY.to_vec()).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "page"));
    }

    #[tokio::test]
    async fn the_endpoint_answers_the_handshake_and_posts_on_one_route() {
        let state = WebhookState::new(Verifier::new(SECRET), "tok en");
        let app: Router = Router::new().route(
            "/hook",
            endpoint(state, |verified: VerifiedNotification| async move {
                verified.payload.entry.len().to_string()
            }),
        );
        let get = |uri: &str| {
            axum::http::Request::get(uri)
                .body(Body::empty())
                .expect("request")
        };
        let response = app
            .clone()
            .oneshot(get(
                "/hook?hub.mode=subscribe&hub.challenge=99&hub.verify_token=tok+en",
            ))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        let response = app
            .clone()
            .oneshot(get("/hook?hub.mode=subscribe&hub.challenge=99"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);

        let request = axum::http::Request::post("/hook")
            .header("x-hub-signature-256", Secret::new(SECRET).sign_sha256(BODY))
            .body(Body::from(BODY))
            .expect("request");
        let response = app.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
    }
}
