//! The outbound HTTPS client for handshakes and notifications: rustls with webpki roots plus the
//! operator's `--callback-ca`, hostname checked, pooled keep-alive connections per callback, and
//! the SSRF guard at two depths: [`CallbackClient::check_url`] refuses a callback at subscribe
//! time, and every connection resolves through [`GuardedResolver`] (and IP literals, which no
//! resolver sees, are checked before a URL's first request), so a DNS answer that changes later
//! (rebinding) is refused too.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use graphhooks_core::net::is_public;
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::http::error::error_chain;

/// Longest callback URL accepted.
pub const CALLBACK_URL_MAX: usize = 2048;
/// Bytes of a response body kept for the delivery log.
pub const RESPONSE_SNIPPET: usize = 1024;
/// Bytes of a response body read at most; past this the connection is dropped, not reused.
const RESPONSE_READ_LIMIT: usize = 64 * 1024;
/// Checked callback URLs kept (see [`CallbackClient::target`]); past this the cache starts over.
const TARGETS_MAX: usize = 4096;
/// How long an idle pooled connection is kept by default.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why a callback URL is refused (before any request is made).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CallbackRefused(pub String);

/// Resolves callback hosts and refuses non-public answers unless private callbacks are allowed.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses = resolve(&host, allow_private)
                .await
                .map_err(|refused| io::Error::new(io::ErrorKind::PermissionDenied, refused.0))?;
            Ok(addresses.into_iter())
        })
    }
}

async fn resolve(host: &str, allow_private: bool) -> Result<Vec<SocketAddr>, CallbackRefused> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|error| CallbackRefused(format!("could not resolve {host}: {error}")))?
        .collect();
    if addresses.is_empty() {
        return Err(CallbackRefused(format!("{host} resolves to no address")));
    }
    if !allow_private && let Some(bad) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(CallbackRefused(format!(
            "{host} resolves to {}, a non-public address; graphhooks only calls public addresses unless started with --allow-private-callbacks",
            bad.ip()
        )));
    }
    Ok(addresses)
}

type HyperClient = Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

/// What came back from a callback.
#[derive(Debug, Clone)]
pub struct CallbackResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// The first [`RESPONSE_SNIPPET`] bytes of the body, as text.
    pub snippet: String,
    /// Time from sending to the end of the read.
    pub latency: Duration,
}

/// Why a request to a callback got no HTTP response.
#[derive(Debug, Clone)]
pub struct TransportError {
    /// The error chain, worded for the delivery log.
    pub message: String,
    /// Time until the failure.
    pub latency: Duration,
}

/// One request to a callback, all but its URL.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `GET` for handshakes, `POST` for notifications and alerts.
    pub method: Method,
    /// Its headers (`Host` is set by the client).
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
    /// For the whole exchange, the start of the response body included.
    pub timeout: Duration,
    /// Present the client certificate (mutual TLS).
    pub mutual_tls: bool,
}

/// A callback URL that passed the per-request checks, with what its requests need.
struct Target {
    uri: Uri,
    /// `Host`: set here, hyper would build it from the URI on every request.
    host: HeaderValue,
}

/// The client for callbacks.
#[derive(Clone)]
pub struct CallbackClient {
    plain: HyperClient,
    mutual: Option<HyperClient>,
    allow_private: bool,
    allow_http: bool,
    /// Callback URLs that passed [`CallbackClient::check_form`] and the literal-address check,
    /// by URL. Both depend only on the URL and this client's settings; parsing and checking a
    /// busy callback's URL and building its `Host` on every attempt cost about 3,700
    /// instructions of the 180,000 an unbatched change takes. Refusals are not kept.
    targets: Arc<Mutex<rustc_hash::FxHashMap<String, Arc<Target>>>>,
}

/// TLS and policy settings of the client.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings<'a> {
    /// Extra trusted roots (PEM).
    pub callback_ca: Option<&'a Path>,
    /// Client certificate chain and key for mutual TLS (PEM).
    pub client_identity: Option<(&'a Path, &'a Path)>,
    /// Allow non-public addresses.
    pub allow_private: bool,
    /// Allow `http://`.
    pub allow_http: bool,
    /// How long an idle pooled connection is kept (`None`: 90 s).
    pub idle_timeout: Option<Duration>,
}

