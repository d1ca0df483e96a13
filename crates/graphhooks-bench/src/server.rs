//! The server under test: a fresh `graphhooks serve` process per scenario on a fresh database
//! (a SQLite file in a temporary directory, or a PostgreSQL database created and dropped on the
//! operator's server), and what `/proc` says about its CPU time and memory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The admin token of every bench server.
pub(crate) const ADMIN_TOKEN: &str = "graphhooks-bench-admin-token-0123456789";

/// Which store the servers use.
#[derive(Debug, Clone)]
pub(crate) enum DatabaseKind {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database per scenario on this PostgreSQL server.
    Postgres(String),
}

impl DatabaseKind {
    /// `sqlite`, or `postgres://…` (a server URL).
    pub(crate) fn parse(text: &str) -> anyhow::Result<DatabaseKind> {
        if text == "sqlite" {
            Ok(DatabaseKind::Sqlite)
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(DatabaseKind::Postgres(text.to_owned()))
        } else {
            bail!("--database takes `sqlite` or a postgres://USER@HOST:PORT/DB URL, not {text:?}")
        }
    }

    /// For the report.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres(_) => "postgres",
        }
    }
}

/// Replaces the database name (the last path segment) of a PostgreSQL URL.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let prefix = match base.rfind('/') {
        Some(slash) if slash >= scheme_end => &base[..slash],
        _ => base,
    };
    match query {
        Some(query) => format!("{prefix}/{database}?{query}"),
        None => format!("{prefix}/{database}"),
    }
}

/// A database that exists for one scenario.
pub(crate) struct FreshDatabase {
    /// What `serve --database` gets.
    pub(crate) url: String,
    /// PostgreSQL: (server URL, database name) to drop.
    postgres: Option<(String, String)>,
}

impl FreshDatabase {
    /// Creates an empty database of `kind`; SQLite files go in `dir`.
    pub(crate) async fn create(kind: &DatabaseKind, dir: &Path) -> anyhow::Result<FreshDatabase> {
        match kind {
            DatabaseKind::Sqlite => Ok(FreshDatabase {
                url: format!("sqlite://{}", dir.join("graphhooks.db").display()),
                postgres: None,
            }),
            DatabaseKind::Postgres(server) => {
                let name = format!("graphhooks_bench_{:016x}", rand::random::<u64>());
                let mut admin = PgConnection::connect(server)
                    .await
                    .with_context(|| format!("connect to PostgreSQL at {server}"))?;
                sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut admin)
                    .await
                    .with_context(|| format!("CREATE DATABASE {name}"))?;
                // Closing politely is a courtesy; the database exists either way.
                let _ = admin.close().await;
                Ok(FreshDatabase {
                    url: with_database(server, &name),
                    postgres: Some((server.clone(), name)),
                })
            }
        }
    }

    /// Drops the database (PostgreSQL; SQLite files go with their directory).
    pub(crate) async fn drop_database(self) -> anyhow::Result<()> {
        if let Some((server, name)) = self.postgres {
            let mut admin = PgConnection::connect(&server)
                .await
                .with_context(|| format!("connect to PostgreSQL at {server}"))?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .with_context(|| format!("DROP DATABASE {name}"))?;
            let _ = admin.close().await;
        }
        Ok(())
    }
}

/// Finds the `graphhooks` binary: `--server-binary`, else next to this executable.
pub(crate) fn find_server_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!("--server-binary {} does not exist", path.display());
    }
    let exe = std::env::current_exe().context("where is graphhooks-bench?")?;
    let dir = exe.parent().context("graphhooks-bench has no directory")?;
    let candidate = dir.join("graphhooks");
    if candidate.is_file() {
        return Ok(candidate);
    }
    bail!(
        "the graphhooks server binary is not next to graphhooks-bench ({} is missing); build it with \
         `cargo build --release -p graphhooks -p graphhooks-bench`, or pass --server-binary PATH",
        candidate.display()
    )
}

