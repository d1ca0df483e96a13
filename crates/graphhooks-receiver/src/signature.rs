//! [`Verifier`]: constant-time checks of `X-Hub-Signature-256` (and, during a graphhooks secret
//! rotation, `X-Hub-Signature-256-Previous`; opt-in, the legacy SHA-1 `X-Hub-Signature`) over the
//! raw body, against one or several secrets. [`VerifyError`] says which check failed.

use std::sync::Arc;

use hmac::Mac;

use crate::Secret;

/// `X-Hub-Signature-256`: `sha256=<hex HMAC-SHA256(app secret, raw body)>`.
pub const SIGNATURE_256: &str = "X-Hub-Signature-256";
/// `X-Hub-Signature-256-Previous`: what graphhooks adds during a secret rotation's grace period,
/// signed with the **old** secret, so a receiver still configured with it keeps verifying.
pub const SIGNATURE_256_PREVIOUS: &str = "X-Hub-Signature-256-Previous";
/// `X-Hub-Signature`: the legacy `sha1=<hex HMAC-SHA1>` header, checked only with
/// [`Verifier::allow_sha1`].
pub const SIGNATURE_SHA1: &str = "X-Hub-Signature";

/// The largest body the framework integrations read by default: 4 MiB, above the 3 MB graphhooks
/// puts in one notification.
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Why a request's signature did not verify. Each check has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No signature header to check: `X-Hub-Signature-256` is absent (and, with SHA-1 allowed,
    /// so is `X-Hub-Signature`).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The header is not `<algorithm>=<hex digest>` of the right length.
    #[error("malformed {header} header: {reason}")]
    MalformedHeader {
        /// The header.
        header: &'static str,
        /// What is wrong with its value.
        reason: &'static str,
    },
    /// The header names an algorithm other than the one it should carry (`sha256` in
    /// `X-Hub-Signature-256`; `sha1` in `X-Hub-Signature`, and only when SHA-1 is allowed).
    #[error("unsupported signature algorithm `{algorithm}` in {header}")]
    UnsupportedAlgorithm {
        /// The header.
        header: &'static str,
        /// The algorithm it names (at most 16 characters of it).
        algorithm: String,
    },
    /// The header is well formed but no configured secret signed these bytes. Either the secret is
    /// wrong or the body is not the raw bytes that were sent (re-serialised JSON never verifies).
    #[error(
        "signature mismatch: no configured secret signed this body (check the secret, and verify \
         the raw bytes received, not re-serialised JSON)"
    )]
    SignatureMismatch,
}

/// Which HMAC a header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Sha256,
    Sha1,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha1 => "sha1",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha1 => 20,
        }
    }
}

/// Checks notification signatures against one or several app secrets.
///
/// A body verifies when **any** configured secret produced **any** of the SHA-256 signatures
/// present (`X-Hub-Signature-256`, and `X-Hub-Signature-256-Previous` during a graphhooks secret
/// rotation). To rotate without a gap, configure the new secret beside the old one, deploy, rotate,
/// then drop the old one. Every comparison is constant time (`hmac::Mac::verify_slice`).
///
/// **Verify the raw bytes.** Meta and graphhooks sign the exact bytes they send, in which every
/// non-ASCII character is escaped as `\uXXXX` and `/` is written `\/`. Parsing the JSON and
/// serialising it again changes those bytes, so it never verifies: hand [`Verifier::verify`] the
/// body as received, then parse it (for example with
/// [`Notification::from_slice`](crate::Notification::from_slice)).
///
/// **SHA-1.** The legacy `X-Hub-Signature: sha1=…` header is ignored unless
/// [`allow_sha1(true)`](Verifier::allow_sha1), and even then it is consulted only when the request
/// carries no SHA-256 header at all: when a SHA-256 signature is present it decides alone, so a
/// wrong SHA-256 signature is never rescued by the weaker one.
///
/// ```
/// use graphhooks_receiver::{Verifier, VerifyError};
/// use http::HeaderMap;
///
/// let verifier = Verifier::new("test_app_secret");
/// let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     "x-hub-signature-256",
///     "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756".parse()?,
/// );
/// assert_eq!(verifier.verify(&headers, body), Ok(()));
/// assert_eq!(verifier.verify(&headers, b"{}"), Err(VerifyError::SignatureMismatch));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    /// Shared, so the framework integrations can clone a verifier per request cheaply.
    secrets: Arc<Vec<Secret>>,
    allow_sha1: bool,
    body_limit: usize,
}

