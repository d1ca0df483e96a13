//! The accept loop: each connection is served by hyper's HTTP/1.1 connection with a timer, so a
//! client that does not finish sending its request headers (or opens a connection and sends
//! nothing, or keeps one open without a next request) is disconnected after
//! `header_read_timeout`. `axum::serve` builds its connections without a timer, and hyper
//! enforces that limit only with one: a slow or idle client could hold a connection, and its
//! socket, for as long as it liked. HTTP/1.1 only: hyper-util's HTTP/1-or-2 detection waits
//! for the first bytes with no time limit at all, and a server without TLS gets HTTP/2 only as
//! prior-knowledge h2c, which browsers and Meta's SDKs do not speak (a TLS proxy in front can).

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// How long to wait before accepting again after an error that is not the peer's (out of file
/// descriptors, say), as `axum::serve` does.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets requests
/// in progress finish, closes idle connections, and returns once every connection has ended.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // The peer gave up before we took the connection: nothing to do.
            Err(error) if is_peer_error(&error) => continue,
            Err(error) => {
                tracing::error!(%error, "Cannot accept connections; trying again in 1 s");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        // Responses are written whole; Nagle's algorithm would only delay them.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "Could not set TCP_NODELAY");
        }
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Header timeouts, resets and malformed requests end here; hyper has already
                // answered what it could.
                tracing::debug!(%peer, %error, "A connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors of one incoming connection rather than of the listener.
fn is_peer_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
