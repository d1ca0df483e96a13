//! A recording webhook receiver for tests.
//!
//! A [`Receiver`] is an HTTPS server (or plain HTTP with
//! [`ReceiverBuilder::plain_http`]) bound to an ephemeral port on
//! `127.0.0.1`. It serves HTTP/1.1 with keep-alive (and HTTP/2 when a client
//! negotiates it with ALPN, unless [`ReceiverBuilder::http1_only`] is set),
//! records every request it gets as a [`Recorded`], and answers:
//!
//! * `GET` requests (subscription verification handshakes) per the
//!   [`Handshake`] setting: by default it echoes `hub.challenge` when
//!   `hub.verify_token` matches the expected token, else `403 bad token`;
//! * every other request (callback `POST`s) with the next [`Reply`] of the
//!   reply script, or with the default reply once the script is exhausted.
//!
//! Each request is recorded (and counted) as soon as its body has been read,
//! before any reply delay, so tests can observe a request whose answer is
//! still pending. Connections are served concurrently, each on its own task.
//! Dropping the [`Receiver`] aborts the server task and with it every
//! connection task, including requests still sleeping in a delay.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::ca::{IssuedCert, TestCa};

/// The verification token expected by default.
pub const DEFAULT_VERIFY_TOKEN: &str = "verify-me";

/// How long a connection may take to complete its TLS handshake before it is
/// dropped (and counted in [`Receiver::tls_errors`]).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the receiver answers a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code. An invalid code (outside 100..=999) is answered as
    /// 500.
    pub status: u16,
    /// Response body, sent as `text/plain; charset=utf-8`.
    pub body: String,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// `200` with body `"ok"`, answered at once.
    pub fn ok() -> Reply {
        Reply::status(200).with_body("ok")
    }

    /// The given status with an empty body, answered at once.
    pub fn status(code: u16) -> Reply {
        Reply {
            status: code,
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// This reply with the given body.
    pub fn with_body(self, body: impl Into<String>) -> Reply {
        Reply {
            body: body.into(),
            ..self
        }
    }

    /// This reply, sent only after waiting `delay`.
    pub fn with_delay(self, delay: Duration) -> Reply {
        Reply { delay, ..self }
    }

    /// A reply that never comes in practice: `200 ok` after one hour, so the
    /// client times out.
    pub fn hang() -> Reply {
        Reply::ok().with_delay(Duration::from_secs(3600))
    }
}

/// What a `GET` (subscription verification handshake) is answered with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Handshake {
    /// The default: `200` with the `hub.challenge` query parameter as body
    /// when `hub.verify_token` equals the expected token (see
    /// [`ReceiverBuilder::verify_token`]), otherwise `403` with body
    /// `"bad token"`.
    #[default]
    EchoChallenge,
    /// Answer every `GET` with this reply, whatever its query.
    Reply(Reply),
}

/// One request the receiver saw.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Request method.
    pub method: Method,
    /// Request path, without the query.
    pub path: String,
    /// Raw (still percent-encoded) query string, without the `?`.
    pub query: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// The full request body.
    pub body: Bytes,
    /// When the request head was received.
    pub received_at: Instant,
}

impl Recorded {
    /// The value of header `name` (case-insensitive), if present and visible
    /// ASCII. With repeated headers, the first.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first value of query parameter `name`, percent-decoded (with `+`
    /// as a space, as in forms). Parameter names are compared after decoding.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k) == name).then(|| percent_decode(v))
            })
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    ///
    /// If the body is not JSON; the message includes the body text.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "request body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Decodes `%XX` escapes and `+` (as a space); malformed escapes are kept
