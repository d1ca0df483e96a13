//! Who is calling: the operator (admin bearer token) or an app (`{app_id}|{app_secret}` access
//! token, with `appsecret_proof` checked when present). Comparisons are constant-time.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use graphhooks_core::model::App;
use graphhooks_core::signature::verify_appsecret_proof;
use sha2::{Digest, Sha256};

use super::error::{AdminCode, AdminError, GraphCode, GraphError};
use super::params::Params;
use crate::clock::now_ms;
use crate::state::{AppState, SharedState};

/// Constant-time equality of two byte strings of equal length.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn bearer(parts: &http::HeaderMap) -> Option<&str> {
    let value = parts.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| token.trim())
}

/// How object tokens begin (so other tokens cost no lookup).
pub const OBJECT_TOKEN_PREFIX: &str = "ghobj_";

/// The settings key under which an object token's hash maps to its object.
pub fn object_token_setting(token: &str) -> String {
    format!("object_token:{}", hex::encode(token_hash(token)))
}

/// The settings key under which an object's current token hash is kept (to revoke it).
pub fn object_token_for(object_type: &str, object_id: &str) -> String {
    format!("object_token_for:{object_type}\u{1f}{object_id}")
}

/// Whether `token` is the admin token.
pub fn is_admin_token(state: &AppState, token: &str) -> bool {
    same(&token_hash(token), &state.admin_token_sha256)
}

/// Proof that the request carries the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<SharedState> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(&parts.headers) {
            Some(token) if is_admin_token(state, token) => Ok(Admin),
            Some(_) => Err(AdminError::new(
                AdminCode::Unauthorized,
                "the admin token is not valid",
            )),
            None => Err(AdminError::new(
                AdminCode::Unauthorized,
                "the operator API needs `Authorization: Bearer <admin token>`",
            )),
        }
    }
}

/// Who a Graph request acts as.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The operator, with the admin token: may act on any app.
    Operator,
    /// An app, with its app access token.
    App(App),
    /// The owner of one object, with the object token the operator issued for it.
    Object {
        /// The object's type.
        object_type: String,
        /// The object's id.
        object_id: String,
    },
}

impl Caller {
    /// Checks the caller may act on app `app_id`: 403 code 200 otherwise.
    pub fn require_app(&self, app_id: &str) -> Result<(), GraphError> {
        match self {
            Caller::Operator => Ok(()),
            Caller::App(app) if app.id == app_id => Ok(()),
            Caller::App(_) => Err(GraphError::new(
                GraphCode::Permission,
                "Permissions error: the access token belongs to another app",
            )),
            Caller::Object { .. } => Err(GraphError::new(
                GraphCode::Permission,
                "Permissions error: an object token cannot act on an app; use the app's access token",
            )),
        }
    }
}

/// Authenticates a Graph request from `access_token` or `Authorization: Bearer|OAuth`, and
/// counts it against the caller's `--graph-rate-limit` (code 4 past it).
pub async fn graph_caller(
    state: &AppState,
    headers: &http::HeaderMap,
    params: &Params,
) -> Result<Caller, GraphError> {
    let token = match params.text("access_token")? {
        Some(token) if !token.is_empty() => token,
        _ => bearer(headers).map(str::to_owned).ok_or_else(|| {
            GraphError::new(
                GraphCode::InvalidToken,
                "An active access token must be used to query information about the current app",
            )
        })?,
    };
    let invalid = || {
        GraphError::new(
            GraphCode::InvalidToken,
            "Invalid OAuth access token - Cannot parse access token",
        )
    };
    if is_admin_token(state, &token) {
        return Ok(Caller::Operator);
    }
    if token.starts_with(OBJECT_TOKEN_PREFIX) {
        let key = object_token_setting(&token);
        let Some(object) = state.store.setting(&key).await? else {
            return Err(invalid());
        };
        let (object_type, object_id) = object.split_once('\u{1f}').ok_or_else(invalid)?;
        within_limit(state, &format!("object\u{1f}{object}"))?;
        return Ok(Caller::Object {
            object_type: object_type.to_owned(),
            object_id: object_id.to_owned(),
        });
    }
    let (app_id, secret) = token.split_once('|').ok_or_else(invalid)?;
    if app_id.is_empty() || !app_id.bytes().all(|b| b.is_ascii_digit()) || app_id.len() > 20 {
        return Err(invalid());
    }
    let app = state.store.app(app_id).await?.ok_or_else(|| {
        GraphError::new(
            GraphCode::InvalidToken,
            "Invalid OAuth access token signature",
        )
    })?;
    let now = now_ms();
    let matches_current = same(secret.as_bytes(), app.secret.expose().as_bytes());
    let matches_previous = app
        .previous_secret_at(now)
        .is_some_and(|previous| same(secret.as_bytes(), previous.expose().as_bytes()));
    if !matches_current && !matches_previous {
        return Err(GraphError::new(
            GraphCode::InvalidToken,
            "Invalid OAuth access token signature",
        ));
    }
    if let Some(proof) = params.text("appsecret_proof")?
        && !verify_appsecret_proof(secret, &token, &proof)
    {
        return Err(GraphError::invalid(
            "Invalid appsecret_proof provided in the API argument",
        ));
    }
    within_limit(state, &app.id)?;
    Ok(Caller::App(app))
}

/// Counts an authenticated call against its caller's `--graph-rate-limit`. Only callers that
/// proved who they are are counted, so nobody can use up another app's calls.
fn within_limit(state: &AppState, key: &str) -> Result<(), GraphError> {
    state.graph_limiter.check(key).map_err(|wait| {
        metrics::counter!("graphhooks_graph_rate_limited_total").increment(1);
        GraphError::rate_limited(wait)
    })
}
