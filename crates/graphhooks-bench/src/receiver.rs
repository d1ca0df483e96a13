//! The fast HTTPS receiver the server delivers to: hyper 1 over tokio-rustls with a certificate
//! from the bench's CA. It answers handshakes, and for each POST records only what the figures
//! need (arrival time per change, counts) in preallocated atomics, finding each change's `"n":`
//! in the raw body instead of parsing JSON. Paths pick the behaviour: `/a/{lane}` records,
//! `/hang/{lane}` never answers, `/fail/{lane}` answers 500, `/bare/{lane}` only counts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use graphhooks_testkit::TestCa;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use memchr::memmem::Finder;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// The verify token every bench subscription uses.
pub(crate) const VERIFY_TOKEN: &str = "graphhooks-bench-verify";

/// What marks a change's number in a body: the bench sends values like `{"n":12345}`.
static N_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"n\":"));

/// How arrivals are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keying {
    /// One slot per change: each change goes to one callback (lane ignored).
    ByChange,
    /// One slot per (lane, change): every change goes to every lane (fan-out).
    ByLaneAndChange,
}

/// Arrival records and counters, shared by the connection tasks and the scenario.
pub(crate) struct Tally {
    epoch: Instant,
    keying: Keying,
    lanes: usize,
    changes: usize,
    /// First arrival per slot, in ns since `epoch` plus one (0: none yet).
    first: Vec<AtomicU64>,
    /// Arrivals per slot (above one: duplicates).
    count: Vec<AtomicU32>,
    /// Latest arrival per change over all lanes, ns since `epoch` plus one.
    last_by_change: Vec<AtomicU64>,
    /// Arrivals per change over all lanes (distinct and duplicate).
    count_by_change: Vec<AtomicU32>,
    /// Slots that got their first arrival.
    distinct: AtomicU64,
    /// Change arrivals recorded, duplicates included.
    arrivals: AtomicU64,
    /// Arrivals whose `n` or lane is outside the expected range.
    unexpected: AtomicU64,
    /// POSTs to recording paths.
    posts: AtomicU64,
    /// Body bytes of those POSTs.
    bytes: AtomicU64,
    /// POSTs to `/hang/`, `/fail/` and `/bare/`.
    hang_posts: AtomicU64,
    fail_posts: AtomicU64,
    bare_posts: AtomicU64,
    /// Sum of the `n`s of bare POSTs (keeps the scan's work real).
    bare_sum: AtomicU64,
    handshakes: AtomicU64,
    bad_handshakes: AtomicU64,
    tls_errors: AtomicU64,
    /// TLS connections accepted.
    connections: AtomicU64,
    /// Earliest and latest arrival of a recording POST, ns since `epoch` plus one.
    first_arrival: AtomicU64,
    last_arrival: AtomicU64,
}

fn atomics64(len: usize) -> Vec<AtomicU64> {
    (0..len).map(|_| AtomicU64::new(0)).collect()
}

fn atomics32(len: usize) -> Vec<AtomicU32> {
    (0..len).map(|_| AtomicU32::new(0)).collect()
}

/// A finished count: what the figures are computed from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    pub(crate) arrivals: u64,
    pub(crate) unexpected: u64,
    pub(crate) posts: u64,
    pub(crate) bytes: u64,
    pub(crate) hang_posts: u64,
    pub(crate) fail_posts: u64,
    pub(crate) handshakes: u64,
    pub(crate) bad_handshakes: u64,
    pub(crate) tls_errors: u64,
    pub(crate) connections: u64,
    pub(crate) last_arrival: Option<Instant>,
}

impl Tally {
    fn new(epoch: Instant, keying: Keying, lanes: usize, changes: usize) -> Tally {
        let slots = match keying {
            Keying::ByChange => changes,
            Keying::ByLaneAndChange => lanes * changes,
        };
        Tally {
            epoch,
            keying,
            lanes,
            changes,
            first: atomics64(slots),
            count: atomics32(slots),
            last_by_change: atomics64(changes),
            count_by_change: atomics32(changes),
            distinct: AtomicU64::new(0),
            arrivals: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            posts: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            hang_posts: AtomicU64::new(0),
            fail_posts: AtomicU64::new(0),
            bare_posts: AtomicU64::new(0),
            bare_sum: AtomicU64::new(0),
            handshakes: AtomicU64::new(0),
            bad_handshakes: AtomicU64::new(0),
            tls_errors: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            first_arrival: AtomicU64::new(u64::MAX),
            last_arrival: AtomicU64::new(0),
        }
    }

