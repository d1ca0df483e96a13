//! The one error type of every store. Backends map their driver errors into it in a single
//! `From` impl each; the server maps it to HTTP in one place. `Unavailable` means "retry later"
//! (locked, pool exhausted, connection lost); `Other` is a defect worth an operator's look.

use thiserror::Error;

/// A boxed error cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store call failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was broken; the message names it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store cannot be reached or is busy; the call may succeed later.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("storage error")]
    Other(#[source] BoxError),
}

impl StoreError {
    /// Wraps any error as [`StoreError::Other`].
    pub fn other(error: impl Into<BoxError>) -> Self {
        StoreError::Other(error.into())
    }
}