/// as they are, and invalid UTF-8 is replaced.
fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let decoded = bytes
                    .get(i + 1)
                    .and_then(|&h| hex(h))
                    .zip(bytes.get(i + 2).and_then(|&l| hex(l)));
                match decoded {
                    Some((h, l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Configures and starts a [`Receiver`]; made by [`Receiver::builder`].
#[derive(Clone)]
pub struct ReceiverBuilder {
    verify_token: String,
    handshake: Handshake,
    replies: Vec<Reply>,
    default_reply: Reply,
    client_roots: Option<rustls::RootCertStore>,
    cert: Option<IssuedCert>,
    http1_only: bool,
    plain_http: bool,
}

impl fmt::Debug for ReceiverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverBuilder")
            .field("verify_token", &self.verify_token)
            .field("handshake", &self.handshake)
            .field("replies", &self.replies)
            .field("default_reply", &self.default_reply)
            .field("require_client_cert", &self.client_roots.is_some())
            .field("custom_cert", &self.cert.is_some())
            .field("http1_only", &self.http1_only)
            .field("plain_http", &self.plain_http)
            .finish()
    }
}

impl Default for ReceiverBuilder {
    fn default() -> Self {
        ReceiverBuilder {
            verify_token: DEFAULT_VERIFY_TOKEN.to_owned(),
            handshake: Handshake::EchoChallenge,
            replies: Vec::new(),
            default_reply: Reply::ok(),
            client_roots: None,
            cert: None,
            http1_only: false,
            plain_http: false,
        }
    }
}

impl ReceiverBuilder {
    /// The `hub.verify_token` the echo handshake expects (default
    /// `"verify-me"`).
    pub fn verify_token(self, token: &str) -> Self {
        ReceiverBuilder {
            verify_token: token.to_owned(),
            ..self
        }
    }

    /// How `GET`s are answered (default [`Handshake::EchoChallenge`]).
    pub fn handshake(self, handshake: Handshake) -> Self {
        ReceiverBuilder { handshake, ..self }
    }

    /// Replies for the non-`GET` requests, in order; once they are used up,
    /// the default reply.
    pub fn replies(self, seq: Vec<Reply>) -> Self {
        ReceiverBuilder {
            replies: seq,
            ..self
        }
    }

    /// The reply used when the script is exhausted (default [`Reply::ok`],
    /// i.e. `200` with body `"ok"`).
    pub fn default_reply(self, reply: Reply) -> Self {
        ReceiverBuilder {
            default_reply: reply,
            ..self
        }
    }

    /// Mutual TLS: refuse clients that do not present a certificate chaining
    /// to `roots` (such handshakes count in [`Receiver::tls_errors`]).
    /// Ignored with [`ReceiverBuilder::plain_http`].
    pub fn require_client_cert(self, roots: rustls::RootCertStore) -> Self {
        ReceiverBuilder {
            client_roots: Some(roots),
            ..self
        }
    }

    /// The server certificate. By default one issued by the CA given to
    /// [`ReceiverBuilder::start`] for `localhost` and `127.0.0.1`.
    pub fn cert(self, cert: IssuedCert) -> Self {
        ReceiverBuilder {
            cert: Some(cert),
            ..self
        }
    }

    /// Serve HTTP/1.1 only (ALPN offers only `http/1.1`).
    pub fn http1_only(self) -> Self {
        ReceiverBuilder {
            http1_only: true,
            ..self
        }
    }

    /// Serve plain HTTP without TLS (for `--allow-http-callbacks` tests).
    pub fn plain_http(self) -> Self {
        ReceiverBuilder {
            plain_http: true,
            ..self
        }
    }

    /// Binds `127.0.0.1:0` and starts serving on a background task of the
    /// current tokio runtime.
    ///
    /// # Panics
    ///
    /// If called outside a tokio runtime, if the port cannot be bound, or if
    /// the certificate, key or client roots are unusable (a broken test
    /// setup).
    pub async fn start(self, ca: &TestCa) -> Receiver {
        let acceptor = if self.plain_http {
            None
        } else {
            let cert = self
                .cert
                .clone()
                .unwrap_or_else(|| ca.issue_server(&["localhost", "127.0.0.1"]));
            Some(TlsAcceptor::from(Arc::new(self.server_config(&cert))))
        };

        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding the test receiver to 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("reading the test receiver's bound address");

        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            script: Mutex::new(Script {
                verify_token: self.verify_token,
                handshake: self.handshake,
                replies: self.replies.into(),
                default_reply: self.default_reply,
            }),
            count: Mutex::new(0),
            tls_errors: AtomicUsize::new(0),
            tx,
        });

        let mut http = auto::Builder::new(TokioExecutor::new());
        // No header read timeout: hyper's default (30 s) would also close
        // idle keep-alive connections, racing with clients that reuse them.
        http.http1()
            .timer(TokioTimer::new())
            .keep_alive(true)
            .header_read_timeout(None);
        if self.http1_only {
            http = http.http1_only();
        }

        let task = tokio::spawn(accept_loop(listener, acceptor, http, Arc::clone(&shared)));
        tracing::debug!(%addr, tls = !self.plain_http, "test receiver started");
        Receiver {
            shared,
            rx: Mutex::new(rx),
            addr,
            tls: !self.plain_http,
            task,
        }
    }

    fn server_config(&self, cert: &IssuedCert) -> rustls::ServerConfig {
        let provider = crate::crypto_provider();
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions");
        let builder = match &self.client_roots {
            None => builder.with_no_client_auth(),
            Some(roots) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots.clone()),
                    provider,
                )
                .build()
                .expect("building the client certificate verifier (are the roots empty?)");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(cert.cert_chain(), cert.private_key())
            .expect("the receiver's certificate and key are usable by rustls");
        config.alpn_protocols = if self.http1_only {
            vec![b"http/1.1".to_vec()]
        } else {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        };
        config
    }
}

