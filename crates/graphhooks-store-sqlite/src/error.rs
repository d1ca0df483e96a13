//! The one mapping from rusqlite errors to [`StoreError`]: busy/locked means unavailable (retry),
//! uniqueness means conflict, the rest is a defect.

use graphhooks_store::StoreError;
use rusqlite::ErrorCode;

/// Maps a rusqlite error.
pub(crate) fn map_error(error: rusqlite::Error) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, message) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                StoreError::Unavailable(Box::new(error))
            }
            ErrorCode::ConstraintViolation => StoreError::Conflict(
                message
                    .clone()
                    .unwrap_or_else(|| "constraint violated".to_owned()),
            ),
            ErrorCode::DiskFull | ErrorCode::CannotOpen | ErrorCode::SystemIoFailure => {
                StoreError::Unavailable(Box::new(error))
            }
            _ => StoreError::Other(Box::new(error)),
        },
        _ => StoreError::Other(Box::new(error)),
    }
}

/// `?` support inside store jobs.
pub(crate) trait SqlResultExt<T> {
    /// Maps the error with [`map_error`].
    fn store(self) -> Result<T, StoreError>;
}

impl<T> SqlResultExt<T> for rusqlite::Result<T> {
    fn store(self) -> Result<T, StoreError> {
        self.map_err(map_error)
    }
}
