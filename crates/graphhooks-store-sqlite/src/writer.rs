//! The single writer: one thread owns the write connection and runs jobs in group commits.
//!
//! SQLite allows one writer at a time, so rather than let tasks queue on the file lock, every
//! write is a job sent to this thread. The thread takes whatever jobs are waiting (up to
//! [`MAX_GROUP`]), runs each inside its own savepoint (a failing job rolls back alone), commits
//! once, and only then answers the callers. Many concurrent ingests thus share one fsync.
//!
//! Jobs say whether they need an fsync before their caller hears "done". Accepted changes and
//! API writes do (`synchronous = FULL` for their group). Claims, attempt outcomes and fan-out
//! rounds do not (`NORMAL`: in WAL mode that survives a process crash, and after a power loss
//! the work is redone from the durable changes or sent again, which at-least-once allows); they
//! are most of the writes under load, so most commits skip the fsync.
//!
//! Claims and attempt outcomes are *urgent*: when any are waiting they are committed in a group
//! of their own, ahead of the other waiting jobs, and a group of other jobs stops early
//! (commits what has run and keeps the rest for the next group) when an urgent job arrives
//! meanwhile. While changes pour in, the writer is busy with them and their fan-out, and a
//! claim queued behind that work left the callbacks idle for tens of milliseconds at a time.
//! Urgent jobs cannot starve the rest: dispatch runs one claim at a time and the recorder one
//! batch at a time. Fan-out rounds that claim as they write are not urgent: they are fan-out.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::thread;

use graphhooks_store::StoreError;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::map_error;

/// An error and its sources, joined with ": ".
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Most jobs committed together; bounds how long one commit keeps callers waiting.
const MAX_GROUP: usize = 256;

/// Called after the commit with its result.
type Finish = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;
/// Runs inside the transaction; says whether it succeeded and how to answer afterwards.
type Work = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

/// A job, whether its commit must be fsynced before it is answered, and whether it goes ahead
/// of the other waiting jobs (see the module docs).
struct Job {
    durable: bool,
    urgent: bool,
    work: Work,
}

/// Handle to the writer thread. Dropping every handle stops the thread after its last commit.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `connection`; `always_fsync` false means never fsync
    /// commits at all (the `Normal` durability option).
    pub(crate) fn start(connection: Connection, always_fsync: bool) -> std::io::Result<Writer> {
        let (jobs, receiver) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("graphhooks-sqlite-writer".into())
            .spawn(move || run(connection, receiver, always_fsync))?;
        Ok(Writer { jobs })
    }

    /// Runs `work` in the next group commit and returns its result once committed and fsynced.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(true, false, work, |_| {}).await
    }

    /// Runs `work` in the next group commit and returns its result once committed, without
    /// waiting for an fsync of its own (see the module docs for which writes may).
    pub(crate) async fn write_relaxed<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(false, false, work, |_| {}).await
    }

    /// Like [`Writer::write_relaxed`], committed ahead of the other waiting jobs when `urgent`
    /// (claims and attempt outcomes, which keep callbacks busy: see the module docs). Runs
    /// `after` on the writer thread once the job's fate is known (true: its work succeeded and
    /// was committed), before the caller hears: in-memory state that must follow the commit
    /// (the claims registry) is kept in step here, so no async caller blocks a runtime thread
    /// on a lock the writer holds through a long job (a claim of thousands of rows).
    pub(crate) async fn write_then<T, F, A>(
        &self,
        urgent: bool,
        work: F,
        after: A,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        A: FnOnce(bool) + Send + 'static,
    {
        self.submit(false, urgent, work, after).await
    }

    async fn submit<T, F, A>(
        &self,
        durable: bool,
        urgent: bool,
        work: F,
        after: A,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        A: FnOnce(bool) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let work: Work = Box::new(move |connection| {
            let result = work(connection);
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let outcome = match (commit, result) {
                    (Ok(()), result) => result,
                    (Err(error), Ok(_)) => Err(StoreError::Unavailable(
                        format!("commit failed: {error}").into(),
                    )),
                    (Err(_), Err(error)) => Err(error),
                };
                after(outcome.is_ok());
                // The caller may have gone away (request cancelled); nothing to tell then.
                let _ = reply.send(outcome);
            });
            (ok, finish)
        });
        self.jobs
            .send(Job {
                durable,
                urgent,
                work,
            })
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the SQLite write was not carried out (see the log)".into())
        })?
    }
}

