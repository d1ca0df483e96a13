//! A private PostgreSQL server for tests that must stop and start it (the shared one on 5432
//! serves every other test and must stay up). It lives in a temporary directory on a free port,
//! and is run as the `postgres` user when the tests run as root, since PostgreSQL refuses root.

use std::path::PathBuf;
use std::process::Command;

/// A PostgreSQL server of our own.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    as_postgres_user: bool,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn bindir() -> PathBuf {
    let output = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("pg_config is installed");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

impl PrivatePostgres {
    /// Creates a cluster with `initdb` and starts it.
    pub fn start() -> PrivatePostgres {
        let dir = tempfile::Builder::new()
            .prefix("graphhooks-pg")
            .tempdir_in("/tmp")
            .expect("a temporary directory");
        let as_postgres_user = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let server = PrivatePostgres {
            dir,
            port: free_port(),
            bin: bindir(),
            as_postgres_user,
        };
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(server.dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        server.run(&[
            "initdb",
            "-D",
            &server.data(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        server.start_again();
        server
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, args: &[&str]) {
        let program = self.bin.join(args[0]);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        let output = command
            .args(&args[1..])
            .output()
            .expect("run a PostgreSQL tool");
        assert!(
            output.status.success(),
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.run(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-o",
            &options,
            "-l",
            &log,
            "-w",
            "-t",
            "30",
            "start",
        ]);
    }

    /// Stops the server (fast shutdown: sessions are disconnected).
    pub fn stop(&self) {
        self.run(&[
            "pg_ctl",
            "-D",
            &self.data(),
            "-m",
            "fast",
            "-w",
            "-t",
            "30",
            "stop",
        ]);
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let data = self.data();
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}
