//! Dashboard sessions: a stateless, HMAC-signed cookie that every node can check, so sessions
//! work behind any load balancer. The cookie names who signed in (the operator or one app), a
//! CSRF token, an expiry, and a short hash of the credential used (the app's current secret,
//! or the admin token), so rotating that credential ends the sessions made with it.
//!
//! ```text
//! graphhooks_session = v1.<role>.<expires>.<csrf>.<credential hash>.<hmac>
//!   role: "op" or the app id; hmac: HMAC-SHA256 of everything before it, keyed by the
//!   `dashboard_session_key` setting (32 random bytes, made once by whichever node needs it first)
//! ```

use std::sync::{Arc, Mutex, Weak};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use graphhooks_core::model::App;
use graphhooks_core::signature::hub_signature_256;
use graphhooks_store::StoreError;
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};
use sha2::{Digest, Sha256};

use super::error::DashError;
use crate::clock::now_s;
use crate::state::{AppState, SharedState};

/// Name of the session cookie.
pub(crate) const COOKIE_NAME: &str = "graphhooks_session";
/// Name of the cookie that carries the sign-in form's CSRF token before there is a session.
pub(crate) const LOGIN_COOKIE_NAME: &str = "graphhooks_signin";
/// Settings key of the session signing key.
const KEY_SETTING: &str = "dashboard_session_key";
/// How long a session lasts: a working day, after which the person signs in again.
pub(crate) const SESSION_SECONDS: i64 = 12 * 3600;
/// Largest form body the dashboard reads (an edited sample payload is the largest thing).
const FORM_LIMIT: usize = 1024 * 1024;
/// The header JavaScript sends the CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// The form field forms send the CSRF token in.
pub(crate) const CSRF_FIELD: &str = "_csrf";

/// Who a session acts as.
#[derive(Debug, Clone)]
pub(crate) enum Who {
    /// The operator: every app.
    Operator,
    /// One app's developer: that app only.
    App(App),
}

/// A signed-in person.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Who.
    pub(crate) who: Who,
    /// The token every form and fetch must echo.
    pub(crate) csrf: String,
}

impl Session {
    /// The app this session may see: any existing app for the operator, its own for an app
    /// (403 for any other id, whether it exists or not, so nothing leaks about other apps).
    pub(crate) async fn app(&self, state: &SharedState, app_id: &str) -> Result<App, DashError> {
        match &self.who {
            Who::App(app) if app.id == app_id => Ok(app.clone()),
            Who::App(_) => Err(DashError::Forbidden(
                "This session belongs to another app. Sign in with this app's id and secret, or as the operator, to see it.".into(),
            )),
            Who::Operator => {
                if graphhooks_core::model::validate_app_id(app_id).is_err() {
                    return Err(DashError::NotFound(format!("There is no app {app_id}.")));
                }
                state
                    .store
                    .app(app_id)
                    .await?
                    .ok_or_else(|| DashError::NotFound(format!("There is no app {app_id}.")))
            }
        }
    }

    /// Checks the session is the operator's.
    pub(crate) fn require_operator(&self) -> Result<(), DashError> {
        match self.who {
            Who::Operator => Ok(()),
            Who::App(_) => Err(DashError::Forbidden(
                "Only the operator (signed in with the admin token) can see this page.".into(),
            )),
        }
    }

    /// Whether this is the operator's session.
    pub(crate) fn is_operator(&self) -> bool {
        matches!(self.who, Who::Operator)
    }
}

/// Constant-time equality.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Session keys by server, so each server (several may share a process in tests) reads its
/// key from its store once. A `Weak` keeps its allocation, so a live entry's address is never
/// reused by another server's state.
static KEYS: Mutex<Vec<(Weak<AppState>, String)>> = Mutex::new(Vec::new());

fn cached_key(state: &SharedState) -> Option<String> {
    let mut keys = match KEYS.lock() {
        Ok(keys) => keys,
        Err(poisoned) => poisoned.into_inner(),
    };
    keys.retain(|(owner, _)| owner.strong_count() > 0);
    let me = Arc::downgrade(state);
    keys.iter()
        .find(|(owner, _)| owner.ptr_eq(&me))
        .map(|(_, key)| key.clone())
}

fn cache_key(state: &SharedState, key: &str) {
    let mut keys = match KEYS.lock() {
        Ok(keys) => keys,
        Err(poisoned) => poisoned.into_inner(),
    };
    let me = Arc::downgrade(state);
    if !keys.iter().any(|(owner, _)| owner.ptr_eq(&me)) {
        keys.push((me, key.to_owned()));
    }
}