fn run(connection: Connection, receiver: mpsc::Receiver<Job>, always_fsync: bool) {
    // The synchronous mode the connection is in now; switched only when a group needs another.
    let mut fsyncing: Option<bool> = None;
    let mut waiting = Waiting::default();
    loop {
        if waiting.is_empty() {
            match receiver.recv() {
                Ok(job) => waiting.push(job),
                // Every handle is gone and nothing is left to run.
                Err(_) => break,
            }
        }
        // Everything waiting, so that an urgent job queued behind others is seen now.
        waiting.take_all(&receiver);
        let urgent_group = !waiting.urgent.is_empty();
        let from = if urgent_group {
            &mut waiting.urgent
        } else {
            &mut waiting.other
        };
        let group: Vec<Job> = from.drain(..from.len().min(MAX_GROUP)).collect();
        let fsync = always_fsync && group.iter().any(|job| job.durable);
        if fsyncing != Some(fsync) {
            let mode = if fsync { "FULL" } else { "NORMAL" };
            match connection.execute_batch(&format!("PRAGMA synchronous = {mode}")) {
                Ok(()) => fsyncing = Some(fsync),
                Err(error) => {
                    tracing::warn!(error = %error_chain(&map_error(error)), "Could not set SQLite's synchronous mode");
                    fsyncing = None;
                }
            }
        }
        // A group of other jobs gives way to an urgent job that arrives while it runs.
        let unrun = commit_group(&connection, group, &mut || {
            waiting.take_all(&receiver);
            !urgent_group && !waiting.urgent.is_empty()
        });
        for job in unrun.into_iter().rev() {
            waiting.other.push_front(job);
        }
    }
}

/// Jobs taken off the channel and not run yet. Callers wait for their jobs, so these are
/// bounded by the callers at work.
#[derive(Default)]
struct Waiting {
    urgent: VecDeque<Job>,
    other: VecDeque<Job>,
}

impl Waiting {
    fn push(&mut self, job: Job) {
        if job.urgent {
            self.urgent.push_back(job);
        } else {
            self.other.push_back(job);
        }
    }

    /// Takes every job waiting on the channel, without blocking.
    fn take_all(&mut self, receiver: &mpsc::Receiver<Job>) {
        while let Ok(job) = receiver.try_recv() {
            self.push(job);
        }
    }

    fn is_empty(&self) -> bool {
        self.urgent.is_empty() && self.other.is_empty()
    }
}

/// Runs `group` in one transaction. Between jobs, `give_way` says whether to commit what has
/// run and stop; the jobs not run are returned, in order, to run in a later group.
fn commit_group(
    connection: &Connection,
    group: Vec<Job>,
    give_way: &mut dyn FnMut() -> bool,
) -> Vec<Job> {
    if let Err(error) = run_cached(connection, "BEGIN IMMEDIATE") {
        let error = map_error(error);
        tracing::warn!(error = %error_chain(&error), "Could not start a SQLite write transaction; the writes are refused");
        // Nothing ran: dropping the jobs closes their reply channels, so each caller gets
        // `Unavailable` and may retry.
        drop(group);
        return Vec::new();
    }
    let (finishes, unrun) = match <[Job; 1]>::try_from(group) {
        Ok([job]) => match run_alone(connection, job) {
            Some(finish) => (vec![finish], Vec::new()),
            None => return Vec::new(),
        },
        Err(group) => run_with_savepoints(connection, group, give_way),
    };
    match run_cached(connection, "COMMIT") {
        Ok(()) => finishes.into_iter().for_each(|finish| finish(Ok(()))),
        Err(error) => {
            let error = map_error(error);
            tracing::error!(error = %error_chain(&error), "A SQLite commit failed; its writes are rolled back and refused");
            if let Err(rollback) = connection.execute_batch("ROLLBACK") {
                tracing::warn!(error = %rollback, "Could not roll back after a failed commit");
            }
            finishes.into_iter().for_each(|finish| finish(Err(&error)));
        }
    }
    unrun
}

