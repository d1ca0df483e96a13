//! Plain data for the entities of SPEC §1: apps and their roles, grants, subscriptions, changes
//! and deliveries. Stores persist these; the server turns them into API shapes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Whether an app hears about everyone or only about its own people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppMode {
    /// Only changes whose actor has a role on the app (and test notifications).
    Development,
    /// Every eligible change.
    Live,
}

impl AppMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppMode::Development => "development",
            AppMode::Live => "live",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Result<Self, CoreError> {
        match text {
            "development" => Ok(AppMode::Development),
            "live" => Ok(AppMode::Live),
            other => Err(CoreError::invalid(format!(
                "mode must be \"development\" or \"live\", not {other:?}"
            ))),
        }
    }
}

/// A person's role on an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full control.
    Administrator,
    /// Builds the app.
    Developer,
    /// Tests the app.
    Tester,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Developer => "developer",
            Role::Tester => "tester",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Result<Self, CoreError> {
        match text {
            "administrator" => Ok(Role::Administrator),
            "developer" => Ok(Role::Developer),
            "tester" => Ok(Role::Tester),
            other => Err(CoreError::invalid(format!(
                "role must be \"administrator\", \"developer\" or \"tester\", not {other:?}"
            ))),
        }
    }
}

/// An app's signing secret. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret after checking it is at least 32 hex characters (SPEC §1).
    pub fn new(text: String) -> Result<Self, CoreError> {
        if text.len() >= 32 && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Secret(text))
        } else {
            Err(CoreError::invalid(
                "an app secret must be 32 to 128 hexadecimal characters",
            ))
        }
    }

    /// Wraps a secret read back from storage, trusted to have been checked when stored.
    pub fn from_stored(text: String) -> Self {
        Secret(text)
    }

    /// The secret itself; call only where it is used as a key or shown once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// A third-party application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Numeric string id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Development or live.
    pub mode: AppMode,
    /// The current signing secret.
    pub secret: Secret,
    /// The secret before the last rotation and when it stops signing (unix ms), if any.
    pub previous_secret: Option<(Secret, i64)>,
    /// When the app was created (unix seconds).
    pub created_time: i64,
}

impl App {
    /// The previous secret if its grace period has not ended at `now_ms`.
    pub fn previous_secret_at(&self, now_ms: i64) -> Option<&Secret> {
        self.previous_secret
            .as_ref()
            .filter(|(_, until)| *until > now_ms)
            .map(|(secret, _)| secret)
    }
}

/// Checks an app id: a numeric string of 1 to 20 digits.
pub fn validate_app_id(id: &str) -> Result<(), CoreError> {
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(CoreError::invalid(format!(
            "invalid app id {id:?}: app ids are numeric strings"
        )))
    }
}

/// Checks an object or user id: 1 to 256 characters, no control characters.
pub fn validate_object_id(kind: &str, id: &str) -> Result<(), CoreError> {
    if !id.is_empty() && id.len() <= 256 && !id.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(CoreError::invalid(format!(
            "invalid {kind} {id:?}: use 1 to 256 characters without control characters"
        )))
    }
}

/// Checks a display name: 1 to 200 characters.
pub fn validate_app_name(name: &str) -> Result<(), CoreError> {
    let length = name.chars().count();
    if (1..=200).contains(&length) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "an app name must be 1 to 200 characters without control characters",
        ))
    }
}

/// The record that an object's owner let an app see that object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The app.
    pub app_id: String,
    /// The object type.
    pub object_type: String,
    /// The object id.
    pub object_id: String,
    /// The permissions granted for this object.
    pub permissions: Vec<String>,
}

/// Whether a subscription sends now or holds its notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    /// Notifications go out.
    Active,
    /// Notifications are built and kept until the subscription is resumed.
    Paused,
}

