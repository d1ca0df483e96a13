//! Signatures over the exact bytes sent: Meta's `X-Hub-Signature-256` / `X-Hub-Signature`, the
//! Graph API's `appsecret_proof`, and Standard Webhooks' `webhook-signature`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;

fn keyed<M: Mac + hmac::digest::KeyInit>(key: &[u8]) -> M {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    match <M as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    sign_parts(keyed::<HmacSha256>(key), parts)
}

fn sign_parts(mut mac: HmacSha256, parts: &[&[u8]]) -> [u8; 32] {
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// An app secret made ready to sign notifications: HMAC first hashes the key's inner and outer
/// pad blocks, one compression each for SHA-256 and for SHA-1, and a notification of a few
/// hundred bytes takes only about five more. That work is done once here and the keyed states
/// are copied for every signature. `Debug` leaves the key out.
#[derive(Clone)]
pub struct SigningKey {
    sha256: HmacSha256,
    sha1: HmacSha1,
}

impl SigningKey {
    /// Prepares `secret` (its UTF-8 bytes are the HMAC key, as for the free functions).
    pub fn new(secret: &str) -> SigningKey {
        SigningKey {
            sha256: keyed(secret.as_bytes()),
            sha1: keyed(secret.as_bytes()),
        }
    }

    /// `sha256=<hex>`: the value of `X-Hub-Signature-256` (as [`hub_signature_256`]).
    pub fn hub_signature_256(&self, body: &[u8]) -> String {
        sha256_header(self.sha256.clone(), body)
    }

    /// `sha1=<hex>`: the value of `X-Hub-Signature` (as [`hub_signature_1`]).
    pub fn hub_signature_1(&self, body: &[u8]) -> String {
        sha1_header(self.sha1.clone(), body)
    }

    /// `v1,<base64>`: the Standard Webhooks signature (as [`standard_webhooks_signature`]).
    pub fn standard_webhooks_signature(
        &self,
        message_id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> String {
        standard_webhooks_with(self.sha256.clone(), message_id, timestamp, body)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([REDACTED])")
    }
}

/// `prefix` then the lower-case hex of `digest`, in one allocation (this runs twice per
/// attempt, and `hex::encode` builds its string a `char` at a time).
fn prefixed_hex(prefix: &str, digest: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(prefix.len() + 2 * digest.len());
    out.push_str(prefix);
    for byte in digest {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn sha256_header(mac: HmacSha256, body: &[u8]) -> String {
    prefixed_hex("sha256=", &sign_parts(mac, &[body]))
}

fn sha1_header(mut mac: HmacSha1, body: &[u8]) -> String {
    mac.update(body);
    prefixed_hex("sha1=", &mac.finalize().into_bytes())
}

/// `sha256=<hex>`: the value of `X-Hub-Signature-256`.
pub fn hub_signature_256(secret: &str, body: &[u8]) -> String {
    sha256_header(keyed(secret.as_bytes()), body)
}

/// `sha1=<hex>`: the value of the legacy `X-Hub-Signature`.
pub fn hub_signature_1(secret: &str, body: &[u8]) -> String {
    sha1_header(keyed(secret.as_bytes()), body)
}

/// The Graph API's `appsecret_proof`: hex HMAC-SHA256 of the access token keyed by the secret.
pub fn appsecret_proof(secret: &str, access_token: &str) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), &[access_token.as_bytes()]))
}

/// Checks an `appsecret_proof` in constant time.
pub fn verify_appsecret_proof(secret: &str, access_token: &str, proof: &str) -> bool {
    let Ok(given) = hex::decode(proof.trim()) else {
        return false;
    };
    let mut mac = keyed::<HmacSha256>(secret.as_bytes());
    mac.update(access_token.as_bytes());
    mac.verify_slice(&given).is_ok()
}

/// `v1,<base64>`: Standard Webhooks' signature of `{id}.{timestamp}.{body}`, keyed by the app
/// secret's UTF-8 bytes (so receivers configure `whsec_<base64(secret)>`).
pub fn standard_webhooks_signature(
    secret: &str,
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    standard_webhooks_with(keyed(secret.as_bytes()), message_id, timestamp, body)
}

fn standard_webhooks_with(
    mac: HmacSha256,
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let timestamp = timestamp.to_string();
    let digest = sign_parts(
        mac,
        &[
            message_id.as_bytes(),
            b".",
            timestamp.as_bytes(),
            b".",
            body,
        ],
    );
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_test_vectors() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        assert_eq!(
            hub_signature_256("test_app_secret", body),
            "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756"
        );
        assert_eq!(
            hub_signature_1("test_app_secret", body),
            "sha1=fc5983fdf1a4e15c8949b8af05322fede4063d27"
        );
        let escaped = br#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"message":{"text":"caf\u00e9"}}]}]}"#;
        assert_eq!(
            hub_signature_256("test_app_secret", escaped),
            "sha256=8ea324510b660d6ef554d5d308904512e821a98a87728998ab5ac6ea92a37966"
        );
        let literal = r#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"message":{"text":"café"}}]}]}"#;
        assert_ne!(
            hub_signature_256("test_app_secret", literal.as_bytes()),
            "sha256=8ea324510b660d6ef554d5d308904512e821a98a87728998ab5ac6ea92a37966"
        );
    }

    #[test]
    fn the_serialiser_produces_the_signed_escaped_form() {
        let value: serde_json::Value = serde_json::from_str(
            r#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"message":{"text":"café"}}]}]}"#,
        )
        .unwrap();
        // serde_json's map keeps keys sorted, so compare on a value with sorted keys.
        let body = crate::wire::to_meta_json(&value).unwrap();
        assert!(body.contains(r#""caf\u00e9""#), "{body}");
    }

    #[test]
    fn appsecret_proof_round_trips() {
        let proof = appsecret_proof("secret", "123|secret");
        assert_eq!(proof.len(), 64);
        assert!(verify_appsecret_proof("secret", "123|secret", &proof));
        assert!(!verify_appsecret_proof("other", "123|secret", &proof));
        assert!(!verify_appsecret_proof("secret", "123|secret", "zz"));
    }

    #[test]
    fn standard_webhooks_vector() {
        // From the Standard Webhooks reference tests: secret
        // whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, i.e. the raw key bytes below.
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let digest = hmac_sha256(
            &key,
            &[br#"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}"#],
        );
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(digest),
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let signature = standard_webhooks_signature("abc", "1", 2, b"{}");
        assert!(signature.starts_with("v1,"));
    }

    /// A prepared key signs exactly as the secret does, every time (its keyed state is copied,
    /// not consumed), and keeps the secret out of `Debug`.
    #[test]
    fn a_signing_key_signs_as_its_secret() {
        let key = SigningKey::new("test_app_secret");
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        for _ in 0..2 {
            assert_eq!(
                key.hub_signature_256(body),
                "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756"
            );
            assert_eq!(
                key.hub_signature_1(body),
                "sha1=fc5983fdf1a4e15c8949b8af05322fede4063d27"
            );
            assert_eq!(
                key.standard_webhooks_signature("msg_1", 1_614_265_330, body),
                standard_webhooks_signature("test_app_secret", "msg_1", 1_614_265_330, body)
            );
        }
        assert_ne!(
            SigningKey::new("other").hub_signature_256(body),
            key.hub_signature_256(body)
        );
        assert!(!format!("{key:?}").contains("test_app_secret"));
    }
}
