//! Test support: [`TestServer`] starts graphhooks in-process (the same `Server::build` path as
//! `main`), [`http`] is a small client, and helpers wrap one endpoint each.

#![allow(
    dead_code,
    reason = "each test module uses a different part of the support code"
)]

pub mod http;
pub mod postgres;
pub mod process;

use std::sync::Arc;
use std::time::Duration;

use ::http::{Method, StatusCode};
use graphhooks_server::{Config, DatabaseUrl, Server};
use graphhooks_store::Store;
use graphhooks_store_postgres::testing::TestDatabase;
use graphhooks_store_postgres::{PostgresOptions, PostgresStore};
use graphhooks_store_sqlite::{SqliteOptions, SqliteStore};
use graphhooks_testkit::{Receiver, TestCa};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use self::http::Response;

/// Longest wait for anything in these tests.
pub const WAIT: Duration = Duration::from_secs(10);
/// The admin token of in-process servers.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Installs a log subscriber once when `TEST_LOG` is set.
pub fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

/// An app created through the operator API.
#[derive(Debug, Clone)]
pub struct TestApp {
    pub id: String,
    pub secret: String,
}

impl TestApp {
    /// The app access token.
    pub fn token(&self) -> String {
        format!("{}|{}", self.id, self.secret)
    }
}

/// Which store the in-process servers use: SQLite unless `GRAPHHOOKS_TEST_STORE=postgres`, so
/// the same suite runs on both backends.
pub fn postgres_selected() -> bool {
    std::env::var("GRAPHHOOKS_TEST_STORE").is_ok_and(|v| v.eq_ignore_ascii_case("postgres"))
}

/// Where a test server's data lives.
pub enum Data {
    /// A SQLite file in the server's directory.
    Sqlite(std::path::PathBuf),
    /// A throwaway PostgreSQL database.
    Postgres(TestDatabase),
}

impl Data {
    async fn create(dir: &std::path::Path) -> Data {
        if postgres_selected() {
            Data::Postgres(TestDatabase::create().await)
        } else {
            Data::Sqlite(dir.join("graphhooks.db"))
        }
    }

    fn url(&self) -> DatabaseUrl {
        match self {
            Data::Sqlite(path) => DatabaseUrl::Sqlite(path.clone()),
            Data::Postgres(database) => DatabaseUrl::Postgres(database.url.clone()),
        }
    }

    /// Opens a store on this data.
    pub async fn open(&self) -> Arc<dyn Store> {
        match self {
            Data::Sqlite(path) => {
                Arc::new(SqliteStore::open(path, SqliteOptions::default()).expect("open SQLite"))
            }
            Data::Postgres(database) => {
                let options = PostgresOptions {
                    pool_size: 4,
                    ..PostgresOptions::default()
                };
                Arc::new(
                    PostgresStore::open(&database.url, options)
                        .await
                        .expect("open PostgreSQL"),
                )
            }
        }
    }
}

/// What is left of a stopped server: its data, to inspect.
pub struct Stopped {
    pub dir: tempfile::TempDir,
    pub data: Data,
}

/// graphhooks running in this process.
pub struct TestServer {
    pub base: String,
    pub ca: Arc<TestCa>,
    data: Option<Data>,
    dir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

/// Settings most tests want: private (loopback) callbacks allowed, the test CA trusted, a short
/// retry schedule, a short timeout.
pub fn test_config(ca_path: &std::path::Path, database: &DatabaseUrl) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        database: database.clone(),
        admin_token: Some(ADMIN_TOKEN.into()),
        callback_ca: Some(ca_path.to_path_buf()),
        allow_private_callbacks: true,
        allow_http_callbacks: false,
        retry: graphhooks_core::retry::RetryPolicy {
            schedule: vec![
                Duration::ZERO,
                Duration::from_millis(200),
                Duration::from_millis(400),
            ],
            window: Duration::from_secs(60),
        },
        delivery_timeout: Duration::from_secs(5),
        batch_linger: Duration::from_millis(5),
        // Tests poll the Graph API in loops; the limit has its own test.
        graph_rate_limit: 0,
        ..Config::default()
    }
}

impl TestServer {
    /// Starts a server with [`test_config`].
    pub async fn start() -> TestServer {
        Self::start_with(Arc::new(TestCa::new()), |_| {}).await
    }