/// One app's subscription to one object type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The app.
    pub app_id: String,
    /// The object type.
    pub object_type: String,
    /// Where notifications go.
    pub callback_url: String,
    /// Echoed in the handshake so the receiver knows the request is ours.
    pub verify_token: String,
    /// `changes` with values, or only `changed_fields`.
    pub include_values: bool,
    /// Present the configured client certificate (mutual TLS).
    pub include_client_certificate: bool,
    /// Add Standard Webhooks headers.
    pub standard_webhooks: bool,
    /// Active or paused.
    pub status: SubscriptionStatus,
    /// Subscribed fields and the API version each is pinned to.
    pub fields: BTreeMap<String, String>,
    /// When the callback started failing without a success since (unix ms), if it is.
    pub failing_since: Option<i64>,
}

/// A change as the operator submits it, validated against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    /// Object type.
    pub object_type: String,
    /// Object id.
    pub object_id: String,
    /// Field that changed.
    pub field: String,
    /// The new value as compact JSON already escaped the Meta way, so it is copied into
    /// notifications without being parsed again.
    pub value: String,
    /// The user who caused the change, if known.
    pub actor: Option<String>,
    /// Event time (unix seconds).
    pub time: i64,
}

/// A stored change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Store-assigned id, increasing in acceptance order.
    pub id: i64,
    /// The change itself.
    pub change: NewChange,
}

/// Where a delivery stands (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx came back.
    Delivered,
    /// The retry window ended without success.
    Failed,
    /// Held because its subscription is paused.
    Paused,
}

impl DeliveryState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Paused => "paused",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Result<Self, CoreError> {
        match text {
            "pending" => Ok(DeliveryState::Pending),
            "delivered" => Ok(DeliveryState::Delivered),
            "failed" => Ok(DeliveryState::Failed),
            "paused" => Ok(DeliveryState::Paused),
            other => Err(CoreError::invalid(format!(
                "state must be pending, delivered, failed or paused, not {other:?}"
            ))),
        }
    }
}

/// One attempt to deliver a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1, 2, ...
    pub number: u32,
    /// When it started (unix ms).
    pub time_ms: i64,
    /// The HTTP status, if one came back.
    pub status: Option<u16>,
    /// The transport or TLS error, if any.
    pub error: Option<String>,
    /// Time to the response (or the error).
    pub latency_ms: u32,
    /// The first 1 KiB of the response body.
    pub response: Option<String>,
}

/// The durable record of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Stable id, sent as `X-Graphhooks-Delivery`.
    pub id: i64,
    /// The app it goes to.
    pub app_id: String,
    /// The object type of every change in it.
    pub object_type: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// When it was built (unix seconds).
    pub created_time: i64,
    /// The exact body sent.
    pub body: String,
    /// Attempts, oldest first.
    pub attempts: Vec<Attempt>,
    /// Set for test notifications (`subscriptions_sample`).
    pub test: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hex_and_never_printed() {
        assert!(Secret::new("abc".into()).is_err());
        assert!(Secret::new("z".repeat(32)).is_err());
        let secret = Secret::new("0123456789abcdef0123456789abcdef".into()).unwrap();
        assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
    }

    #[test]
    fn previous_secret_expires() {
        let secret = Secret::from_stored("a".repeat(32));
        let app = App {
            id: "1".into(),
            name: "n".into(),
            mode: AppMode::Live,
            secret: secret.clone(),
            previous_secret: Some((Secret::from_stored("b".repeat(32)), 1000)),
            created_time: 0,
        };
        assert!(app.previous_secret_at(999).is_some());
        assert!(app.previous_secret_at(1000).is_none());
    }

    #[test]
    fn ids_are_checked() {
        assert!(validate_app_id("1234567890").is_ok());
        assert!(validate_app_id("12a").is_err());
        assert!(validate_app_id("").is_err());
        assert!(validate_object_id("object id", "page_1").is_ok());
        assert!(validate_object_id("object id", "a\nb").is_err());
        assert!(validate_object_id("object id", "").is_err());
    }
}