fn valid_key(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The session signing key: cached, else read from the store, else made and stored once (the
/// first node to store one wins; the others read it).
async fn session_key(state: &SharedState) -> Result<String, DashError> {
    if let Some(key) = cached_key(state) {
        return Ok(key);
    }
    let key = match state.store.setting(KEY_SETTING).await? {
        Some(key) => key,
        None => {
            let fresh = hex::encode(rand::random::<[u8; 32]>());
            if state.store.set_setting_once(KEY_SETTING, &fresh).await? {
                fresh
            } else {
                state.store.setting(KEY_SETTING).await?.ok_or_else(|| {
                    DashError::from(StoreError::Conflict(
                        "the dashboard session key vanished while being read".into(),
                    ))
                })?
            }
        }
    };
    if !valid_key(&key) {
        return Err(DashError::Internal(format!(
            "the stored {KEY_SETTING} setting is not 64 hexadecimal characters"
        )));
    }
    cache_key(state, &key);
    Ok(key)
}

/// A short hash naming a credential, so a cookie stops working when it changes.
fn credential_hash(credential: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"graphhooks dashboard session\0");
    hasher.update(credential);
    hex::encode(&hasher.finalize()[..8])
}

fn app_credential(app: &App) -> String {
    credential_hash(app.secret.expose().as_bytes())
}

fn operator_credential(state: &AppState) -> String {
    credential_hash(&state.admin_token_sha256)
}

fn mac(key: &str, payload: &str) -> String {
    hub_signature_256(key, payload.as_bytes())
        .trim_start_matches("sha256=")
        .to_owned()
}

/// A new session cookie's value for `who`, expiring [`SESSION_SECONDS`] from `now`.
pub(crate) async fn issue(state: &SharedState, who: &Who, now: i64) -> Result<String, DashError> {
    let key = session_key(state).await?;
    let (role, credential) = match who {
        Who::Operator => ("op".to_owned(), operator_credential(state)),
        Who::App(app) => (app.id.clone(), app_credential(app)),
    };
    let csrf = hex::encode(rand::random::<[u8; 16]>());
    let payload = format!("v1.{role}.{}.{csrf}.{credential}", now + SESSION_SECONDS);
    let signature = mac(&key, &payload);
    Ok(format!("{payload}.{signature}"))
}

/// The parts of a cookie whose signature and expiry hold.
struct Claims {
    role: String,
    csrf: String,
    credential: String,
}

fn check_signed(key: &str, value: &str, now: i64) -> Option<Claims> {
    let (payload, signature) = value.rsplit_once('.')?;
    if !same(mac(key, payload).as_bytes(), signature.as_bytes()) {
        return None;
    }
    let mut parts = payload.split('.');
    let (version, role, expires, csrf, credential) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if version != "v1" || parts.next().is_some() {
        return None;
    }
    let expires: i64 = expires.parse().ok()?;
    (expires > now).then(|| Claims {
        role: role.to_owned(),
        csrf: csrf.to_owned(),
        credential: credential.to_owned(),
    })
}

/// The session a cookie value stands for, if it is valid now: signed by this deployment, not
/// expired, and made with the credential in force (the app exists and its secret is unchanged).
pub(crate) async fn verify(
    state: &SharedState,
    value: &str,
    now: i64,
) -> Result<Option<Session>, DashError> {
    let key = session_key(state).await?;
    let Some(claims) = check_signed(&key, value, now) else {
        return Ok(None);
    };
    let who = if claims.role == "op" {
        if !same(
            operator_credential(state).as_bytes(),
            claims.credential.as_bytes(),
        ) {
            return Ok(None);
        }
        Who::Operator
    } else {
        if graphhooks_core::model::validate_app_id(&claims.role).is_err() {
            return Ok(None);
        }
        let Some(app) = state.store.app(&claims.role).await? else {
            return Ok(None);
        };
        if !same(
            app_credential(&app).as_bytes(),
            claims.credential.as_bytes(),
        ) {
            return Ok(None);
        }
        Who::App(app)
    };
    Ok(Some(Session {
        who,
        csrf: claims.csrf,
    }))
}

/// The value of cookie `name` in the request, if any.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// Whether the browser reached us over HTTPS (directly or through a proxy that says so).
pub(crate) fn is_https(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .next()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
        });
    let forwarded = headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    forwarded_proto || forwarded
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, scoped to the dashboard, Secure over HTTPS.
/// `max_age` 0 deletes the cookie.
pub(crate) fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: i64) -> String {
    let secure = if is_https(headers) { "; Secure" } else { "" };
    format!("{name}={value}; Path=/dashboard; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// Adds a `Set-Cookie` header to a response.
pub(crate) fn with_cookie(
    mut response: axum::response::Response,
    cookie: String,
) -> axum::response::Response {
    if let Ok(value) = http::HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// Whether the request comes from the dashboard's JavaScript (which wants JSON answers).
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn unauthenticated(parts: &Parts) -> DashError {
    // Inside the nested router the URI has lost its `/dashboard` prefix; the original has it.
    let uri = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(&parts.uri, |original| &original.0);
    let next = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    DashError::Unauthenticated {
        next: if parts.method == http::Method::GET {
            next
        } else {
            String::new()
        },
        json: wants_json(&parts.headers),
    }
}

impl FromRequestParts<SharedState> for Session {
    type Rejection = DashError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = cookie(&parts.headers, COOKIE_NAME) else {
            return Err(unauthenticated(parts));
        };
        match verify(state, value, now_s()).await? {
            Some(session) => Ok(session),
            None => Err(unauthenticated(parts)),
        }
    }
}

impl axum::extract::OptionalFromRequestParts<SharedState> for Session {
    type Rejection = DashError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Option<Self>, Self::Rejection> {
        match cookie(&parts.headers, COOKIE_NAME) {
            Some(value) => verify(state, value, now_s()).await,
            None => Ok(None),
        }
    }
}

/// A form body as name/value pairs, in order.
#[derive(Debug, Default)]
pub(crate) struct FormData {
    pairs: Vec<(String, String)>,
}

impl FormData {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub(crate) fn parse(body: &[u8]) -> FormData {
        FormData {
            pairs: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of `name`, trimmed, or "" when absent.
    pub(crate) fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_owned()
    }

    /// Every value of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }

    /// Whether a checkbox named `name` was checked.
    pub(crate) fn checked(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| matches!(v, "on" | "true" | "1" | "yes"))
    }
}

/// A POST from a signed-in person whose CSRF token matched (form field or header). Taking this
/// extractor is the only way a dashboard handler reads a form, so no form escapes the check.
pub(crate) struct Post {
    /// The session.
    pub(crate) session: Session,
    /// The form.
    pub(crate) form: FormData,
    /// Whether the dashboard's JavaScript sent it (answer JSON).
    pub(crate) json: bool,
}

impl FromRequest<SharedState> for Post {
    type Rejection = DashError;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let json = wants_json(&parts.headers);
        let bytes = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| DashError::TooLarge)?;
        let form = FormData::parse(&bytes);
        let given = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .or_else(|| form.get(CSRF_FIELD))
            .unwrap_or("");
        if !same(given.as_bytes(), session.csrf.as_bytes()) {
            return Err(DashError::Csrf);
        }
        Ok(Post {
            session,
            form,
            json,
        })
    }
}

