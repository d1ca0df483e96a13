//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside whichever commit makes the WAL cross its threshold,
//! on the connection that commits: here, the writer thread, the store's one serial resource
//! under load. A claim could then wait several milliseconds while the WAL was copied back into
//! the database, and the copying took about a tenth of the writer's time while changes poured
//! in. So the writer's connection has automatic checkpoints off, and this thread runs a
//! `PASSIVE` checkpoint (which never waits for, nor blocks, the writer or the readers) every
//! [`INTERVAL`] while the store is open. The WAL then restarts from its beginning at the first
//! write after a checkpoint that caught up, as it did before.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use graphhooks_store::StoreError;
use rusqlite::{Connection, OpenFlags};

use crate::error::map_error;

/// How often the WAL is copied back into the database. At the writer's fastest this is a few
/// megabytes of WAL, about what SQLite's default threshold (1,000 pages) lets grow.
const INTERVAL: Duration = Duration::from_millis(100);

/// The checkpoint thread; dropping this stops it (after the checkpoint under way, if any).
pub(crate) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` (already in WAL mode) on a connection of its
    /// own.
    pub(crate) fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(map_error)?;
        connection
            .execute_batch("PRAGMA busy_timeout = 5000;")
            .map_err(map_error)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("graphhooks-sqlite-checkpointer".into())
            .spawn(move || run(&connection, &stopped))
            .map_err(|error| {
                StoreError::other(format!("cannot start the SQLite checkpointer: {error}"))
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel wakes the thread at once.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(connection: &Connection, stopped: &mpsc::Receiver<()>) {
    loop {
        match stopped.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        // (blocked, frames in the WAL, frames copied back); nothing here needs them.
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %map_error(error), "A WAL checkpoint failed; trying again shortly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages in the main database file (not counting the WAL).
    fn file_pages(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len() / 4096).unwrap_or(0)
    }

    #[test]
    fn the_wal_is_copied_back_without_automatic_checkpoints() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("db.sqlite");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA page_size = 4096;
                 PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (v TEXT NOT NULL);",
            )
            .unwrap();
        let before = file_pages(&path);
        let checkpointer = Checkpointer::start(&path).unwrap();
        // About 2,000 pages of rows, all in the WAL until something copies them back.
        writer
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                 INSERT INTO t (v) SELECT hex(randomblob(2000)) FROM n",
            )
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while file_pages(&path) < before + 1000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the database file did not grow: no checkpoint ran"
            );
            thread::sleep(Duration::from_millis(20));
        }
        drop(checkpointer);
    }
}
