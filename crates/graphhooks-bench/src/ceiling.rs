//! The bare ceiling: POSTs/s of a trivial client straight to the receiver, with the client
//! stack the server delivers with (hyper-util's pooled legacy client over hyper-rustls, ring,
//! HTTP/1.1, trusting the bench CA) and the server's per-callback concurrency. Every other
//! throughput is also given as a fraction of this.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use graphhooks_testkit::TestCa;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_rustls::TlsAcceptor;

use crate::receiver::{Keying, Receiver};

/// How much longer than its run the separate-process client may take before it is killed.
const CHILD_MARGIN: Duration = Duration::from_secs(30);

/// What the ceiling run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Ceiling {
    /// POSTs answered per second.
    pub(crate) posts_per_s: f64,
    /// Concurrent requests.
    pub(crate) concurrency: usize,
    /// How long it ran.
    pub(crate) seconds: f64,
    /// Requests that failed.
    pub(crate) errors: u64,
}

/// Both ceilings against a receiver of their own, each `concurrency` request loops for
/// `duration`: first from this process, then from a child (see [`measure_in_child`]).
pub(crate) async fn measure_both(
    ca: &TestCa,
    ca_path: &Path,
    acceptor: TlsAcceptor,
    epoch: Instant,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<(Ceiling, Ceiling)> {
    let receiver = Receiver::start(acceptor, epoch, Keying::ByChange, 1, 1).await?;
    let here = measure(ca, &receiver, concurrency, duration).await?;
    let separate = measure_in_child(ca_path, &receiver, concurrency, duration).await?;
    Ok((here, separate))
}

/// Runs `concurrency` request loops against `receiver` for `duration`, in this process.
async fn measure(
    ca: &TestCa,
    receiver: &Receiver,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Ceiling> {
    let url: http::Uri = receiver
        .url("/bare/0")
        .parse()
        .context("the receiver's URL")?;
    let before = receiver.tally.bare_posts();
    let driven = drive(ca.client_config(), url, concurrency, duration).await;
    let posts = receiver.tally.bare_posts() - before;
    Ok(Ceiling {
        posts_per_s: posts as f64 / driven.seconds,
        concurrency,
        seconds: driven.seconds,
        errors: driven.errors,
    })
}

/// Runs the same request loops from a child process (this executable in client mode, see
/// [`client_main`]): the server delivers from its own process too, so this ceiling pays the
/// same cross-process scheduling as the server does, which the in-process one does not. The
/// rate counts the answers the child received over its own run (the in-process one counts the
/// POSTs the receiver took); the receiver must have taken at least as many.
async fn measure_in_child(
    ca_path: &Path,
    receiver: &Receiver,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Ceiling> {
    let exe = std::env::current_exe().context("the bench's own executable")?;
    let url = receiver.url("/bare/0");
    let before = receiver.tally.bare_posts();
    let child = tokio::process::Command::new(&exe)
        .arg("--ceiling-client")
        .arg(&url)
        .arg("--ceiling-client-ca")
        .arg(ca_path)
        .arg("--ceiling-seconds")
        .arg(duration.as_secs_f64().to_string())
        .arg("--ceiling-concurrency")
        .arg(concurrency.to_string())
        .kill_on_drop(true)
        .output();
    // Its loops stop at `duration`; the margin covers start-up and the last answers.
    let output = tokio::time::timeout(duration + CHILD_MARGIN, child)
        .await
        .context("the ceiling client did not finish in time")?
        .with_context(|| format!("run {} as the ceiling client", exe.display()))?;
    if !output.status.success() {
        anyhow::bail!(
            "the ceiling client failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let driven: Driven =
        serde_json::from_slice(&output.stdout).context("the ceiling client's report")?;
    let received = receiver.tally.bare_posts() - before;
    if received < driven.answered {
        anyhow::bail!(
            "the ceiling client counted {} answers but the receiver only {received} POSTs",
            driven.answered
        );
    }
    Ok(Ceiling {
        posts_per_s: driven.answered as f64 / driven.seconds,
        concurrency,
        seconds: driven.seconds,
        errors: driven.errors,
    })
}

/// Client mode: drives `url` and prints what it did as JSON on stdout.
pub(crate) async fn client_main(
    url: &str,
    ca_path: &Path,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_path)
        .with_context(|| format!("read {}", ca_path.display()))?
    {
        let cert = cert.with_context(|| format!("a certificate in {}", ca_path.display()))?;
        roots.add(cert).context("the bench CA")?;
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let url: http::Uri = url.parse().context("the ceiling client's URL")?;
    let driven = drive(tls, url, concurrency, duration).await;
    println!("{}", serde_json::to_string(&driven)?);
    Ok(())
}

/// What one run of the request loops did.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Driven {
    /// Requests answered (any status).
    answered: u64,
    errors: u64,
    seconds: f64,
}

/// `concurrency` loops of POSTs to `url` for `duration`, each waiting for its answer.
async fn drive(
    tls: rustls::ClientConfig,
    url: http::Uri,
    concurrency: usize,
    duration: Duration,
) -> Driven {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    // As the server's callback client is built.
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .pool_timer(TokioTimer::new())
        .build(https);
    let errors = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency.max(1) {
        let client = client.clone();
        let url = url.clone();
        let errors = errors.clone();
        let answered = answered.clone();
        tasks.spawn(async move {
            let mut n: u64 = worker as u64;
            while Instant::now() < deadline {
                // About the size of an unbatched notification, with its kind of headers.
                let body = format!(
                    "{{\"object\":\"user\",\"entry\":[{{\"id\":\"u{n}\",\"uid\":\"u{n}\",\"time\":1764288000,\"changes\":[{{\"field\":\"name\",\"value\":{{\"n\":{n}}}}}]}}]}}"
                );
                let request = Request::builder()
                    .method(Method::POST)
                    .uri(url.clone())
                    .header("content-type", "application/json")
                    .header("user-agent", "graphhooks/bench")
                    .header(
                        "x-hub-signature-256",
                        "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756",
                    )
                    .header(
                        "x-hub-signature",
                        "sha1=fc5983fdf1a4e15c8949b8af05322fede4063d27",
                    )
                    .header("x-graphhooks-delivery", n.to_string())
                    .header("x-graphhooks-attempt", "1")
                    .body(Full::new(Bytes::from(body)));
                let Ok(request) = request else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                match client.request(request).await {
                    Ok(response) => {
                        if response.into_body().collect().await.is_ok() {
                            answered.fetch_add(1, Ordering::Relaxed);
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 16;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Driven {
        answered: answered.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    }
}