/// The mutable answering script.
#[derive(Debug)]
struct Script {
    verify_token: String,
    handshake: Handshake,
    replies: VecDeque<Reply>,
    default_reply: Reply,
}

/// State shared between the [`Receiver`] handle and the server tasks.
struct Shared {
    script: Mutex<Script>,
    count: Mutex<usize>,
    tls_errors: AtomicUsize,
    tx: mpsc::UnboundedSender<Recorded>,
}

impl Shared {
    /// Picks the reply for `req`, consuming a scripted reply for non-GETs.
    fn reply_for(&self, req: &Recorded) -> Reply {
        let mut script = lock(&self.script);
        if req.method == Method::GET {
            match &script.handshake {
                Handshake::EchoChallenge => {
                    let token = req.query_param("hub.verify_token");
                    if token.as_deref() == Some(script.verify_token.as_str()) {
                        Reply::status(200)
                            .with_body(req.query_param("hub.challenge").unwrap_or_default())
                    } else {
                        Reply::status(403).with_body("bad token")
                    }
                }
                Handshake::Reply(reply) => reply.clone(),
            }
        } else {
            match script.replies.pop_front() {
                Some(reply) => reply,
                None => script.default_reply.clone(),
            }
        }
    }

    fn record(&self, req: Recorded) {
        *lock(&self.count) += 1;
        // The receiving half lives in the `Receiver`, which owns this
        // `Shared` through an `Arc`; a send error can only occur while the
        // receiver is being dropped, when nobody is listening any more.
        let _ = self.tx.send(req);
    }
}

/// Locks `m`, ignoring poisoning (the data stay consistent: every critical
/// section is a single update).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    http: auto::Builder<TokioExecutor>,
    shared: Arc<Shared>,
) {
    // Connection tasks live in this set, so aborting this task (when the
    // `Receiver` is dropped) drops the set, which aborts them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "set_nodelay failed");
                    }
                    connections.spawn(serve_connection(
                        tcp,
                        peer,
                        acceptor.clone(),
                        http.clone(),
                        Arc::clone(&shared),
                    ));
                }
                Err(e) => {
                    // Typically running out of file descriptors under load:
                    // back off briefly instead of spinning.
                    tracing::warn!(error = %e, "test receiver accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    http: auto::Builder<TokioExecutor>,
    shared: Arc<Shared>,
) {
    match acceptor {
        None => serve_http(tcp, peer, &http, shared).await,
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => serve_http(tls, peer, &http, shared).await,
                Ok(Err(e)) => {
                    shared.tls_errors.fetch_add(1, Ordering::SeqCst);
                    tracing::debug!(%peer, error = %e, "test receiver TLS handshake failed");
                }
                Err(_) => {
                    shared.tls_errors.fetch_add(1, Ordering::SeqCst);
                    tracing::debug!(%peer, "test receiver TLS handshake timed out");
                }
            }
        }
    }
}

async fn serve_http<IO>(
    io: IO,
    peer: SocketAddr,
    http: &auto::Builder<TokioExecutor>,
    shared: Arc<Shared>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(Arc::clone(&shared), req));
    if let Err(e) = http.serve_connection(TokioIo::new(io), service).await {
        tracing::debug!(%peer, error = %e, "test receiver connection ended with an error");
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received_at = Instant::now();
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            tracing::debug!(error = %e, "test receiver could not read a request body");
            return Ok(response(&Reply::status(400).with_body("unreadable body")));
        }
    };
    let recorded = Recorded {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        received_at,
    };
    let reply = shared.reply_for(&recorded);
    shared.record(recorded);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    Ok(response(&reply))
}

