//! Talking to the server under test over plain HTTP with keep-alive (hyper-util's pooled
//! client): the operator API for apps, grants and changes, and the Graph API for subscriptions
//! (the server runs the real handshake against the receiver).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::receiver::VERIFY_TOKEN;
use crate::server::ADMIN_TOKEN;

/// Longest wait for one API call.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// An app made for the bench.
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) id: String,
    pub(crate) secret: String,
}

/// A client of one server.
#[derive(Clone)]
pub(crate) struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    base: Arc<str>,
}

impl Api {
    /// A client of the server at `base` (`http://ADDR`).
    pub(crate) fn new(base: &str) -> Api {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            // Below the server's 75 s limit for an idle connection, so a request never races
            // the server closing the connection it was about to use.
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Api {
            client,
            base: base.into(),
        }
    }

    /// Sends a request; returns the status, when the response head came, and the body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        authorization: &str,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Instant, Bytes)> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", authorization)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .context("build a request")?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let head = Instant::now();
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, head, body))
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .with_context(|| format!("{path}: no answer within {CALL_TIMEOUT:?}"))?
            .with_context(|| format!("{path}: request failed"))
    }

    /// Calls the operator API; fails unless the status is `expected`.
    async fn admin(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        expected: StatusCode,
    ) -> anyhow::Result<Value> {
        let (status, _, bytes) = self
            .call(
                method,
                path,
                &format!("Bearer {ADMIN_TOKEN}"),
                Bytes::from(body.to_string()),
            )
            .await?;
        if status != expected {
            bail!(
                "{path} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Creates a live app.
    pub(crate) async fn create_app(&self, name: &str) -> anyhow::Result<App> {
        let created = self
            .admin(
                Method::POST,
                "/admin/apps",
                &json!({"name": name, "mode": "live"}),
                StatusCode::CREATED,
            )
            .await?;
        Ok(App {
            id: created["id"].as_str().context("no app id")?.to_owned(),
            secret: created["secret"]
                .as_str()
                .context("no app secret")?
                .to_owned(),
        })
    }

    /// Grants `app` the object with `permissions`.
    pub(crate) async fn grant(
        &self,
        app: &App,
        object_type: &str,
        object_id: &str,
        permissions: &[&str],
    ) -> anyhow::Result<()> {
        self.admin(
            Method::PUT,
            &format!("/admin/apps/{}/grants/{object_type}/{object_id}", app.id),
            &json!({"permissions": permissions}),
            StatusCode::OK,
        )
        .await
        .map(drop)
    }

    /// Subscribes `app` through the Graph API (the server runs the handshake first).
    pub(crate) async fn subscribe(
        &self,
        app: &App,
        object: &str,
        fields: &[&str],
        callback_url: &str,
    ) -> anyhow::Result<()> {
        let body = json!({
            "object": object,
            "fields": fields,
            "callback_url": callback_url,
            "verify_token": VERIFY_TOKEN,
            "include_values": true,
        });
        let (status, _, bytes) = self
            .call(
                Method::POST,
                &format!("/v25.0/{}/subscriptions", app.id),
                &format!("Bearer {}|{}", app.id, app.secret),
                Bytes::from(body.to_string()),
            )
            .await?;
        if status != StatusCode::OK {
            bail!(
                "subscribing app {} answered {status}: {}",
                app.id,
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(())
    }

    /// Posts a `/admin/changes` body; returns when the 202 head arrived.
    pub(crate) async fn post_changes(&self, body: Bytes) -> anyhow::Result<Instant> {
        let (status, head, bytes) = self
            .call(
                Method::POST,
                "/admin/changes",
                &format!("Bearer {ADMIN_TOKEN}"),
                body,
            )
            .await?;
        if status != StatusCode::ACCEPTED {
            bail!(
                "/admin/changes answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(head)
    }
}

/// One change of the bench: its `n` is what the receiver finds in the body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChangeSpec<'a> {
    pub(crate) object: &'a str,
    pub(crate) field: &'a str,
}

/// The `/admin/changes` body for changes `ns`, change `n` going to object id `id(n)`.
pub(crate) fn changes_body(
    spec: ChangeSpec<'_>,
    ns: std::ops::Range<usize>,
    id: impl Fn(usize) -> String,
) -> Bytes {
    let mut body = String::with_capacity(16 + ns.len() * 72);
    body.push_str("{\"changes\":[");
    for (index, n) in ns.enumerate() {
        if index > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            "{{\"object\":\"{}\",\"id\":\"{}\",\"field\":\"{}\",\"value\":{{\"n\":{n}}}}}",
            spec.object,
            id(n),
            spec.field
        );
    }
    body.push_str("]}");
    Bytes::from(body)
}

/// Runs `work(i)` for every `i` in `0..count` on `workers` concurrent tasks; the first error
/// wins.
pub(crate) async fn for_each_concurrently<F, Fut>(
    count: usize,
    workers: usize,
    work: F,
) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(work);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let next = next.clone();
        let work = work.clone();
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                work(i).await?;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a worker task failed")??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_bodies_are_json() {
        let body = changes_body(
            ChangeSpec {
                object: "user",
                field: "name",
            },
            3..5,
            |n| format!("u{n}"),
        );
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["changes"][1]["id"], "u4");
        assert_eq!(value["changes"][0]["value"]["n"], 3);
    }
}
