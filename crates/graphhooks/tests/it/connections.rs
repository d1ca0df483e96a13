//! The HTTP server's connection limits, at the socket level.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graphhooks_testkit::TestCa;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestServer;

const HEADER_READ_TIMEOUT: Duration = Duration::from_millis(300);
/// Far longer than the timeout: a connection still open by then was never going to close.
const BOUND: Duration = Duration::from_secs(10);

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

#[tokio::test]
async fn a_client_that_does_not_finish_its_headers_is_disconnected() {
    let server = TestServer::start_with(Arc::new(TestCa::new()), |config| {
        config.header_read_timeout = HEADER_READ_TIMEOUT;
    })
    .await;
    let address = server.base.trim_start_matches("http://").to_owned();

    // Part of a request, then nothing.
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: graphhooks\r\n")
        .await
        .unwrap();
    let (_, after) = read_until_closed(&mut slow).await;
    assert!(after >= HEADER_READ_TIMEOUT / 2, "closed after {after:?}");

    // Nothing at all.
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let (received, _) = read_until_closed(&mut silent).await;
    assert!(!received.contains("200 OK"), "{received}");

    // A whole request is answered, and so is the next one on the same connection.
    let mut prompt = TcpStream::connect(&address).await.unwrap();
    for _ in 0..2 {
        prompt
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: graphhooks\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = vec![0u8; 4096];
        let read = tokio::time::timeout(BOUND, prompt.read(&mut buffer))
            .await
            .expect("an answer")
            .unwrap();
        let head = String::from_utf8_lossy(&buffer[..read]);
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    }
    server.stop().await;
}
