//! Receive webhooks from [graphhooks](https://github.com/graphhooks/graphhooks) or from Meta's
//! Graph API Webhooks (Facebook, Messenger, Instagram, WhatsApp): answer the verification
//! handshake, verify signatures in constant time over the raw body, with several secrets during a
//! rotation, and parse the payload into typed structs.
//!
//! - [`verify_handshake`]: the `GET ?hub.mode=subscribe&hub.challenge=…&hub.verify_token=…`
//!   check; it returns the challenge to echo.
//! - [`Verifier`]: `X-Hub-Signature-256` (and graphhooks' `X-Hub-Signature-256-Previous` during a
//!   secret rotation; opt-in, the legacy SHA-1 `X-Hub-Signature`) against one or more
//!   [`Secret`]s. One [`VerifyError`] variant per failure.
//! - [`Notification`], [`Entry`], [`Change`], [`MessagingEvent`]: the payload.
//! - `axum` (the module and the feature): an extractor that answers `401` before your handler runs, and a
//!   handshake handler. The default build depends on neither axum nor tokio.
//!
//! # Verify the raw bytes
//!
//! The signature covers the exact bytes sent, in which every non-ASCII character is escaped as
//! `\uXXXX` and `/` is written `\/`. Parse-then-serialise produces different bytes (`é` instead
//! of `\u00e9`) and never verifies, so verify the body **as received**, then parse it.
//!
//! # Example
//!
//! A framework-free receiver: one function from a request to a status and a body.
//!
//! ```
//! use graphhooks_receiver::{Notification, Secret, Verifier, verify_handshake_uri};
//! use http::{HeaderMap, Method, StatusCode, Uri};
//!
//! const VERIFY_TOKEN: &str = "verify-me";
//!
//! fn receive(
//!     verifier: &Verifier,
//!     method: &Method,
//!     uri: &Uri,
//!     headers: &HeaderMap,
//!     raw_body: &[u8],
//! ) -> (StatusCode, String) {
//!     if method == Method::GET {
//!         // The handshake: echo the challenge when the token is ours.
//!         return match verify_handshake_uri(uri, VERIFY_TOKEN) {
//!             Ok(challenge) => (StatusCode::OK, challenge),
//!             Err(error) => (StatusCode::FORBIDDEN, error.to_string()),
//!         };
//!     }
//!     // A notification: verify the raw bytes first, then parse them.
//!     if let Err(error) = verifier.verify(headers, raw_body) {
//!         return (StatusCode::UNAUTHORIZED, error.to_string());
//!     }
//!     let Ok(notification) = Notification::from_slice(raw_body) else {
//!         return (StatusCode::BAD_REQUEST, "not a notification".into());
//!     };
//!     for (entry, change) in notification.changes() {
//!         println!("{} {} changed {}: {}", notification.object, entry.id, change.field, change.value);
//!     }
//!     (StatusCode::OK, "ok".into())
//! }
//!
//! // During a rotation, accept both the old and the new secret.
//! let verifier = Verifier::new("test_app_secret").with_secret("the-new-secret");
//!
//! // The handshake.
//! let uri: Uri = "/webhook?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verify-me"
//!     .parse()?;
//! let answer = receive(&verifier, &Method::GET, &uri, &HeaderMap::new(), b"");
//! assert_eq!(answer, (StatusCode::OK, "1158201444".to_owned()));
//!
//! // A notification exactly as sent (the test vector of the graphhooks spec, §2.2).
//! let body = br#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"message":{"text":"caf\u00e9"}}]}]}"#;
//! let mut headers = HeaderMap::new();
//! headers.insert(
//!     "X-Hub-Signature-256",
//!     "sha256=8ea324510b660d6ef554d5d308904512e821a98a87728998ab5ac6ea92a37966".parse()?,
//! );
//! let uri: Uri = "/webhook".parse()?;
//! assert_eq!(receive(&verifier, &Method::POST, &uri, &headers, body).0, StatusCode::OK);
//!
//! // The same JSON re-serialised with a literal `é` is other bytes: refused.
//! let reserialised = r#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"message":{"text":"café"}}]}]}"#;
//! let answer = receive(&verifier, &Method::POST, &uri, &headers, reserialised.as_bytes());
//! assert_eq!(answer.0, StatusCode::UNAUTHORIZED);
//!
//! // Signed with an unknown secret: refused.
//! headers.insert("X-Hub-Signature-256", Secret::new("not ours").sign_sha256(body).parse()?);
//! assert_eq!(receive(&verifier, &Method::POST, &uri, &headers, body).0, StatusCode::UNAUTHORIZED);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With the `axum` feature, `graphhooks_receiver::axum::endpoint` does the same on one route; the crate's
//! `examples/receiver.rs` is a complete receiver program built on it.
//!
//! # Layout
//! - `secret`: [`Secret`] and the signing helpers for your tests.
//! - `signature`: [`Verifier`], [`VerifyError`], the header names.
//! - `handshake`: [`verify_handshake`], [`HandshakeError`].
//! - `payload`: [`Notification`] and the types inside it.
//! - `axum`: the axum integration (only with the feature `axum`).

#![deny(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
mod handshake;
mod payload;
mod secret;
mod signature;

pub use handshake::{HandshakeError, verify_handshake, verify_handshake_uri};
pub use payload::{Change, Entry, MessagingEvent, Notification, Participant};
pub use secret::Secret;
pub use signature::{
    DEFAULT_BODY_LIMIT, HeaderPair, SIGNATURE_256, SIGNATURE_256_PREVIOUS, SIGNATURE_SHA1,
    Verifier, VerifyError,
};
