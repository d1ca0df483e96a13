//! [`Secret`]: an app secret (the HMAC key of `X-Hub-Signature-256`) that never prints itself,
//! and the signing helpers receivers use in their own tests.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// An app secret: the key Meta and graphhooks sign notifications with.
///
/// The key is the secret's **bytes as written** (Meta's app secrets are 32 hex characters, and the
/// HMAC key is those 32 ASCII characters, not the 16 bytes they spell). Its `Debug` prints
/// `[REDACTED]`, so a secret can sit in a configuration struct that is logged.
///
/// ```
/// use graphhooks_receiver::Secret;
///
/// let secret = Secret::new("test_app_secret");
/// assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
/// assert_eq!(secret.expose(), b"test_app_secret");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from its bytes (a `&str`, `String`, `&[u8]` or `Vec<u8>`).
    ///
    /// ```
    /// use graphhooks_receiver::Secret;
    ///
    /// let from_text = Secret::new("test_app_secret");
    /// let from_bytes = Secret::new(b"test_app_secret".to_vec());
    /// assert_eq!(from_text, from_bytes);
    /// ```
    pub fn new(secret: impl Into<Vec<u8>>) -> Secret {
        Secret(secret.into())
    }

    /// The key bytes. Handle with care: this is the only way the secret leaves the type.
    ///
    /// ```
    /// use graphhooks_receiver::Secret;
    ///
    /// assert_eq!(Secret::new("k").expose(), b"k");
    /// ```
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The `X-Hub-Signature-256` value for `body`: `sha256=<lowercase hex HMAC-SHA256>`.
    ///
    /// For tests of a receiver: sign a body the way graphhooks and Meta do, then send it.
    ///
    /// ```
    /// use graphhooks_receiver::Secret;
    ///
    /// let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    /// assert_eq!(
    ///     Secret::new("test_app_secret").sign_sha256(body),
    ///     "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756",
    /// );
    /// ```
    pub fn sign_sha256(&self, body: &[u8]) -> String {
        format!(
            "sha256={}",
            hex::encode(self.mac_sha256(body).finalize().into_bytes())
        )
    }

    /// The legacy `X-Hub-Signature` value for `body`: `sha1=<lowercase hex HMAC-SHA1>`.
    ///
    /// ```
    /// use graphhooks_receiver::Secret;
    ///
    /// let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    /// assert_eq!(
    ///     Secret::new("test_app_secret").sign_sha1(body),
    ///     "sha1=fc5983fdf1a4e15c8949b8af05322fede4063d27",
    /// );
    /// ```
    pub fn sign_sha1(&self, body: &[u8]) -> String {
        format!(
            "sha1={}",
            hex::encode(self.mac_sha1(body).finalize().into_bytes())
        )
    }

    /// HMAC-SHA256 of `body`, ready to finalise or verify.
    pub(crate) fn mac_sha256(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body);
        mac
    }

    /// HMAC-SHA1 of `body`, ready to finalise or verify.
    pub(crate) fn mac_sha1(&self, body: &[u8]) -> Hmac<Sha1> {
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body);
        mac
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Secret {
        Secret::new(secret)
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Secret {
        Secret::new(secret)
    }
}

impl From<&String> for Secret {
    fn from(secret: &String) -> Secret {
        Secret::new(secret.as_str())
    }
}

impl From<&[u8]> for Secret {
    fn from(secret: &[u8]) -> Secret {
        Secret::new(secret)
    }
}

impl From<Vec<u8>> for Secret {
    fn from(secret: Vec<u8>) -> Secret {
        Secret::new(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_WABA: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

    #[test]
    fn debug_never_shows_the_key() {
        let secret = Secret::new("super-secret-value");
        let printed = format!("{secret:?} {:?}", vec![secret.clone()]);
        assert!(!printed.contains("super"), "{printed}");
        assert!(printed.contains("[REDACTED]"));
    }

    #[test]
    fn signs_the_spec_test_vectors() {
        let secret = Secret::from("test_app_secret");
        assert_eq!(
            secret.sign_sha256(EMPTY_WABA),
            "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756"
        );
        assert_eq!(
            secret.sign_sha1(EMPTY_WABA),
            "sha1=fc5983fdf1a4e15c8949b8af05322fede4063d27"
        );
    }

    #[test]
    fn the_key_is_the_text_not_the_hex_it_spells() {
        let hex_text = "00112233445566778899aabbccddeeff";
        let as_text = Secret::from(hex_text);
        let as_decoded = Secret::new(hex::decode(hex_text).expect("hex"));
        assert_ne!(as_text.sign_sha256(b"x"), as_decoded.sign_sha256(b"x"));
        assert_eq!(as_text.expose().len(), 32);
    }
}
