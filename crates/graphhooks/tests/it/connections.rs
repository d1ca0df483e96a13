//! The HTTP server's connection limits, at the socket level.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graphhooks_server::{DatabaseUrl, Server};
use graphhooks_store_sqlite::{SqliteOptions, SqliteStore};
use graphhooks_testkit::TestCa;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestServer, test_config};

const HEADER_READ_TIMEOUT: Duration = Duration::from_millis(300);
/// Far longer than the timeout: a connection still open by then was never going to close.
const BOUND: Duration = Duration::from_secs(10);
const HEALTH_REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: graphhooks\r\n\r\n";

fn address(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    tokio::time::timeout(BOUND, stream.read_to_end(&mut received))
        .await
        .expect("the server closes the connection")
        .expect("reading from the server");
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

/// Reads one whole response (head and a `content-length` body) and returns its head.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("a content-length");
            if received.len() >= end + 4 + length {
                return head;
            }
        }
        let read = tokio::time::timeout(BOUND, stream.read(&mut buffer))
            .await
            .expect("an answer in time")
            .expect("reading from the server");
        assert!(read > 0, "the connection closed mid-response");
        received.extend_from_slice(&buffer[..read]);
    }
}

#[tokio::test]
async fn a_client_that_does_not_finish_its_headers_is_disconnected() {
    let server = TestServer::start_with(Arc::new(TestCa::new()), |config| {
        config.header_read_timeout = HEADER_READ_TIMEOUT;
    })
    .await;

    // Part of a request, then nothing.
    let mut slow = TcpStream::connect(address(&server)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: graphhooks\r\n")
        .await
        .unwrap();
    let (_, after) = read_until_closed(&mut slow).await;
    assert!(after >= HEADER_READ_TIMEOUT / 2, "closed after {after:?}");

    // Nothing at all.
    let mut silent = TcpStream::connect(address(&server)).await.unwrap();
    let (received, _) = read_until_closed(&mut silent).await;
    assert!(!received.contains("200 OK"), "{received}");

    // A kept-alive connection with no next request.
    let mut idle = TcpStream::connect(address(&server)).await.unwrap();
    idle.write_all(HEALTH_REQUEST).await.unwrap();
    let head = read_response(&mut idle).await;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let (rest, _) = read_until_closed(&mut idle).await;
    assert_eq!(rest, "");
    server.stop().await;
}

#[tokio::test]
async fn prompt_requests_share_a_kept_alive_connection() {
    // The default limit (75 s), so no pause of a loaded machine can close it mid-test.
    let server = TestServer::start().await;
    let mut prompt = TcpStream::connect(address(&server)).await.unwrap();
    for _ in 0..3 {
        prompt.write_all(HEALTH_REQUEST).await.unwrap();
        let head = read_response(&mut prompt).await;
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_zero_header_read_timeout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("graphhooks.db");
    let mut config = test_config(
        &dir.path().join("ca.pem"),
        &DatabaseUrl::Sqlite(path.clone()),
    );
    config.header_read_timeout = Duration::ZERO;
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let error = match Server::build(config, Arc::new(store)).await {
        Ok(_) => panic!("a zero header read timeout was accepted"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("header read timeout"), "{error}");
}