impl Verifier {
    /// A verifier with one secret. Add more with [`Verifier::with_secret`].
    ///
    /// ```
    /// use graphhooks_receiver::Verifier;
    ///
    /// let verifier = Verifier::new("test_app_secret");
    /// let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    /// let signature = "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756";
    /// assert!(verifier.verify_signature(signature, body).is_ok());
    /// ```
    pub fn new(secret: impl Into<Secret>) -> Verifier {
        Verifier {
            secrets: Arc::new(vec![secret.into()]),
            allow_sha1: false,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// A verifier with several secrets (a rotation in progress); `None` when `secrets` is empty,
    /// since a verifier without a secret could never accept anything.
    ///
    /// ```
    /// use graphhooks_receiver::{Secret, Verifier};
    ///
    /// let body = b"{}";
    /// let old = Secret::new("old-secret");
    /// let new = Secret::new("new-secret");
    /// let verifier = Verifier::from_secrets([old.clone(), new.clone()]).expect("two secrets");
    /// assert!(verifier.verify_signature(&old.sign_sha256(body), body).is_ok());
    /// assert!(verifier.verify_signature(&new.sign_sha256(body), body).is_ok());
    ///
    /// assert!(Verifier::from_secrets(Vec::<Secret>::new()).is_none());
    /// ```
    pub fn from_secrets<S: Into<Secret>>(secrets: impl IntoIterator<Item = S>) -> Option<Verifier> {
        let mut secrets = secrets.into_iter().map(Into::into);
        let first = secrets.next()?;
        Some(secrets.fold(Verifier::new(first), Verifier::with_secret))
    }

    /// Adds another accepted secret (a rotation in progress).
    ///
    /// ```
    /// use graphhooks_receiver::{Secret, Verifier};
    ///
    /// let verifier = Verifier::new("old-secret").with_secret("new-secret");
    /// let body = b"{}";
    /// let signature = Secret::new("new-secret").sign_sha256(body);
    /// assert!(verifier.verify_signature(&signature, body).is_ok());
    /// assert_eq!(verifier.secret_count(), 2);
    /// ```
    #[must_use]
    pub fn with_secret(mut self, secret: impl Into<Secret>) -> Verifier {
        Arc::make_mut(&mut self.secrets).push(secret.into());
        self
    }

    /// How many secrets this verifier accepts.
    ///
    /// ```
    /// use graphhooks_receiver::Verifier;
    ///
    /// assert_eq!(Verifier::new("a").secret_count(), 1);
    /// ```
    pub fn secret_count(&self) -> usize {
        self.secrets.len()
    }

    /// Accepts the legacy `X-Hub-Signature: sha1=<hex>` header when no SHA-256 header is present.
    /// Off by default: SHA-256 is what Meta and graphhooks always send.
    ///
    /// ```
    /// use graphhooks_receiver::{Verifier, VerifyError};
    /// use http::HeaderMap;
    ///
    /// let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-hub-signature", "sha1=fc5983fdf1a4e15c8949b8af05322fede4063d27".parse()?);
    ///
    /// let strict = Verifier::new("test_app_secret");
    /// assert_eq!(
    ///     strict.verify(&headers, body),
    ///     Err(VerifyError::MissingHeader("X-Hub-Signature-256")),
    /// );
    /// let lenient = strict.allow_sha1(true);
    /// assert_eq!(lenient.verify(&headers, body), Ok(()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn allow_sha1(mut self, allow: bool) -> Verifier {
        self.allow_sha1 = allow;
        self
    }

    /// Sets the largest body a framework integration (the axum extractor) reads before it gives
    /// up with 413; [`DEFAULT_BODY_LIMIT`] (4 MiB) unless set. The checks themselves take any
    /// length.
    ///
    /// ```
    /// use graphhooks_receiver::{DEFAULT_BODY_LIMIT, Verifier};
    ///
    /// assert_eq!(Verifier::new("s").body_limit(), DEFAULT_BODY_LIMIT);
    /// assert_eq!(Verifier::new("s").with_body_limit(1 << 20).body_limit(), 1 << 20);
    /// ```
    #[must_use]
    pub fn with_body_limit(mut self, bytes: usize) -> Verifier {
        self.body_limit = bytes;
        self
    }

    /// The largest body a framework integration reads (see [`Verifier::with_body_limit`]).
    ///
    /// ```
    /// use graphhooks_receiver::Verifier;
    ///
    /// assert_eq!(Verifier::new("s").body_limit(), 4 * 1024 * 1024);
    /// ```
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Verifies `raw_body` against the signature headers of an [`http::HeaderMap`].
    ///
    /// Header names are case-insensitive. Every value of `X-Hub-Signature-256` and
    /// `X-Hub-Signature-256-Previous` is a candidate; the body verifies when any configured secret
    /// matches any of them. See the type's documentation for SHA-1.
    ///
    /// ```
    /// use graphhooks_receiver::Verifier;
    /// use http::HeaderMap;
    ///
    /// // As sent: `é` escaped as \u00e9.
    /// let body = br#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"message":{"text":"caf\u00e9"}}]}]}"#;
    /// let mut headers = HeaderMap::new();
    /// headers.insert(
    ///     "X-Hub-Signature-256",
    ///     "sha256=8ea324510b660d6ef554d5d308904512e821a98a87728998ab5ac6ea92a37966".parse()?,
    /// );
    /// let verifier = Verifier::new("test_app_secret");
    /// assert!(verifier.verify(&headers, body).is_ok());
    ///
    /// // The same JSON with a literal `é` is different bytes, so it does not verify.
    /// let reserialised = r#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"message":{"text":"café"}}]}]}"#;
    /// assert!(verifier.verify(&headers, reserialised.as_bytes()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify(&self, headers: &http::HeaderMap, raw_body: &[u8]) -> Result<(), VerifyError> {
        self.verify_headers(
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
            raw_body,
        )
    }