/// `graphhooks --version`.
pub(crate) async fn server_version(binary: &Path) -> anyhow::Result<String> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .await
        .with_context(|| format!("run {} --version", binary.display()))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`, 100 when unknown).
pub(crate) fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a process, in clock ticks.
pub(crate) fn cpu_ticks(pid: &str) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' come field 3 (state) onwards; utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// Busy clock ticks of the whole machine (every CPU), from the first line of `/proc/stat`.
pub(crate) fn machine_busy_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait.
    Ok(fields
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, v)| v)
        .sum())
}

/// utime + stime of every process whose command name is `comm` (e.g. the `postgres` server
/// and its backends), in clock ticks.
pub(crate) fn cpu_ticks_of_command(comm: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let pid = name.to_str()?;
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            (stat.get(open + 1..close)? == comm).then(|| cpu_ticks(pid).ok())?
        })
        .sum()
}

/// (VmRSS, VmHWM) of a process, in KiB.
pub(crate) fn memory_kib(pid: &str) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// A running `graphhooks serve`; killed when dropped.
pub(crate) struct ServeProcess {
    child: Child,
    pid: String,
    /// `http://ADDR`.
    pub(crate) base: String,
    stderr_path: PathBuf,
}

impl ServeProcess {
    /// Starts `graphhooks serve` on `database`, trusting `ca_path`, with `extra` flags; its
    /// log goes to `dir/serve.log`.
    pub(crate) async fn spawn(
        binary: &Path,
        database: &str,
        ca_path: &Path,
        extra: &[String],
        dir: &Path,
    ) -> anyhow::Result<ServeProcess> {
        let stderr_path = dir.join("serve.log");
        let stderr = std::fs::File::create(&stderr_path)
            .with_context(|| format!("create {}", stderr_path.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--database")
            .arg(database)
            .arg("--admin-token")
            .arg(ADMIN_TOKEN)
            .arg("--callback-ca")
            .arg(ca_path)
            .arg("--allow-private-callbacks")
            .args(extra)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        // The operator's GRAPHHOOKS_* settings would change what is measured.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GRAPHHOOKS_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("start {} serve", binary.display()))?;
        let pid = child.id().context("the server exited at once")?.to_string();
        let stdout = child.stdout.take().context("stdout is piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(address) = line.strip_prefix("graphhooks: listening on ") {
                    return Ok::<_, std::io::Error>(Some(address.trim().to_owned()));
                }
            }
            Ok(None)
        })
        .await;
        let base = match base {
            Ok(Ok(Some(base))) => base,
            _ => {
                let _ = child.start_kill();
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                bail!(
                    "graphhooks serve did not start listening; its log:\n{}",
                    tail(&log, 40)
                );
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServeProcess {
            child,
            pid,
            base,
            stderr_path,
        })
    }

    /// CPU seconds used so far.
    pub(crate) fn cpu_ticks(&self) -> anyhow::Result<u64> {
        cpu_ticks(&self.pid)
    }

    /// (VmRSS, VmHWM) in KiB.
    pub(crate) fn memory_kib(&self) -> anyhow::Result<(u64, u64)> {
        memory_kib(&self.pid)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> &str {
        &self.pid
    }

    /// The last lines of its log (for errors).
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        tail(
            &std::fs::read_to_string(&self.stderr_path).unwrap_or_default(),
            lines,
        )
    }

    /// Whether it is still running.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Ends it (SIGKILL: what is measured has been read; a graceful stop would wait for
    /// hanging callbacks) and waits for it.
    pub(crate) async fn kill(mut self) {
        // Already gone is fine.
        let _ = self.child.kill().await;
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }

    #[test]
    fn own_cpu_and_memory_are_readable() {
        let pid = std::process::id().to_string();
        assert!(cpu_ticks(&pid).is_ok());
        let (rss, hwm) = memory_kib(&pid).unwrap();
        assert!(rss > 0 && hwm >= rss);
    }
}