/// A form posted without a session (sign-in), with its body read under the limit.
pub(crate) async fn read_form(request: Request) -> Result<(HeaderMap, FormData), DashError> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| DashError::TooLarge)?;
    Ok((parts.headers, FormData::parse(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn signed(payload: &str) -> String {
        format!("{payload}.{}", mac(KEY, payload))
    }

    #[test]
    fn a_signed_unexpired_cookie_is_accepted() {
        let claims = check_signed(KEY, &signed("v1.123.2000.abc.def"), 1000).unwrap();
        assert_eq!(claims.role, "123");
        assert_eq!(claims.csrf, "abc");
        assert_eq!(claims.credential, "def");
    }

    #[test]
    fn tampered_expired_or_foreign_cookies_are_refused() {
        let good = signed("v1.123.2000.abc.def");
        assert!(check_signed(KEY, &good.replace("v1.123", "v1.124"), 1000).is_none());
        assert!(check_signed(KEY, &good, 2000).is_none());
        let other_key = KEY.replace('0', "1");
        assert!(check_signed(&other_key, &good, 1000).is_none());
        assert!(check_signed(KEY, "garbage", 1000).is_none());
        assert!(check_signed(KEY, &signed("v2.123.2000.abc.def"), 1000).is_none());
        assert!(check_signed(KEY, &signed("v1.123.2000.abc.def.extra"), 1000).is_none());
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "a=1; graphhooks_session=xyz; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, COOKIE_NAME), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn cookies_are_secure_behind_an_https_proxy_only() {
        let mut headers = HeaderMap::new();
        assert!(!set_cookie(&headers, "n", "v", 10).contains("Secure"));
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        let cookie = set_cookie(&headers, "n", "v", 10);
        assert!(cookie.contains("; Secure"));
        assert!(cookie.contains("HttpOnly"));
        assert!(cookie.contains("SameSite=Strict"));
    }
}