fn response(reply: &Reply) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(reply.status).unwrap_or_else(|_| {
        tracing::warn!(
            status = reply.status,
            "invalid status in a test Reply; answering 500"
        );
        StatusCode::INTERNAL_SERVER_ERROR
    });
    let mut resp = Response::new(Full::new(Bytes::from(reply.body.clone())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A running recording receiver; see the [module docs](self).
///
/// Dropping it stops the server: the listening socket is closed and open
/// connections are dropped (shortly after, as the aborted tasks unwind).
pub struct Receiver {
    shared: Arc<Shared>,
    rx: Mutex<mpsc::UnboundedReceiver<Recorded>>,
    addr: SocketAddr,
    tls: bool,
    task: JoinHandle<()>,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .field("count", &self.count())
            .field("tls_errors", &self.tls_errors())
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// A builder with the defaults: TLS with a certificate from the CA given
    /// to `start`, token `"verify-me"`, echo handshake, every POST answered
    /// `200 ok`.
    pub fn builder() -> ReceiverBuilder {
        ReceiverBuilder::default()
    }

    /// The port it listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://localhost:{port}{path}` (`http://` when serving plain HTTP).
    /// A `path` not starting with `/` gets one.
    pub fn url(&self, path: &str) -> String {
        self.url_for_host("localhost", path)
    }

    /// `https://127.0.0.1:{port}{path}` (`http://` when serving plain HTTP).
    /// A `path` not starting with `/` gets one.
    pub fn ip_url(&self, path: &str) -> String {
        self.url_for_host("127.0.0.1", path)
    }

    fn url_for_host(&self, host: &str, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("{scheme}://{host}:{}{slash}{path}", self.addr.port())
    }

    /// The next request of any kind (handshake GETs and POSTs alike), or
    /// `None` if none arrives within `within`.
    pub async fn next(&self, within: Duration) -> Option<Recorded> {
        // The lock is taken only inside each poll, never across an await.
        let recv = std::future::poll_fn(|cx| lock(&self.rx).poll_recv(cx));
        tokio::time::timeout(within, recv).await.ok().flatten()
    }

    /// The next `POST`, skipping (and discarding) other requests, or `None`
    /// if none arrives within `within`.
    pub async fn next_post(&self, within: Duration) -> Option<Recorded> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let req = self.next(remaining).await?;
            if req.method == Method::POST {
                return Some(req);
            }
        }
    }

    /// Everything received and not yet taken, without waiting.
    pub fn try_drain(&self) -> Vec<Recorded> {
        let mut rx = lock(&self.rx);
        let mut out = Vec::new();
        while let Ok(req) = rx.try_recv() {
            out.push(req);
        }
        out
    }

    /// Total number of requests received so far (taken or not).
    pub fn count(&self) -> usize {
        *lock(&self.shared.count)
    }

    /// Replaces the reply script for non-GET requests; the default reply is
    /// unchanged.
    pub fn set_replies(&self, seq: Vec<Reply>) {
        lock(&self.shared.script).replies = seq.into();
    }

    /// Replaces the default reply (used once the script is exhausted).
    pub fn set_default_reply(&self, reply: Reply) {
        lock(&self.shared.script).default_reply = reply;
    }

    /// Replaces how `GET` handshakes are answered.
    pub fn set_handshake(&self, handshake: Handshake) {
        lock(&self.shared.script).handshake = handshake;
    }

    /// Number of connections whose TLS handshake failed (for example the
    /// client refused our certificate, or presented no acceptable client
    /// certificate when one is required) or did not complete within 10 s.
    pub fn tls_errors(&self) -> usize {
        self.shared.tls_errors.load(Ordering::SeqCst)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(query: Option<&str>) -> Recorded {
        Recorded {
            method: Method::GET,
            path: "/".to_owned(),
            query: query.map(str::to_owned),
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"{\"a\":1}"),
            received_at: Instant::now(),
        }
    }

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%E2%9C%93"), "\u{2713}");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn query_params() {
        let r = recorded(Some(
            "hub.mode=subscribe&hub%2Echallenge=a%26b&flag&x=1&x=2",
        ));
        assert_eq!(r.query_param("hub.mode").as_deref(), Some("subscribe"));
        assert_eq!(r.query_param("hub.challenge").as_deref(), Some("a&b"));
        assert_eq!(r.query_param("flag").as_deref(), Some(""));
        assert_eq!(r.query_param("x").as_deref(), Some("1"));
        assert_eq!(r.query_param("missing"), None);
        assert_eq!(recorded(None).query_param("x"), None);
        assert_eq!(r.json()["a"], 1);
    }

    #[test]
    #[should_panic(expected = "not JSON")]
    fn json_panics_with_body() {
        let mut r = recorded(None);
        r.body = Bytes::from_static(b"plain text");
        let _ = r.json();
    }

    #[test]
    fn reply_builders() {
        assert_eq!(Reply::ok().status, 200);
        assert_eq!(Reply::ok().body, "ok");
        let r = Reply::status(503)
            .with_body("busy")
            .with_delay(Duration::from_millis(5));
        assert_eq!((r.status, r.body.as_str()), (503, "busy"));
        assert_eq!(r.delay, Duration::from_millis(5));
        assert_eq!(Reply::hang().delay, Duration::from_secs(3600));
    }
}
