//! Test support: the real graphhooks server in-process on SQLite (plain-HTTP loopback callbacks
//! allowed), a small HTTP client, and receivers built from this crate's axum integration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use graphhooks_receiver::Verifier;
use graphhooks_receiver::axum::{VerifiedNotification, VerifyToken, handshake};
use graphhooks_server::{Config, DatabaseUrl, Server};
use graphhooks_store_sqlite::{SqliteOptions, SqliteStore};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// Longest wait for any one event.
pub const WAIT: Duration = Duration::from_secs(10);
/// The admin token of the in-process server.
const ADMIN_TOKEN: &str = "receiver-test-admin-token-0123";
/// The verify token the tests subscribe with.
pub const VERIFY_TOKEN: &str = "verify-me";

/// A response: status, text and (when it parses) JSON.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub text: String,
    pub json: Value,
}

/// Sends one request; `body` is JSON when given.
pub async fn request(
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Response {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("a valid request");
    let response = tokio::time::timeout(WAIT, client.request(request))
        .await
        .expect("an answer in time")
        .expect("an answer");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    Response {
        status,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// An app of the server under test.
#[derive(Debug, Clone)]
pub struct TestApp {
    pub id: String,
    pub secret: String,
}

/// graphhooks running in this process on a temporary SQLite file.
pub struct TestServer {
    base: String,
    _dir: tempfile::TempDir,
    _shutdown: oneshot::Sender<()>,
}

impl TestServer {
    /// Starts the server with plain-HTTP loopback callbacks allowed and a short retry schedule
    /// (one retry, so a refused delivery shows in the log at once and stops soon).
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("graphhooks.db");
        let config = Config {
            listen: "127.0.0.1:0".parse().expect("an address"),
            database: DatabaseUrl::Sqlite(path.clone()),
            admin_token: Some(ADMIN_TOKEN.into()),
            allow_http_callbacks: true,
            allow_private_callbacks: true,
            retry: graphhooks_core::retry::RetryPolicy {
                schedule: vec![Duration::from_secs(30)],
                window: Duration::from_secs(60),
            },
            delivery_timeout: Duration::from_secs(5),
            batch_linger: Duration::from_millis(5),
            ..Config::default()
        };
        let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open SQLite");
        let server = Server::build(config, Arc::new(store))
            .await
            .expect("build the server");
        let base = format!("http://{}", server.local_addr());
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            server
                .run_until(async {
                    // Dropping the sender (with the TestServer) stops the server too.
                    let _ = stop.await;
                })
                .await
                .expect("the server runs");
        });
        TestServer {
            base,
            _dir: dir,
            _shutdown: shutdown,
        }
    }

    /// Calls the operator API.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        request(
            method,
            &format!("{}{path}", self.base),
            &[("authorization", format!("Bearer {ADMIN_TOKEN}"))],
            body.map(|body| body.to_string().into_bytes()),
        )
        .await
    }

    /// Creates a live app.
    pub async fn create_app(&self) -> TestApp {
        let response = self
            .admin(
                Method::POST,
                "/admin/apps",
                Some(json!({"name": "receiver test", "mode": "live"})),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
        TestApp {
            id: response.json["id"].as_str().expect("an id").to_owned(),
            secret: response.json["secret"]
                .as_str()
                .expect("a secret")
                .to_owned(),
        }
    }

    /// Subscribes `app` to `user` `about` at `callback_url` through the Graph API (which runs the
    /// handshake against it), and grants it user 1021.
    pub async fn subscribe(
        &self,
        app: &TestApp,
        callback_url: &str,
        verify_token: &str,
    ) -> Response {
        let response = request(
            Method::POST,
            &format!("{}/v25.0/{}/subscriptions", self.base, app.id),
            &[("authorization", format!("Bearer {}|{}", app.id, app.secret))],
            Some(
                json!({
                    "object": "user",
                    "fields": ["about"],
                    "callback_url": callback_url,
                    "verify_token": verify_token,
                    "include_values": true,
                })
                .to_string()
                .into_bytes(),
            ),
        )
        .await;
        if response.status == StatusCode::OK {
            let grant = self
                .admin(
                    Method::PUT,
                    &format!("/admin/apps/{}/grants/user/1021", app.id),
                    Some(json!({"permissions": []})),
                )
                .await;
            assert_eq!(grant.status, StatusCode::OK, "{}", grant.text);
        }
        response
    }

    /// Pushes one `about` change of user 1021.
    pub async fn push_about(&self, value: Value) {
        let response = self
            .admin(
                Method::POST,
                "/admin/changes",
                Some(json!({"changes": [
                    {"object": "user", "id": "1021", "field": "about", "value": value}
                ]})),
            )
            .await;
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    }

    /// Rotates the app's secret with a grace period (`"1h"`, `"0s"`); returns the new secret.
    pub async fn rotate(&self, app: &TestApp, grace_period: &str) -> String {
        let response = self
            .admin(
                Method::POST,
                &format!("/admin/apps/{}/secret", app.id),
                Some(json!({"grace_period": grace_period})),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
        response.json["secret"]
            .as_str()
            .expect("the new secret")
            .to_owned()
    }

    /// Reads the app's delivery log until `check` accepts it. No event says "the outcome was
    /// recorded" (that follows the receiver's answer), so this polls, bounded by [`WAIT`].
    pub async fn deliveries_until(&self, app: &TestApp, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let response = self
                .admin(
                    Method::GET,
                    &format!("/admin/deliveries?app_id={}", app.id),
                    None,
                )
                .await;
            assert_eq!(response.status, StatusCode::OK, "{}", response.text);
            if check(&response.json) {
                return response.json;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the delivery log never matched: {}",
                response.text
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A receiver built from this crate's axum integration, whose verifier the test can swap (as a
/// deployment would on a configuration reload). Verified notifications go down a channel.
pub struct TestReceiver {
    pub url: String,
    verifier: Arc<RwLock<Verifier>>,
    received: mpsc::UnboundedReceiver<VerifiedNotification>,
    _shutdown: oneshot::Sender<()>,
}

/// The receiver's state: the swappable verifier and the token.
#[derive(Clone)]
struct ReceiverState {
    verifier: Arc<RwLock<Verifier>>,
    verify_token: VerifyToken,
    sender: mpsc::UnboundedSender<VerifiedNotification>,
}

impl FromRef<ReceiverState> for Verifier {
    fn from_ref(state: &ReceiverState) -> Verifier {
        state.verifier.read().expect("not poisoned").clone()
    }
}

impl FromRef<ReceiverState> for VerifyToken {
    fn from_ref(state: &ReceiverState) -> VerifyToken {
        state.verify_token.clone()
    }
}

impl TestReceiver {
    /// Serves `GET` (handshake) and `POST` (verified notifications) at `/hook` on a free port.
    pub async fn start(verifier: Verifier, verify_token: &str) -> TestReceiver {
        let verifier = Arc::new(RwLock::new(verifier));
        let (sender, received) = mpsc::unbounded_channel();
        let state = ReceiverState {
            verifier: verifier.clone(),
            verify_token: VerifyToken::new(verify_token),
            sender,
        };
        async fn notification(
            axum::extract::State(state): axum::extract::State<ReceiverState>,
            verified: VerifiedNotification,
        ) -> StatusCode {
            let _ = state.sender.send(verified);
            StatusCode::OK
        }
        let app = Router::new()
            .route("/hook", get(handshake).post(notification))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("an address");
        let (shutdown, stop) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await
                .expect("the receiver serves");
        });
        TestReceiver {
            url: format!("http://{address}/hook"),
            verifier,
            received,
            _shutdown: shutdown,
        }
    }

    /// Replaces the verifier (as a redeploy with new secrets would).
    pub fn set_verifier(&self, verifier: Verifier) {
        *self.verifier.write().expect("not poisoned") = verifier;
    }

    /// The next verified notification, within [`WAIT`].
    pub async fn next(&mut self) -> VerifiedNotification {
        tokio::time::timeout(WAIT, self.received.recv())
            .await
            .expect("a verified notification in time")
            .expect("the receiver is running")
    }

    /// Whether a verified notification is waiting (it never blocks).
    pub fn has_pending(&mut self) -> bool {
        !self.received.is_empty()
    }
}

/// A variable cargo sets for this test, as it runs. Not `env!`: test binaries are reused from a
/// shared target directory by clones of the workspace at other paths (cargo hashes workspace
/// members by relative path), and a compile-time path would name whichever clone built the
/// binary, or one since deleted.
fn runtime_env(name: &str) -> std::ffi::OsString {
    std::env::var_os(name).unwrap_or_else(|| panic!("cargo sets {name} when it runs tests"))
}

/// The example binary, built now (a no-op when `cargo test` already built it), so the test never
/// runs a stale one.
///
/// `cargo` runs with the variables it set for this test binary removed: build scripts watch some
/// of them (`CARGO_MANIFEST_DIR`), and seeing them changed would rebuild their crates.
pub async fn example_binary() -> PathBuf {
    let mut command = tokio::process::Command::new(runtime_env("CARGO"));
    command
        // `--workspace` resolves features as `cargo test --workspace` (CI, `scripts/test`) does,
        // so the build is fresh there; the dev-dependency on this crate turns `axum` on.
        .args([
            "build",
            "--workspace",
            "--example",
            "receiver",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(runtime_env("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_by_cargo_for_tests = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix));
        if set_by_cargo_for_tests {
            command.env_remove(name);
        }
    }
    // A cold build of the example can take minutes on a small machine; bounded all the same.
    let output = tokio::time::timeout(Duration::from_secs(900), command.output())
        .await
        .expect("cargo builds the example in time")
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building the example failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact"
                && message["target"]["name"] == "receiver"
                && message["manifest_path"]
                    .as_str()
                    .is_some_and(|path| path.ends_with("graphhooks-receiver/Cargo.toml"))
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the example's executable")
}