    fn stamp(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn instant(&self, stamp: u64) -> Option<Instant> {
        (stamp != 0 && stamp != u64::MAX).then(|| self.epoch + Duration::from_nanos(stamp - 1))
    }

    fn record(&self, lane: usize, body: &[u8], stamp: u64) {
        self.posts.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        self.first_arrival.fetch_min(stamp, Ordering::Relaxed);
        self.last_arrival.fetch_max(stamp, Ordering::Relaxed);
        for n in numbers(body) {
            let Ok(n) = usize::try_from(n) else {
                self.unexpected.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let slot = match self.keying {
                Keying::ByChange => n,
                Keying::ByLaneAndChange => lane.saturating_mul(self.changes).saturating_add(n),
            };
            if n >= self.changes || lane >= self.lanes.max(1) || slot >= self.first.len() {
                self.unexpected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.arrivals.fetch_add(1, Ordering::Relaxed);
            if self.count[slot].fetch_add(1, Ordering::Relaxed) == 0 {
                self.first[slot].store(stamp, Ordering::Relaxed);
                self.distinct.fetch_add(1, Ordering::Release);
            }
            self.last_by_change[n].fetch_max(stamp, Ordering::Relaxed);
            self.count_by_change[n].fetch_add(1, Ordering::Release);
        }
    }

    /// Slots that got at least one arrival.
    pub(crate) fn distinct(&self) -> u64 {
        self.distinct.load(Ordering::Acquire)
    }

    /// Arrivals of change `n` over all lanes (duplicates included).
    pub(crate) fn arrivals_of(&self, n: usize) -> u32 {
        self.count_by_change
            .get(n)
            .map_or(0, |c| c.load(Ordering::Acquire))
    }

    /// The latest arrival of change `n` over all lanes.
    pub(crate) fn last_arrival_of(&self, n: usize) -> Option<Instant> {
        self.instant(self.last_by_change.get(n)?.load(Ordering::Relaxed))
    }

    /// The first arrival of slot (`lane`, `n`).
    pub(crate) fn first_arrival_of(&self, lane: usize, n: usize) -> Option<Instant> {
        let slot = match self.keying {
            Keying::ByChange => n,
            Keying::ByLaneAndChange => lane * self.changes + n,
        };
        self.instant(self.first.get(slot)?.load(Ordering::Relaxed))
    }

    /// How many times slot (`lane`, `n`) arrived.
    pub(crate) fn count_of(&self, lane: usize, n: usize) -> u32 {
        let slot = match self.keying {
            Keying::ByChange => n,
            Keying::ByLaneAndChange => lane * self.changes + n,
        };
        self.count
            .get(slot)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// A snapshot of the counters.
    pub(crate) fn counts(&self) -> Counts {
        let load = |a: &AtomicU64| a.load(Ordering::Acquire);
        Counts {
            arrivals: load(&self.arrivals),
            unexpected: load(&self.unexpected),
            posts: load(&self.posts),
            bytes: load(&self.bytes),
            hang_posts: load(&self.hang_posts),
            fail_posts: load(&self.fail_posts),
            handshakes: load(&self.handshakes),
            bad_handshakes: load(&self.bad_handshakes),
            tls_errors: load(&self.tls_errors),
            connections: load(&self.connections),
            last_arrival: self.instant(load(&self.last_arrival)),
        }
    }

    /// POSTs to `/bare/` so far.
    pub(crate) fn bare_posts(&self) -> u64 {
        self.bare_posts.load(Ordering::Relaxed)
    }
}

/// Every integer that follows `"n":` in `body`.
pub(crate) fn numbers(body: &[u8]) -> impl Iterator<Item = u64> + '_ {
    N_KEY.find_iter(body).filter_map(move |at| {
        let digits = body.get(at + 4..)?;
        let mut value: u64 = 0;
        let mut any = false;
        for &byte in digits {
            if !byte.is_ascii_digit() {
                break;
            }
            value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
            any = true;
        }
        any.then_some(value)
    })
}

/// What a path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Record(usize),
    Hang,
    Fail,
    Bare,
}

fn behaviour(path: &str) -> Behaviour {
    let lane = |rest: &str| rest.trim_end_matches('/').parse::<usize>().unwrap_or(0);
    if path.starts_with("/hang/") {
        Behaviour::Hang
    } else if path.starts_with("/fail/") {
        Behaviour::Fail
    } else if path.starts_with("/bare/") {
        Behaviour::Bare
    } else if let Some(rest) = path.strip_prefix("/a/") {
        Behaviour::Record(lane(rest))
    } else {
        Behaviour::Record(0)
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

/// The challenge to echo, when the query is a handshake with our verify token.
fn handshake_answer(query: &str) -> Option<String> {
    let mut challenge = None;
    let mut token_ok = false;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "hub.challenge" => challenge = Some(value.to_owned()),
            "hub.verify_token" => token_ok = value == VERIFY_TOKEN,
            _ => {}
        }
    }
    if token_ok { challenge } else { None }
}

async fn handle(
    request: Request<Incoming>,
    tally: Arc<Tally>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() == Method::GET {
        return Ok(
            match handshake_answer(request.uri().query().unwrap_or("")) {
                Some(challenge) => {
                    tally.handshakes.fetch_add(1, Ordering::Relaxed);
                    reply(StatusCode::OK, Bytes::from(challenge))
                }
                None => {
                    tally.bad_handshakes.fetch_add(1, Ordering::Relaxed);
                    reply(
                        StatusCode::FORBIDDEN,
                        Bytes::from_static(b"bad verify token"),
                    )
                }
            },
        );
    }
    let behaviour = behaviour(request.uri().path());
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new())),
    };
    let stamp = tally.stamp();
    match behaviour {
        Behaviour::Record(lane) => tally.record(lane, &body, stamp),
        Behaviour::Hang => {
            tally.hang_posts.fetch_add(1, Ordering::Relaxed);
            std::future::pending::<()>().await;
        }
        Behaviour::Fail => {
            tally.fail_posts.fetch_add(1, Ordering::Relaxed);
            return Ok(reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from_static(b"failing on purpose"),
            ));
        }
        Behaviour::Bare => {
            tally.bare_posts.fetch_add(1, Ordering::Relaxed);
            let sum: u64 = numbers(&body).fold(0, u64::wrapping_add);
            tally.bare_sum.fetch_add(sum, Ordering::Relaxed);
        }
    }
    Ok(reply(StatusCode::OK, Bytes::from_static(b"ok")))
}

