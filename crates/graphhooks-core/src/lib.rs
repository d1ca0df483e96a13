//! The graphhooks domain: what object types, apps, grants, subscriptions and changes are, which
//! app a change goes to, and exactly which bytes a receiver gets. Everything here is pure: no
//! clock, no network, no storage, so it is fast to test and shared by every store and the server.
//!
//! # Layout
//! - [`catalog`]: object types and their fields, with Meta's built-in catalog.
//! - [`model`]: apps, roles, grants, subscriptions, changes and deliveries as plain data.
//! - [`eligibility`]: the three rules that decide whether a change goes to an app, with reasons.
//! - [`wire`]: Meta's JSON escaping and the notification body builder (batching by count and size).
//! - [`fanout`]: turns a run of accepted changes into the deliveries to create.
//! - [`signature`]: `X-Hub-Signature-256`, `X-Hub-Signature`, `appsecret_proof`, Standard Webhooks.
//! - [`retry`]: the retry schedule and window as a pure function of attempts and time.
//! - [`duration`]: the duration syntax of flags and API calls (`500ms`, `10s`, `1h`, `0s,1s,2s`).
//! - [`net`]: which IP addresses count as public (the SSRF rule).

pub mod catalog;
pub mod duration;
pub mod eligibility;
pub mod error;
pub mod fanout;
pub mod model;
pub mod net;
pub mod retry;
pub mod signature;
pub mod wire;

pub use error::CoreError;

/// The Graph API version subscriptions are pinned to when the caller names none.
pub const CURRENT_API_VERSION: &str = "v25.0";

/// Most changes one notification may carry (Meta's limit, and the `--batch-max` ceiling).
pub const MAX_BATCH: usize = 1000;

/// Most bytes one notification body may have (Meta's 3 MB).
pub const MAX_BODY_BYTES: usize = 3_000_000;