    /// Starts a server with [`test_config`] changed by `adjust`, trusting `ca`.
    pub async fn start_with(ca: Arc<TestCa>, adjust: impl FnOnce(&mut Config)) -> TestServer {
        init_logging();
        let dir = tempfile::tempdir().expect("temporary directory");
        let ca_path = ca.write_pem(dir.path());
        let data = Data::create(dir.path()).await;
        let mut config = test_config(&ca_path, &data.url());
        adjust(&mut config);
        let store = data.open().await;
        let server = Server::build(config, store)
            .await
            .expect("build the server");
        let base = format!("http://{}", server.local_addr());
        let (shutdown, stop) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .run_until(async {
                    let _ = stop.await;
                })
                .await
                .expect("server run");
        });
        TestServer {
            base,
            ca,
            data: Some(data),
            dir: Some(dir),
            shutdown: Some(shutdown),
            handle: Some(handle),
        }
    }

    /// The server's data directory (database, CA file).
    pub fn dir(&self) -> &std::path::Path {
        self.dir
            .as_ref()
            .expect("the directory lives as long as the server")
            .path()
    }

    /// Stops the server gracefully, waits for it, and hands back its data.
    pub async fn stop(mut self) -> Stopped {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(WAIT * 2, handle)
                .await
                .expect("the server stops in time")
                .expect("the server task ends cleanly");
        }
        Stopped {
            dir: self.dir.take().expect("the directory"),
            data: self.data.take().expect("the data"),
        }
    }

    /// A receiver with this server's CA.
    pub async fn receiver(&self) -> Receiver {
        Receiver::builder().start(&self.ca).await
    }

    /// Calls the operator API with the admin token.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        http::request(
            method,
            &format!("{}{path}", self.base),
            &[("authorization", format!("Bearer {ADMIN_TOKEN}"))],
            body.map(|b| ("application/json", b.to_string().into_bytes())),
        )
        .await
    }

    /// Calls the Graph API.
    pub async fn graph(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Response {
        http::request(method, &format!("{}{path}", self.base), headers, body).await
    }

    /// Creates an app.
    pub async fn create_app(&self, mode: &str) -> TestApp {
        let response = self
            .admin(
                Method::POST,
                "/admin/apps",
                Some(json!({"name": "test app", "mode": mode})),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
        TestApp {
            id: response.json["id"].as_str().expect("id").to_owned(),
            secret: response.json["secret"].as_str().expect("secret").to_owned(),
        }
    }

    /// Subscribes `app` through the Graph API (JSON body); returns the raw response.
    pub async fn subscribe(
        &self,
        app: &TestApp,
        object: &str,
        fields: &[&str],
        callback_url: &str,
        include_values: bool,
    ) -> Response {
        self.graph(
            Method::POST,
            &format!("/v25.0/{}/subscriptions", app.id),
            &[("authorization", format!("Bearer {}", app.token()))],
            Some((
                "application/json",
                json!({
                    "object": object,
                    "fields": fields,
                    "callback_url": callback_url,
                    "verify_token": "verify-me",
                    "include_values": include_values,
                })
                .to_string()
                .into_bytes(),
            )),
        )
        .await
    }

    /// Subscribes and asserts success, consuming the handshake from the receiver.
    pub async fn subscribe_ok(
        &self,
        app: &TestApp,
        object: &str,
        fields: &[&str],
        receiver: &Receiver,
        path: &str,
    ) {
        let response = self
            .subscribe(app, object, fields, &receiver.url(path), true)
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
        assert_eq!(response.json, json!({"success": true}));
        let handshake = receiver.next(WAIT).await.expect("the handshake GET");
        assert_eq!(handshake.method, Method::GET);
    }

    /// Grants `app` the object with permissions.
    pub async fn grant(
        &self,
        app: &TestApp,
        object_type: &str,
        object_id: &str,
        permissions: &[&str],
    ) {
        let response = self
            .admin(
                Method::PUT,
                &format!("/admin/apps/{}/grants/{object_type}/{object_id}", app.id),
                Some(json!({"permissions": permissions})),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    }

    /// Pushes changes; returns their ids.
    pub async fn push(&self, changes: Vec<Value>) -> Vec<String> {
        let response = self
            .admin(
                Method::POST,
                "/admin/changes",
                Some(json!({"changes": changes})),
            )
            .await;
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
        response.json["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|id| id.as_str().expect("string id").to_owned())
            .collect()
    }

    /// Reads the delivery log until `check` accepts it. There is no event for "the outcome was
    /// recorded" (it follows the receiver's answer), so this polls, bounded by [`WAIT`].
    pub async fn deliveries_until(&self, query: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let response = self
                .admin(Method::GET, &format!("/admin/deliveries?{query}"), None)
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

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
    }
}

/// Hex HMAC-SHA256 of `body` with `secret`, as a receiver computes it.
pub fn sign256(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A change for the operator API.
pub fn change(object: &str, id: &str, field: &str, value: Value) -> Value {
    json!({"object": object, "id": id, "field": field, "value": value})
}
