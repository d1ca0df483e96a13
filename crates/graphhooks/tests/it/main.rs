//! Integration tests of graphhooks: the real server on 127.0.0.1 with a real SQLite file, against
//! real HTTPS receivers whose certificates come from a CA made in the test. One test binary, so
//! the workspace links once.

#![allow(
    unreachable_pub,
    reason = "test support items are shared between test modules"
)]
#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod app_developer;
mod connections;
mod copy;
mod dashboard;
mod delivery;
mod durability;
mod graph_api;
mod multinode;
mod operator_api;
mod support;