fn read_pem(path: &Path) -> Result<Vec<u8>, ClientSetupError> {
    std::fs::read(path).map_err(|error| ClientSetupError::Pem {
        path: path.display().to_string(),
        message: error.to_string(),
    })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientSetupError> {
    let pem = read_pem(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ClientSetupError::Pem {
            path: path.display().to_string(),
            message: format!("not a PEM certificate file: {error}"),
        })?;
    if certs.is_empty() {
        return Err(ClientSetupError::Pem {
            path: path.display().to_string(),
            message: "contains no certificate".into(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ClientSetupError> {
    let pem = read_pem(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|error| ClientSetupError::Pem {
            path: path.display().to_string(),
            message: format!("not a PEM key file: {error}"),
        })?
        .ok_or_else(|| ClientSetupError::Pem {
            path: path.display().to_string(),
            message: "contains no private key".into(),
        })
}

impl CallbackClient {
    /// Builds the client (and the mutual-TLS variant when an identity is given).
    pub fn new(settings: &ClientSettings<'_>) -> Result<CallbackClient, ClientSetupError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = settings.callback_ca {
            for cert in load_certs(path)? {
                roots.add(cert).map_err(|error| ClientSetupError::Pem {
                    path: path.display().to_string(),
                    message: format!("not a usable CA certificate: {error}"),
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = || {
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots.clone()))
        };
        let plain_tls = builder()?.with_no_client_auth();
        let mutual_tls = match settings.client_identity {
            Some((cert, key)) => {
                Some(builder()?.with_client_auth_cert(load_certs(cert)?, load_key(key)?)?)
            }
            None => None,
        };
        let make = |tls: rustls::ClientConfig| -> HyperClient {
            let mut http = HttpConnector::new_with_resolver(GuardedResolver {
                allow_private: settings.allow_private,
            });
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(Duration::from_secs(10)));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            // Keep as many idle connections per host as attempts may run at once: many apps'
            // callbacks often share one host, and reopening TLS connections costs far more.
            // The timer lets the pool close connections idle past their time; without one,
            // hyper-util checks that only when it next takes a connection for the same host,
            // so a burst (a fan-out to 1,000 callbacks opened 650) stayed open for good.
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(settings.idle_timeout.unwrap_or(IDLE_TIMEOUT))
                .pool_max_idle_per_host(super::dispatch::IN_FLIGHT_MAX)
                .pool_timer(TokioTimer::new())
                .build(https)
        };
        Ok(CallbackClient {
            plain: make(plain_tls),
            mutual: mutual_tls.map(make),
            allow_private: settings.allow_private,
            allow_http: settings.allow_http,
            targets: Arc::default(),
        })
    }

    /// Whether mutual TLS is configured.
    pub fn has_client_certificate(&self) -> bool {
        self.mutual.is_some()
    }

    /// Checks a callback URL's form and where it resolves, without contacting it.
    pub async fn check_url(&self, url: &str) -> Result<Uri, CallbackRefused> {
        let target = self.check_target(url)?;
        // A literal address was checked with the form; a name is checked where it resolves.
        let host = uri_host(&target.uri);
        if host.parse::<IpAddr>().is_err() {
            resolve(host, self.allow_private).await?;
        }
        Ok(target.uri.clone())
    }

    fn check_form(&self, url: &str) -> Result<Uri, CallbackRefused> {
        if url.len() > CALLBACK_URL_MAX {
            return Err(CallbackRefused(format!(
                "callback_url is longer than {CALLBACK_URL_MAX} characters"
            )));
        }
        let uri: Uri = url.parse().map_err(|error| {
            CallbackRefused(format!("callback_url {url:?} is not a valid URL: {error}"))
        })?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.allow_http => {}
            Some("http") => {
                return Err(CallbackRefused(
                    "callback_url must use https (plain http is only allowed when graphhooks runs with --allow-http-callbacks)".into(),
                ));
            }
            _ => {
                return Err(CallbackRefused(format!(
                    "callback_url {url:?} must be an https:// URL"
                )));
            }
        }
        let Some(authority) = uri.authority() else {
            return Err(CallbackRefused(format!("callback_url {url:?} has no host")));
        };
        if authority.as_str().contains('@') {
            return Err(CallbackRefused(
                "callback_url must not contain credentials".into(),
            ));
        }
        if authority.host().is_empty() {
            return Err(CallbackRefused(format!("callback_url {url:?} has no host")));
        }
        Ok(uri)
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), CallbackRefused> {
        if self.allow_private || is_public(ip) {
            Ok(())
        } else {
            Err(CallbackRefused(format!(
                "{ip} is a non-public address; graphhooks only calls public addresses unless started with --allow-private-callbacks"
            )))
        }
    }

    /// `url` checked for a request, from the cache when it passed before (see
    /// [`CallbackClient::check_target`]).
    fn target(&self, url: &str) -> Result<Arc<Target>, CallbackRefused> {
        if let Some(target) = self.targets.lock().ok().and_then(|t| t.get(url).cloned()) {
            return Ok(target);
        }
        let target = self.check_target(url)?;
        if let Ok(mut targets) = self.targets.lock() {
            if targets.len() >= TARGETS_MAX {
                targets.clear();
            }
            targets.insert(url.to_owned(), target.clone());
        }
        Ok(target)
    }

    /// `url` checked for a request: its form, and its address when it is a literal one (names
    /// are checked when a connection resolves them).
    fn check_target(&self, url: &str) -> Result<Arc<Target>, CallbackRefused> {
        let uri = self.check_form(url)?;
        let host = uri_host(&uri);
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.check_ip(ip)?;
        }
        let host = match (uri.host(), uri.port_u16()) {
            (Some(name), Some(port)) if Some(port) != default_port(&uri) => {
                HeaderValue::from_str(&format!("{name}:{port}"))
            }
            (Some(name), _) => HeaderValue::from_str(name),
            (None, _) => {
                return Err(CallbackRefused(format!("callback_url {url:?} has no host")));
            }
        }
        .map_err(|_| CallbackRefused(format!("callback_url {url:?} has an invalid host")))?;
        Ok(Arc::new(Target { uri, host }))
    }

    /// Sends `request` to `url` and reads the start of the response, within its timeout.
    /// Literal addresses skip the resolver, so `url` is checked here first.
    pub async fn send(
        &self,
        url: &str,
        request: Outgoing,
    ) -> Result<CallbackResponse, TransportError> {
        self.send_to(request, || self.check_target(url)).await
    }

    /// [`CallbackClient::send`] for a URL that comes back attempt after attempt (a
    /// subscription's callback): its checks are kept (the client's `targets`). One-off
    /// URLs, such as a handshake's with its random challenge, would only crowd that cache.
    pub async fn send_notification(
        &self,
        url: &str,
        request: Outgoing,
    ) -> Result<CallbackResponse, TransportError> {
        self.send_to(request, || self.target(url)).await
    }

    /// Sends `request` to the target `check` gives (its time counts towards the latency).
    async fn send_to(
        &self,
        request: Outgoing,
        check: impl FnOnce() -> Result<Arc<Target>, CallbackRefused>,
    ) -> Result<CallbackResponse, TransportError> {
        let started = Instant::now();
        let Outgoing {
            method,
            headers,
            body,
            timeout,
            mutual_tls,
        } = request;
        let failed = |message: String| TransportError {
            message,
            latency: started.elapsed(),
        };
        let target = check().map_err(|refused| failed(refused.0))?;
        let client = match (mutual_tls, &self.mutual) {
            (true, Some(client)) => client,
            (true, None) => {
                return Err(failed(
                    "the subscription asks for a client certificate but graphhooks has none (--client-cert/--client-key)".into(),
                ));
            }
            (false, _) => &self.plain,
        };
        let mut request = Request::builder()
            .method(method)
            .uri(target.uri.clone())
            .body(Full::new(body))
            .map_err(|error| failed(format!("could not build the request: {error}")))?;
        *request.headers_mut() = headers;
        request.headers_mut().insert(HOST, target.host.clone());
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(|error| error_chain(&error))?;
            let status = response.status();
            let mut body = response.into_body();
            let mut kept = Vec::with_capacity(256);
            let mut read = 0usize;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|error| {
                    format!("reading the response body: {}", error_chain(&error))
                })?;
                if let Some(data) = frame.data_ref() {
                    read += data.len();
                    if kept.len() < RESPONSE_SNIPPET {
                        let room = RESPONSE_SNIPPET - kept.len();
                        kept.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    if read > RESPONSE_READ_LIMIT {
                        break;
                    }
                }
            }
            Ok::<_, String>((status, kept))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok((status, kept))) => Ok(CallbackResponse {
                status,
                snippet: String::from_utf8_lossy(&kept).into_owned(),
                latency: started.elapsed(),
            }),
            Ok(Err(message)) => Err(failed(message)),
            Err(_) => Err(failed(format!(
                "timed out after {} ms",
                timeout.as_millis()
            ))),
        }
    }
}

/// The port a URI's scheme implies.
fn default_port(uri: &Uri) -> Option<u16> {
    match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    }
}

