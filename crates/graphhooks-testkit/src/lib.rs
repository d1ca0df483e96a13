//! Test support for graphhooks.
//!
//! This crate is used by graphhooks' integration tests and benchmarks; it is
//! never published. It provides:
//!
//! * [`TestCa`] / [`IssuedCert`] (module [`ca`]): a certificate authority
//!   created on the fly with `rcgen`, which issues TLS server and client
//!   certificates, plus self-signed certificates that no CA vouches for.
//! * [`Receiver`] (module [`receiver`]): a recording webhook receiver, an
//!   HTTPS (or plain HTTP) server on `127.0.0.1` that records every request
//!   it sees and answers verification handshakes and callback POSTs from a
//!   script of [`Reply`] values.
//!
//! All TLS goes through rustls with the `ring` crypto provider, chosen
//! explicitly (see [`crypto_provider`]), so the process-wide default provider
//! is never consulted.
//!
//! Being test support, functions here panic with a descriptive message when
//! the test setup itself is broken (for example a certificate name that is
//! not a valid DNS name or IP address, or a directory that cannot be
//! written). Nothing panics because of what a client sends.

use std::sync::Arc;

pub mod ca;
pub mod receiver;

pub use ca::{IssuedCert, TestCa};
pub use receiver::{Handshake, Receiver, ReceiverBuilder, Recorded, Reply};

/// The rustls crypto provider every TLS configuration in this crate uses:
/// `ring`, never `aws-lc-rs`.
///
/// Tests building their own rustls `ClientConfig` should use it too, via
/// `rustls::ClientConfig::builder_with_provider(crypto_provider())`.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