    /// Verifies `raw_body` against headers given as `(name, value)` pairs, for frameworks that do
    /// not use [`http::HeaderMap`]. Names are compared case-insensitively; other headers are
    /// ignored. Same rules as [`Verifier::verify`].
    ///
    /// ```
    /// use graphhooks_receiver::{Secret, Verifier};
    ///
    /// let old = Secret::new("old-secret");
    /// let new = Secret::new("new-secret");
    /// let body = b"{\"object\":\"user\",\"entry\":[]}";
    /// // During a graphhooks rotation: the new secret's signature in the standard header, the old
    /// // one's in X-Hub-Signature-256-Previous. A receiver that still has only the old secret
    /// // verifies.
    /// let headers = [
    ///     ("Content-Type".to_owned(), "application/json".to_owned()),
    ///     ("X-Hub-Signature-256".to_owned(), new.sign_sha256(body)),
    ///     ("X-Hub-Signature-256-Previous".to_owned(), old.sign_sha256(body)),
    /// ];
    /// assert!(Verifier::new(old).verify_headers(&headers, body).is_ok());
    /// ```
    pub fn verify_headers<I, N, V>(&self, headers: I, raw_body: &[u8]) -> Result<(), VerifyError>
    where
        I: IntoIterator,
        I::Item: HeaderPair<N, V>,
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut sha256: Vec<(&'static str, Vec<u8>)> = Vec::new();
        let mut sha1: Vec<(&'static str, Vec<u8>)> = Vec::new();
        for pair in headers {
            let (name, value) = pair.into_pair();
            let name = name.as_ref();
            if name.eq_ignore_ascii_case(SIGNATURE_256) {
                sha256.push((SIGNATURE_256, value.as_ref().to_vec()));
            } else if name.eq_ignore_ascii_case(SIGNATURE_256_PREVIOUS) {
                sha256.push((SIGNATURE_256_PREVIOUS, value.as_ref().to_vec()));
            } else if name.eq_ignore_ascii_case(SIGNATURE_SHA1) {
                sha1.push((SIGNATURE_SHA1, value.as_ref().to_vec()));
            }
        }
        // The standard header first, so its error is the one reported when nothing verifies.
        sha256.sort_by_key(|(name, _)| *name != SIGNATURE_256);
        if !sha256.is_empty() {
            return self.check_candidates(Algorithm::Sha256, &sha256, raw_body);
        }
        if self.allow_sha1 && !sha1.is_empty() {
            return self.check_candidates(Algorithm::Sha1, &sha1, raw_body);
        }
        Err(VerifyError::MissingHeader(SIGNATURE_256))
    }

    /// Verifies `raw_body` against one header value, framework-free: `sha256=<hex>` (the value of
    /// `X-Hub-Signature-256` or `X-Hub-Signature-256-Previous`), or `sha1=<hex>` when
    /// [SHA-1 is allowed](Verifier::allow_sha1).
    ///
    /// ```
    /// use graphhooks_receiver::{Verifier, VerifyError};
    ///
    /// let verifier = Verifier::new("test_app_secret");
    /// let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    /// assert_eq!(
    ///     verifier.verify_signature(
    ///         "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756",
    ///         body,
    ///     ),
    ///     Ok(()),
    /// );
    /// assert!(matches!(
    ///     verifier.verify_signature("sha1=fc5983fdf1a4e15c8949b8af05322fede4063d27", body),
    ///     Err(VerifyError::UnsupportedAlgorithm { .. }),
    /// ));
    /// assert!(matches!(
    ///     verifier.verify_signature("dec6a680", body),
    ///     Err(VerifyError::MalformedHeader { .. }),
    /// ));
    /// ```
    pub fn verify_signature(&self, header_value: &str, raw_body: &[u8]) -> Result<(), VerifyError> {
        let algorithm = header_value
            .trim()
            .split_once('=')
            .map(|(algorithm, _)| algorithm);
        let (algorithm, header) = match algorithm {
            Some(name) if name.eq_ignore_ascii_case("sha1") && self.allow_sha1 => {
                (Algorithm::Sha1, SIGNATURE_SHA1)
            }
            _ => (Algorithm::Sha256, SIGNATURE_256),
        };
        let digest = parse(algorithm, header, header_value.as_bytes())?;
        if self.matches(algorithm, &digest, raw_body) {
            Ok(())
        } else {
            Err(VerifyError::SignatureMismatch)
        }
    }

    /// Whether `headers` carry a signature this verifier would look at, so an integration can
    /// refuse an unsigned request before reading its body.
    #[cfg_attr(
        not(feature = "axum"),
        expect(dead_code, reason = "used by the integrations")
    )]
    pub(crate) fn has_signature_header(&self, headers: &http::HeaderMap) -> bool {
        headers.contains_key(SIGNATURE_256)
            || headers.contains_key(SIGNATURE_256_PREVIOUS)
            || (self.allow_sha1 && headers.contains_key(SIGNATURE_SHA1))
    }

    /// Checks every candidate header of one algorithm. A well-formed signature that matches no
    /// secret makes the answer [`VerifyError::SignatureMismatch`]; otherwise the first parse
    /// error is reported.
    fn check_candidates(
        &self,
        algorithm: Algorithm,
        candidates: &[(&'static str, Vec<u8>)],
        raw_body: &[u8],
    ) -> Result<(), VerifyError> {
        let mut first_error = None;
        let mut mismatched = false;
        for (header, value) in candidates {
            match parse(algorithm, header, value) {
                Ok(digest) => {
                    if self.matches(algorithm, &digest, raw_body) {
                        return Ok(());
                    }
                    mismatched = true;
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) if !mismatched => Err(error),
            _ => Err(VerifyError::SignatureMismatch),
        }
    }

    /// Whether any secret produced `digest`, compared in constant time.
    fn matches(&self, algorithm: Algorithm, digest: &[u8], raw_body: &[u8]) -> bool {
        self.secrets.iter().any(|secret| match algorithm {
            Algorithm::Sha256 => secret.mac_sha256(raw_body).verify_slice(digest).is_ok(),
            Algorithm::Sha1 => secret.mac_sha1(raw_body).verify_slice(digest).is_ok(),
        })
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("secrets", &self.secrets)
            .field("allow_sha1", &self.allow_sha1)
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

/// A `(name, value)` header pair as [`Verifier::verify_headers`] takes it: implemented for tuples
/// and references to tuples, so both `[("name", "value")]` and `&Vec<(String, String)>` work.
pub trait HeaderPair<N, V> {
    /// The name and the value.
    ///
    /// ```
    /// use graphhooks_receiver::HeaderPair;
    ///
    /// let owned = ("X-Hub-Signature-256".to_owned(), "sha256=00".to_owned());
    /// let (name, value) = (&owned).into_pair();
    /// assert_eq!((name.as_str(), value.as_str()), ("X-Hub-Signature-256", "sha256=00"));
    /// assert_eq!(("a", "b").into_pair(), ("a", "b"));
    /// ```
    fn into_pair(self) -> (N, V);
}

impl<N, V> HeaderPair<N, V> for (N, V) {
    fn into_pair(self) -> (N, V) {
        self
    }
}

impl<'a, N, V> HeaderPair<&'a N, &'a V> for &'a (N, V) {
    fn into_pair(self) -> (&'a N, &'a V) {
        (&self.0, &self.1)
    }
}

/// Parses `<algorithm>=<hex>` from a header value into the digest bytes.
fn parse(algorithm: Algorithm, header: &'static str, value: &[u8]) -> Result<Vec<u8>, VerifyError> {
    let malformed = |reason| VerifyError::MalformedHeader { header, reason };
    let value = std::str::from_utf8(value)
        .map_err(|_| malformed("the value is not text"))?
        .trim();
    let Some((name, hex_digest)) = value.split_once('=') else {
        return Err(malformed("expected `<algorithm>=<hex digest>`"));
    };
    if !name.eq_ignore_ascii_case(algorithm.name()) {
        return Err(VerifyError::UnsupportedAlgorithm {
            header,
            algorithm: name.chars().take(16).collect(),
        });
    }
    if hex_digest.len() != algorithm.digest_len() * 2 {
        return Err(malformed(match algorithm {
            Algorithm::Sha256 => "expected 64 hex digits after `sha256=`",
            Algorithm::Sha1 => "expected 40 hex digits after `sha1=`",
        }));
    }
    hex::decode(hex_digest).map_err(|_| malformed("the digest is not hexadecimal"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    const SECRET: &str = "test_app_secret";
    const EMPTY_WABA: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    const EMPTY_WABA_256: &str =
        "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756";
    const EMPTY_WABA_SHA1: &str = "sha1=fc5983fdf1a4e15c8949b8af05322fede4063d27";
    const CAFE_ESCAPED: &[u8] = br#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"message":{"text":"caf\u00e9"}}]}]}"#;
    const CAFE_LITERAL: &str = r#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"message":{"text":"café"}}]}]}"#;
    const CAFE_256: &str =
        "sha256=8ea324510b660d6ef554d5d308904512e821a98a87728998ab5ac6ea92a37966";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("a header value"));
        }
        map
    }

    #[test]
    fn the_spec_vectors_verify() {
        let verifier = Verifier::new(SECRET);
        assert_eq!(
            verifier.verify(
                &headers(&[("x-hub-signature-256", EMPTY_WABA_256)]),
                EMPTY_WABA
            ),
            Ok(())
        );
        assert_eq!(verifier.verify_signature(CAFE_256, CAFE_ESCAPED), Ok(()));
        assert_eq!(
            verifier.allow_sha1(true).verify(
                &headers(&[("x-hub-signature", EMPTY_WABA_SHA1)]),
                EMPTY_WABA
            ),
            Ok(())
        );
    }

    #[test]
    fn the_same_json_with_a_literal_e_acute_does_not_verify() {
        let verifier = Verifier::new(SECRET);
        assert_eq!(
            verifier.verify_signature(CAFE_256, CAFE_LITERAL.as_bytes()),
            Err(VerifyError::SignatureMismatch)
        );
        // Both parse to the same JSON: only the bytes differ.
        let escaped: serde_json::Value = serde_json::from_slice(CAFE_ESCAPED).expect("json");
        let literal: serde_json::Value = serde_json::from_str(CAFE_LITERAL).expect("json");
        assert_eq!(escaped, literal);
        // Re-serialising the parsed body does not give the bytes that were signed.
        let reserialised = serde_json::to_vec(&escaped).expect("json");
        assert_ne!(reserialised, CAFE_ESCAPED);
        assert_eq!(
            verifier.verify_signature(CAFE_256, &reserialised),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn header_names_are_case_insensitive_in_the_pair_form() {
        let verifier = Verifier::new(SECRET);
        for name in [
            "X-Hub-Signature-256",
            "x-hub-signature-256",
            "X-HUB-SIGNATURE-256",
        ] {
            assert_eq!(
                verifier.verify_headers([(name, EMPTY_WABA_256)], EMPTY_WABA),
                Ok(()),
                "{name}"
            );
        }
    }

    #[test]
    fn a_wrong_secret_is_a_mismatch() {
        let verifier = Verifier::new("another secret");
        assert_eq!(
            verifier.verify(
                &headers(&[("x-hub-signature-256", EMPTY_WABA_256)]),
                EMPTY_WABA
            ),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn any_of_several_secrets_verifies() {
        let verifier = Verifier::from_secrets(["first", SECRET, "third"]).expect("secrets");
        assert_eq!(
            verifier.verify_signature(EMPTY_WABA_256, EMPTY_WABA),
            Ok(())
        );
        let verifier = Verifier::from_secrets(["first", "third"]).expect("secrets");
        assert_eq!(
            verifier.verify_signature(EMPTY_WABA_256, EMPTY_WABA),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn the_previous_header_verifies_a_receiver_that_has_only_the_old_secret() {
        let new = Secret::new("the new secret");
        let map = headers(&[
            ("x-hub-signature-256", &new.sign_sha256(EMPTY_WABA)),
            ("x-hub-signature-256-previous", EMPTY_WABA_256),
        ]);
        assert_eq!(Verifier::new(SECRET).verify(&map, EMPTY_WABA), Ok(()));
        assert_eq!(Verifier::new(new).verify(&map, EMPTY_WABA), Ok(()));
        assert_eq!(
            Verifier::new("neither").verify(&map, EMPTY_WABA),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn a_repeated_signature_header_is_tried_value_by_value() {
        let map = headers(&[
            ("x-hub-signature-256", "sha256=00"),
            ("x-hub-signature-256", EMPTY_WABA_256),
        ]);
        assert_eq!(Verifier::new(SECRET).verify(&map, EMPTY_WABA), Ok(()));
    }

    #[test]
    fn no_header_is_missing_header() {
        assert_eq!(
            Verifier::new(SECRET).verify(&HeaderMap::new(), EMPTY_WABA),
            Err(VerifyError::MissingHeader(SIGNATURE_256))
        );
        assert_eq!(
            Verifier::new(SECRET)
                .allow_sha1(true)
                .verify(&HeaderMap::new(), EMPTY_WABA),
            Err(VerifyError::MissingHeader(SIGNATURE_256))
        );
    }

    #[test]
    fn sha1_alone_is_ignored_unless_allowed() {
        let map = headers(&[("x-hub-signature", EMPTY_WABA_SHA1)]);
        assert_eq!(
            Verifier::new(SECRET).verify(&map, EMPTY_WABA),
            Err(VerifyError::MissingHeader(SIGNATURE_256))
        );
        assert_eq!(
            Verifier::new(SECRET)
                .allow_sha1(true)
                .verify(&map, EMPTY_WABA),
            Ok(())
        );
    }

    #[test]
    fn a_present_sha256_header_decides_even_when_sha1_would_verify() {
        let map = headers(&[
            (
                "x-hub-signature-256",
                &Secret::new("x").sign_sha256(EMPTY_WABA),
            ),
            ("x-hub-signature", EMPTY_WABA_SHA1),
        ]);
        assert_eq!(
            Verifier::new(SECRET)
                .allow_sha1(true)
                .verify(&map, EMPTY_WABA),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn malformed_values_say_what_is_wrong() {
        let verifier = Verifier::new(SECRET);
        for value in [
            "dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756",
            "sha256=",
            "sha256=dec6",
            "sha256=zzc6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756",
        ] {
            assert!(
                matches!(
                    verifier.verify(&headers(&[("x-hub-signature-256", value)]), EMPTY_WABA),
                    Err(VerifyError::MalformedHeader {
                        header: SIGNATURE_256,
                        ..
                    })
                ),
                "{value}"
            );
        }
        let mut map = HeaderMap::new();
        map.insert(
            "x-hub-signature-256",
            http::HeaderValue::from_bytes(b"sha256=\xff").expect("opaque bytes are allowed"),
        );
        assert!(matches!(
            verifier.verify(&map, EMPTY_WABA),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }

    #[test]
    fn a_foreign_algorithm_is_unsupported() {
        let verifier = Verifier::new(SECRET);
        assert_eq!(
            verifier.verify(
                &headers(&[("x-hub-signature-256", EMPTY_WABA_SHA1)]),
                EMPTY_WABA
            ),
            Err(VerifyError::UnsupportedAlgorithm {
                header: SIGNATURE_256,
                algorithm: "sha1".into()
            })
        );
        assert_eq!(
            verifier.verify_signature("md5=abc", EMPTY_WABA),
            Err(VerifyError::UnsupportedAlgorithm {
                header: SIGNATURE_256,
                algorithm: "md5".into()
            })
        );
        assert_eq!(
            verifier
                .allow_sha1(true)
                .verify_signature(EMPTY_WABA_SHA1, EMPTY_WABA),
            Ok(())
        );
    }

    #[test]
    fn uppercase_hex_and_surrounding_whitespace_are_accepted() {
        let value = format!(
            " {} ",
            EMPTY_WABA_256
                .to_uppercase()
                .replacen("SHA256", "sha256", 1)
        );
        assert_eq!(
            Verifier::new(SECRET).verify_signature(&value, EMPTY_WABA),
            Ok(())
        );
    }

    #[test]
    fn a_mismatch_wins_over_a_malformed_second_header() {
        let map = headers(&[
            (
                "x-hub-signature-256",
                &Secret::new("x").sign_sha256(EMPTY_WABA),
            ),
            ("x-hub-signature-256-previous", "garbage"),
        ]);
        assert_eq!(
            Verifier::new(SECRET).verify(&map, EMPTY_WABA),
            Err(VerifyError::SignatureMismatch)
        );
        let map = headers(&[("x-hub-signature-256", "garbage")]);
        assert!(matches!(
            Verifier::new(SECRET).verify(&map, EMPTY_WABA),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }

    #[test]
    fn debug_redacts_every_secret() {
        let printed = format!(
            "{:?}",
            Verifier::new("aaaa-secret").with_secret("bbbb-secret")
        );
        assert!(
            !printed.contains("aaaa") && !printed.contains("bbbb"),
            "{printed}"
        );
    }
}
