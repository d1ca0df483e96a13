//! The receiver crate against the real graphhooks server (in-process, SQLite): the library's axum
//! integration (`router`) and the example receiver program (`example`).

#![allow(
    unreachable_pub,
    reason = "test support items are shared between test modules"
)]

mod example;
mod router;
mod support;