/// A running receiver; stops (closing every connection) when dropped.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    pub(crate) tally: Arc<Tally>,
    shutdown: CancellationToken,
}

/// The receiver's TLS settings: a certificate for 127.0.0.1 and localhost from `ca`.
pub(crate) fn tls_acceptor(ca: &TestCa) -> anyhow::Result<TlsAcceptor> {
    let issued = ca.issue_server(&["127.0.0.1", "localhost"]);
    let config = rustls::ServerConfig::builder_with_provider(graphhooks_testkit::crypto_provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(issued.cert_chain(), issued.private_key())
        .context("the receiver's certificate")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl Receiver {
    /// Starts a receiver keyed as `keying`, for `lanes` callbacks and changes `0..changes`.
    pub(crate) async fn start(
        acceptor: TlsAcceptor,
        epoch: Instant,
        keying: Keying,
        lanes: usize,
        changes: usize,
    ) -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the receiver")?;
        let addr = listener.local_addr().context("the receiver's address")?;
        let tally = Arc::new(Tally::new(epoch, keying, lanes, changes));
        let shutdown = CancellationToken::new();
        tokio::spawn(accept_loop(
            listener,
            acceptor,
            tally.clone(),
            shutdown.clone(),
        ));
        Ok(Receiver {
            addr,
            tally,
            shutdown,
        })
    }

    /// The URL of `path` on this receiver.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tally: Arc<Tally>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let Ok((tcp, _)) = accepted else {
            // Out of descriptors or similar: back off a little rather than spin.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        // Nagle would delay small answers on a kept-alive connection.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let tally = tally.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let serve = async {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    tally.tls_errors.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                tally.connections.fetch_add(1, Ordering::Relaxed);
                let service = service_fn(move |request| handle(request, tally.clone()));
                // A connection error (the server timed out a hanging request and hung up) ends
                // only this connection.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            };
            tokio::select! {
                () = serve => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_found_in_raw_bodies() {
        let body = br#"{"object":"user","entry":[{"id":"u1","uid":"u1","time":1,"changes":[{"field":"name","value":{"n":12345}},{"field":"name","value":{"n":0}}]}]}"#;
        assert_eq!(numbers(body).collect::<Vec<_>>(), vec![12345, 0]);
        assert_eq!(numbers(br#"{"n":}"#).count(), 0);
    }

    #[test]
    fn handshakes_need_the_token() {
        assert_eq!(
            handshake_answer(&format!(
                "hub.mode=subscribe&hub.challenge=42&hub.verify_token={VERIFY_TOKEN}"
            )),
            Some("42".into())
        );
        assert_eq!(
            handshake_answer("hub.challenge=42&hub.verify_token=x"),
            None
        );
    }

    #[test]
    fn paths_pick_the_behaviour() {
        assert_eq!(behaviour("/a/17"), Behaviour::Record(17));
        assert_eq!(behaviour("/hang/3"), Behaviour::Hang);
        assert_eq!(behaviour("/fail/3"), Behaviour::Fail);
        assert_eq!(behaviour("/bare/0"), Behaviour::Bare);
    }

    #[test]
    fn duplicates_and_fanout_are_counted() {
        let tally = Tally::new(Instant::now(), Keying::ByLaneAndChange, 2, 3);
        tally.record(0, br#"{"n":1}"#, 5);
        tally.record(1, br#"{"n":1}"#, 9);
        tally.record(1, br#"{"n":1}"#, 11);
        tally.record(1, br#"{"n":7}"#, 11);
        assert_eq!(tally.distinct(), 2);
        assert_eq!(tally.arrivals_of(1), 3);
        assert_eq!(tally.count_of(1, 1), 2);
        assert_eq!(tally.counts().unexpected, 1);
    }
}
