//! The verification handshake: `GET <callback>?hub.mode=subscribe&hub.challenge=N
//! &hub.verify_token=T`, which a receiver answers with `200` and exactly `N` when `T` is its verify
//! token. [`verify_handshake`] checks the query and hands back the challenge to echo.

use sha2::{Digest, Sha256};

/// Why a handshake request is refused (a receiver answers `403`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A `hub.*` parameter is absent.
    #[error("missing query parameter {0}")]
    MissingParameter(&'static str),
    /// `hub.mode` is not `subscribe`.
    #[error("hub.mode is `{0}`, not `subscribe`")]
    UnexpectedMode(String),
    /// `hub.verify_token` is not the expected token.
    #[error("hub.verify_token does not match")]
    TokenMismatch,
}

/// Checks a handshake's query string (with or without the leading `?`) and returns the
/// `hub.challenge` to answer with, percent-decoded.
///
/// The token comparison is constant time (both sides are hashed, then compared byte by byte
/// without an early exit), so it reveals neither the token nor its length.
///
/// ```
/// use graphhooks_receiver::{HandshakeError, verify_handshake};
///
/// let query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock";
/// assert_eq!(verify_handshake(query, "meatyhamhock"), Ok("1158201444".to_owned()));
/// assert_eq!(verify_handshake(query, "other"), Err(HandshakeError::TokenMismatch));
/// assert_eq!(
///     verify_handshake("hub.challenge=1", "t"),
///     Err(HandshakeError::MissingParameter("hub.mode")),
/// );
/// ```
pub fn verify_handshake(query: &str, verify_token: &str) -> Result<String, HandshakeError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let (mut mode, mut token, mut challenge) = (None, None, None);
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        // The first occurrence counts, as in most query parsers.
        let slot = match name.as_ref() {
            "hub.mode" => &mut mode,
            "hub.verify_token" => &mut token,
            "hub.challenge" => &mut challenge,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.into_owned());
        }
    }
    let mode = mode.ok_or(HandshakeError::MissingParameter("hub.mode"))?;
    if mode != "subscribe" {
        return Err(HandshakeError::UnexpectedMode(
            mode.chars().take(32).collect(),
        ));
    }
    let token = token.ok_or(HandshakeError::MissingParameter("hub.verify_token"))?;
    if !constant_time_eq(token.as_bytes(), verify_token.as_bytes()) {
        return Err(HandshakeError::TokenMismatch);
    }
    challenge.ok_or(HandshakeError::MissingParameter("hub.challenge"))
}

/// [`verify_handshake`] on a request URI (its query; no query means every parameter is missing).
///
/// ```
/// use graphhooks_receiver::verify_handshake_uri;
///
/// let uri: http::Uri =
///     "/webhook?hub.mode=subscribe&hub.challenge=42&hub.verify_token=s%2Fecret%20token".parse()?;
/// assert_eq!(verify_handshake_uri(&uri, "s/ecret token"), Ok("42".to_owned()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_handshake_uri(uri: &http::Uri, verify_token: &str) -> Result<String, HandshakeError> {
    verify_handshake(uri.query().unwrap_or(""), verify_token)
}

/// Equality that takes the same time whatever the inputs: SHA-256 of each (so lengths do not
/// show), then an XOR fold over the fixed-length digests.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_handshake_returns_the_challenge() {
        assert_eq!(
            verify_handshake(
                "?hub.mode=subscribe&hub.challenge=987654321&hub.verify_token=verify-me",
                "verify-me"
            ),
            Ok("987654321".to_owned())
        );
    }

    #[test]
    fn parameters_may_come_in_any_order_among_others() {
        assert_eq!(
            verify_handshake(
                "app=1&hub.verify_token=t&x=y&hub.challenge=5&hub.mode=subscribe",
                "t"
            ),
            Ok("5".to_owned())
        );
    }

    #[test]
    fn the_token_is_percent_decoded_and_plus_is_a_space() {
        // What graphhooks' form_urlencoded serialiser sends for "a b+c/d".
        assert_eq!(
            verify_handshake(
                "hub.mode=subscribe&hub.challenge=1&hub.verify_token=a+b%2Bc%2Fd",
                "a b+c/d"
            ),
            Ok("1".to_owned())
        );
    }

    #[test]
    fn a_wrong_or_missing_token_is_refused() {
        let base = "hub.mode=subscribe&hub.challenge=1";
        assert_eq!(
            verify_handshake(&format!("{base}&hub.verify_token=nope"), "t"),
            Err(HandshakeError::TokenMismatch)
        );
        assert_eq!(
            verify_handshake(&format!("{base}&hub.verify_token="), "t"),
            Err(HandshakeError::TokenMismatch)
        );
        assert_eq!(
            verify_handshake(base, "t"),
            Err(HandshakeError::MissingParameter("hub.verify_token"))
        );
    }

    #[test]
    fn another_mode_is_refused() {
        assert_eq!(
            verify_handshake(
                "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=t",
                "t"
            ),
            Err(HandshakeError::UnexpectedMode("unsubscribe".into()))
        );
    }

    #[test]
    fn a_missing_challenge_is_refused_after_the_token_check() {
        assert_eq!(
            verify_handshake("hub.mode=subscribe&hub.verify_token=t", "t"),
            Err(HandshakeError::MissingParameter("hub.challenge"))
        );
        assert_eq!(
            verify_handshake("hub.mode=subscribe&hub.verify_token=x", "t"),
            Err(HandshakeError::TokenMismatch)
        );
    }

    #[test]
    fn a_uri_without_a_query_is_missing_everything() {
        let uri: http::Uri = "/webhook".parse().expect("uri");
        assert_eq!(
            verify_handshake_uri(&uri, "t"),
            Err(HandshakeError::MissingParameter("hub.mode"))
        );
    }

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
