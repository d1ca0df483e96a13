//! The one mapping from sqlx errors to [`StoreError`], by SQLSTATE: lost connections, pool
//! timeouts, lock timeouts, serialization failures and deadlocks mean "retry later"
//! (`Unavailable`); unique violations are conflicts; the rest is a defect.

use graphhooks_store::StoreError;

/// Maps an sqlx error.
pub(crate) fn map_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(database) => {
            let code = database.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.as_str() {
                "23505" => StoreError::Conflict(database.message().to_owned()),
                // serialization failure, deadlock, lock timeout, query cancelled (statement
                // timeout), admin/crash shutdown, cannot connect now, too many connections
                "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "53300" => {
                    StoreError::Unavailable(Box::new(error))
                }
                class if class.starts_with("08") => StoreError::Unavailable(Box::new(error)),
                _ => StoreError::Other(Box::new(error)),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(Box::new(error)),
        _ => StoreError::Other(Box::new(error)),
    }
}

/// `?` support for sqlx results.
pub(crate) trait SqlResultExt<T> {
    /// Maps the error with [`map_error`].
    fn store(self) -> Result<T, StoreError>;
}

impl<T> SqlResultExt<T> for Result<T, sqlx::Error> {
    fn store(self) -> Result<T, StoreError> {
        self.map_err(map_error)
    }
}

/// A stored value that no longer parses.
pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::other(format!("stored {what} is invalid: {error}"))
}