/// Runs the only job of a group without a savepoint: if it fails, the whole transaction is
/// its own to roll back (and `None` says it was). Savepoints are not free: SQLite journals
/// every page a statement changes inside one, and with an in-memory journal the end of each
/// statement walks the savepoint's whole journal, which made a job of many statements
/// (recording hundreds of outcomes) quadratic.
fn run_alone(connection: &Connection, job: Job) -> Option<Finish> {
    let (ok, finish) = (job.work)(connection);
    if ok {
        return Some(finish);
    }
    if let Err(error) = connection.execute_batch("ROLLBACK") {
        tracing::warn!(error = %error_chain(&map_error(error)), "Could not roll back a failed SQLite write");
    }
    // The commit did not fail; the job did, and `finish` answers with its error.
    finish(Ok(()));
    None
}

/// Runs each job of a group in its own savepoint, so a failing job rolls back alone; stops
/// before a job when `give_way` says so (after at least one has run) and returns those left.
fn run_with_savepoints(
    connection: &Connection,
    group: Vec<Job>,
    give_way: &mut dyn FnMut() -> bool,
) -> (Vec<Finish>, Vec<Job>) {
    let mut finishes = Vec::with_capacity(group.len());
    let mut jobs = group.into_iter();
    while let Some(job) = jobs.next() {
        // Some errors (disk full, I/O, out of memory) make SQLite roll back the whole
        // transaction, not just the savepoint. The jobs left must not run: outside a
        // transaction each SAVEPOINT/RELEASE would commit on its own while the COMMIT below
        // fails. Dropping them answers their callers with `Unavailable`; the jobs already run
        // hear that the commit failed.
        if connection.is_autocommit() {
            tracing::warn!(
                "SQLite rolled back the whole transaction; the rest of the group is refused"
            );
            break;
        }
        // Checked after the rollback case, so that a group SQLite has rolled back refuses its
        // remaining jobs rather than keeping them for a later group.
        if !finishes.is_empty() && give_way() {
            return (finishes, std::iter::once(job).chain(jobs).collect());
        }
        // Without its savepoint a failing job could not be undone alone: refuse it instead
        // (dropping it answers its caller with `Unavailable`).
        if let Err(error) = run_cached(connection, "SAVEPOINT job") {
            let job = job.work;
            tracing::warn!(error = %error_chain(&map_error(error)), "Could not open a SQLite savepoint; the write is refused");
            drop(job);
            continue;
        }
        let (ok, finish) = (job.work)(connection);
        let end = if ok {
            run_cached(connection, "RELEASE job")
        } else {
            run_cached(connection, "ROLLBACK TO job")
                .and_then(|()| run_cached(connection, "RELEASE job"))
        };
        if let Err(error) = end {
            tracing::warn!(error = %error_chain(&map_error(error)), "Could not close a SQLite savepoint");
        }
        finishes.push(finish);
    }
    (finishes, Vec::new())
}

