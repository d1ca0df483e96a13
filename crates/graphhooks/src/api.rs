//! A small client of the operator API for the script commands: they go through HTTP, like any
//! other client, so they exercise exactly what operators' own tools use.

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Where the server is and how to authenticate.
#[derive(Clone, Args)]
pub(crate) struct ApiArgs {
    /// Base URL of a running graphhooks
    #[arg(
        long,
        env = "GRAPHHOOKS_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub(crate) url: String,
    /// The admin token
    #[arg(
        long,
        env = "GRAPHHOOKS_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub(crate) admin_token: Option<String>,
}

impl std::fmt::Debug for ApiArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiArgs")
            .field("url", &self.url)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

impl ApiArgs {
    /// Calls the operator API; returns the JSON answer, or fails with the API's own message.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let token = self
            .admin_token
            .as_deref()
            .context("no admin token: pass --admin-token or set GRAPHHOOKS_ADMIN_TOKEN")?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let payload = match &body {
            Some(value) => Bytes::from(serde_json::to_vec(value)?),
            None => Bytes::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(payload))
            .with_context(|| format!("{url} is not a valid URL"))?;
        let response = client
            .request(request)
            .await
            .with_context(|| format!("cannot reach graphhooks at {}", self.url))?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            bail!(
                "{} {}: {message}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
        }
        Ok(value)
    }
}

/// Prints a JSON answer (nothing for an empty one).
pub(crate) fn print(value: &Value) -> anyhow::Result<()> {
    use std::io::Write as _;
    if value.is_null() {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}
