//! A small pool of read-only connections. WAL mode lets them read while the writer writes; each
//! read runs on tokio's blocking pool so async tasks never wait on SQLite.

use std::path::Path;
use std::sync::{Arc, Mutex};

use graphhooks_store::StoreError;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::map_error;

/// Read connections and a permit per connection.
pub(crate) struct Readers {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// Opens `size` read-only connections to the database at `path`.
    pub(crate) fn open(path: &Path, size: usize) -> Result<Readers, StoreError> {
        let mut idle = Vec::with_capacity(size);
        for _ in 0..size {
            let connection = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(map_error)?;
            connection
                .execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
                .map_err(map_error)?;
            crate::lane_key::register(&connection).map_err(map_error)?;
            idle.push(connection);
        }
        Ok(Readers {
            idle: Arc::new(Mutex::new(idle)),
            permits: Arc::new(Semaphore::new(size)),
        })
    }

    /// Runs `work` on an idle connection.
    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite reader pool is closed".into()))?;
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let connection = idle
                .lock()
                .map_err(|_| StoreError::other("the SQLite reader pool is poisoned"))?
                .pop()
                .ok_or_else(|| StoreError::other("no idle SQLite reader despite a permit"))?;
            let result = work(&connection);
            if let Ok(mut idle) = idle.lock() {
                idle.push(connection);
            }
            result
        })
        .await
        .map_err(|error| StoreError::other(format!("a SQLite read panicked: {error}")))?
    }
}
