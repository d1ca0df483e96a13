//! `graphhooks serve` as a separate process, for what only a process can show: `kill -9`,
//! SIGTERM, and the printed admin token.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// A running `graphhooks serve`.
pub struct ServeProcess {
    child: Child,
    pub base: String,
    /// The token printed at first start, if this start generated one.
    pub printed_token: Option<String>,
    lines: mpsc::UnboundedReceiver<String>,
}

impl ServeProcess {
    /// Starts `graphhooks serve --listen 127.0.0.1:0 <args>` and waits for it to listen.
    pub async fn spawn(args: &[&str], env: &[(&str, &str)]) -> ServeProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_graphhooks"));
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(args)
            .env_remove("GRAPHHOOKS_ADMIN_TOKEN")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start graphhooks serve");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, mut lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut printed_token = None;
        let base = loop {
            let line = tokio::time::timeout(super::WAIT, lines.recv())
                .await
                .expect("graphhooks prints its address in time")
                .expect("graphhooks exited before listening");
            if let Some(token) = line.split("save it): ").nth(1) {
                printed_token = Some(token.trim().to_owned());
            }
            if let Some(address) = line.strip_prefix("graphhooks: listening on ") {
                break address.trim().to_owned();
            }
        };
        ServeProcess {
            child,
            base,
            printed_token,
            lines,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process is running")
    }

    /// `kill -9`, and wait for it to be gone.
    pub async fn kill9(mut self) {
        self.child.start_kill().expect("send SIGKILL");
        tokio::time::timeout(super::WAIT, self.child.wait())
            .await
            .expect("the process dies")
            .expect("wait for the process");
    }

    /// SIGTERM, and wait for a clean exit within `within`.
    pub async fn terminate(mut self, within: Duration) -> std::process::ExitStatus {
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("graphhooks stops in time after SIGTERM")
            .expect("wait for the process")
    }

    /// Lines printed so far (stdout).
    pub fn drain_lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(line) = self.lines.try_recv() {
            out.push(line);
        }
        out
    }
}