/// Runs a statement without parameters through the statement cache (these run several times
/// per commit group; parsing them each time showed in profiles).
fn run_cached(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job whose `finish` reports whether it ran and committed; the receiver is closed, with
    /// nothing sent, if the job was refused without running.
    fn job(
        durable: bool,
        run: impl FnOnce(&Connection) -> bool + Send + 'static,
    ) -> (Job, mpsc::Receiver<bool>) {
        let (tell, told) = mpsc::channel();
        let work: Work = Box::new(move |connection| {
            let ok = run(connection);
            let finish: Finish = Box::new(move |commit| {
                let _ = tell.send(ok && commit.is_ok());
            });
            (ok, finish)
        });
        (
            Job {
                durable,
                urgent: false,
                work,
            },
            told,
        )
    }

    /// An urgent job waiting behind others runs (and commits) first; the others keep their
    /// order, and every job still runs once the handles are gone.
    #[test]
    fn urgent_jobs_go_ahead_of_the_others_waiting() {
        let (_dir, path, connection) = scratch();
        let (jobs, receiver) = mpsc::channel::<Job>();
        let mut told = Vec::new();
        for (x, urgent) in [(1, false), (2, false), (3, true), (4, false), (5, true)] {
            let (mut job, finished) = job(false, insert(x));
            job.urgent = urgent;
            jobs.send(job).unwrap();
            told.push(finished);
        }
        drop(jobs);
        run(connection, receiver, true);
        assert!(told.iter().all(|finished| finished.recv() == Ok(true)));
        let order = stored(&Connection::open(&path).unwrap());
        assert_eq!(order, [3, 5, 1, 2, 4]);
    }

    /// An urgent job that arrives while a group of other jobs runs goes next: the group
    /// commits what has run, and the jobs it had not reached follow, in their order.
    #[test]
    fn a_group_gives_way_to_an_urgent_job_that_arrives() {
        let (_dir, path, connection) = scratch();
        let (jobs, receiver) = mpsc::channel::<Job>();
        let (mut urgent, urgent_finished) = job(false, insert(9));
        urgent.urgent = true;
        let arrives = jobs.clone();
        let (first, first_finished) = job(false, move |c| {
            arrives.send(urgent).unwrap();
            insert(1)(c)
        });
        let (second, second_finished) = job(false, insert(2));
        let (third, third_finished) = job(false, insert(3));
        for job in [first, second, third] {
            jobs.send(job).unwrap();
        }
        drop(jobs);
        run(connection, receiver, true);
        for finished in [
            first_finished,
            urgent_finished,
            second_finished,
            third_finished,
        ] {
            assert_eq!(finished.recv(), Ok(true));
        }
        let order = stored(&Connection::open(&path).unwrap());
        assert_eq!(order, [1, 9, 2, 3]);
    }

    /// A job body that inserts `x` into `t` and succeeds.
    fn insert(x: i64) -> impl FnOnce(&Connection) -> bool + Send + 'static {
        move |c| {
            c.execute("INSERT INTO t (x) VALUES (?1)", [x]).unwrap();
            true
        }
    }

    /// The values in `t`, in the order they were inserted.
    fn stored(connection: &Connection) -> Vec<i64> {
        connection
            .prepare("SELECT x FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A scratch database with one table `t (x)`: its directory, path and a connection.
    fn scratch() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writer.db");
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER)")
            .unwrap();
        (dir, path, connection)
    }

    #[test]
    fn after_sqlite_rolls_back_the_whole_transaction_the_rest_of_the_group_is_refused() {
        let (_dir, path, connection) = scratch();
        // The first job ends the transaction the way SQLITE_FULL or an I/O error does.
        let (aborting, aborted) = job(false, |c| {
            c.execute_batch("INSERT INTO t VALUES (1); ROLLBACK")
                .unwrap();
            false
        });
        let (after, after_told) = job(false, |c| c.execute("INSERT INTO t VALUES (2)", []).is_ok());
        assert!(commit_group(&connection, vec![aborting, after], &mut || false).is_empty());

        assert_eq!(aborted.recv().ok(), Some(false));
        assert!(
            after_told.recv().is_err(),
            "the job after the rollback is refused, not run"
        );
        let reader = Connection::open(&path).unwrap();
        let rows: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "nothing committed on its own");
        assert!(connection.is_autocommit(), "no transaction left open");
    }

    #[test]
    fn a_job_alone_that_fails_leaves_nothing_behind() {
        let (_dir, _path, connection) = scratch();
        let (failing, told) = job(false, |c| {
            c.execute("INSERT INTO t VALUES (1)", []).unwrap();
            false
        });
        assert!(commit_group(&connection, vec![failing], &mut || false).is_empty());
        assert_eq!(told.recv().ok(), Some(false));
        let (next, next_told) = job(false, |c| c.execute("INSERT INTO t VALUES (2)", []).is_ok());
        assert!(commit_group(&connection, vec![next], &mut || false).is_empty());
        assert_eq!(next_told.recv().ok(), Some(true));
        assert_eq!(
            stored(&connection),
            vec![2],
            "the failed job's insert was rolled back"
        );
    }
}