fn uri_host(uri: &Uri) -> &str {
    let host = uri.host().unwrap_or("");
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A POST without headers, timed out after 5 s.
    fn post(body: Bytes) -> Outgoing {
        Outgoing {
            method: Method::POST,
            headers: HeaderMap::new(),
            body,
            timeout: Duration::from_secs(5),
            mutual_tls: false,
        }
    }

    fn client(allow_private: bool, allow_http: bool) -> CallbackClient {
        CallbackClient::new(&ClientSettings {
            allow_private,
            allow_http,
            ..ClientSettings::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn urls_are_checked_before_any_request() {
        let strict = client(false, false);
        for (url, expected) in [
            ("http://example.com/cb", "must use https"),
            ("ftp://example.com/cb", "must be an https"),
            ("https://127.0.0.1/cb", "non-public"),
            ("https://[::1]:8443/cb", "non-public"),
            ("https://10.1.2.3/cb", "non-public"),
            ("https://user:pw@example.com/cb", "credentials"),
            ("not a url", "not a valid URL"),
            ("https://localhost:9/cb", "non-public"),
        ] {
            let error = strict.check_url(url).await.unwrap_err().0;
            assert!(error.contains(expected), "{url}: {error}");
        }
        let relaxed = client(true, true);
        assert!(relaxed.check_url("http://127.0.0.1:9/cb").await.is_ok());
        assert!(relaxed.check_url("https://localhost:9/cb").await.is_ok());
    }

    /// A checked URL carries the `Host` hyper would have built (the port only when it is not
    /// the scheme's), is checked once, and a refusal is not kept.
    #[tokio::test]
    async fn targets_carry_the_host_and_are_checked_once() {
        let relaxed = client(true, true);
        for (url, host) in [
            ("https://example.com/cb", "example.com"),
            ("https://example.com:443/cb", "example.com"),
            ("https://example.com:8443/cb", "example.com:8443"),
            ("http://127.0.0.1:80/x", "127.0.0.1"),
            ("http://127.0.0.1:8080/x", "127.0.0.1:8080"),
            ("https://[::1]:8443/cb", "[::1]:8443"),
        ] {
            assert_eq!(relaxed.target(url).unwrap().host, host, "{url}");
        }
        let first = relaxed.target("https://example.com/cb").unwrap();
        let again = relaxed.target("https://example.com/cb").unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let strict = client(false, false);
        for _ in 0..2 {
            let refused = strict.target("https://10.1.2.3/cb").err().unwrap().0;
            assert!(refused.contains("non-public"), "{refused}");
        }
        assert!(strict.targets.lock().unwrap().is_empty());
    }

    /// Only notification attempts keep their URL's checks: a one-off URL (a handshake's) does
    /// not enter the cache, though it is checked all the same.
    #[tokio::test]
    async fn only_notifications_keep_their_checks() {
        let relaxed = client(true, true);
        let send = |notification: bool| {
            let relaxed = relaxed.clone();
            async move {
                // Nothing listens on port 1: the request fails fast, after the checks.
                let url = "http://127.0.0.1:1/cb?hub.challenge=1";
                if notification {
                    relaxed.send_notification(url, post(Bytes::new())).await
                } else {
                    relaxed.send(url, post(Bytes::new())).await
                }
            }
        };
        assert!(send(false).await.is_err());
        assert!(relaxed.targets.lock().unwrap().is_empty());
        assert!(send(true).await.is_err());
        assert_eq!(relaxed.targets.lock().unwrap().len(), 1);
    }

    /// A pooled connection idle past its time is closed without waiting for another request
    /// to the same host.
    #[tokio::test]
    async fn idle_connections_are_closed_when_their_time_is_up() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/cb", listener.local_addr().unwrap());
        let callback = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut chunk = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let read = socket.read(&mut chunk).await.unwrap();
                assert!(read > 0, "the request ended early");
                head.extend_from_slice(&chunk[..read]);
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
            // Returns once the client closes the connection.
            let mut rest = Vec::new();
            socket.read_to_end(&mut rest).await.unwrap();
        });
        let client = CallbackClient::new(&ClientSettings {
            allow_private: true,
            allow_http: true,
            idle_timeout: Some(Duration::from_millis(200)),
            ..ClientSettings::default()
        })
        .unwrap();
        let response = client
            .send_notification(&url, post(Bytes::from_static(b"{}")))
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::OK);
        tokio::time::timeout(Duration::from_secs(10), callback)
            .await
            .expect("the idle connection is closed")
            .unwrap();
    }

    #[tokio::test]
    async fn literal_private_addresses_are_refused_per_request() {
        let strict = client(false, false);
        let error = strict
            .send("https://127.0.0.1:1/cb", post(Bytes::new()))
            .await
            .unwrap_err();
        assert!(error.message.contains("non-public"), "{}", error.message);
    }
}
