//! Integration tests for the recording receiver: real HTTPS clients
//! (hyper-util + hyper-rustls, ring provider) talking to it over loopback.

use std::time::{Duration, Instant};

use bytes::Bytes;
use graphhooks_testkit::{Handshake, IssuedCert, Receiver, Reply, TestCa};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Upper bound for every wait in these tests.
const WAIT: Duration = Duration::from_secs(10);

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

fn client(config: rustls::ClientConfig) -> HttpsClient {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Sends a request and returns status and body, or the error as text.
async fn send(
    client: &HttpsClient,
    method: Method,
    url: &str,
    body: &str,
) -> Result<(StatusCode, String), String> {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", "sha256=abc")
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| e.to_string())?;
    let fut = async {
        let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()))
}

async fn post(client: &HttpsClient, url: &str, body: &str) -> Result<(StatusCode, String), String> {
    send(client, Method::POST, url, body).await
}

async fn get(client: &HttpsClient, url: &str) -> Result<(StatusCode, String), String> {
    send(client, Method::GET, url, "").await
}

/// Asserts that the request failed quickly (at the TLS layer), not by timing out.
fn assert_refused(res: Result<(StatusCode, String), String>) {
    match res {
        Ok(ok) => panic!("expected a TLS failure, got {ok:?}"),
        Err(e) => assert!(!e.contains("timed out"), "expected a TLS failure, got {e}"),
    }
}

/// Waits (bounded) until `cond` holds.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn https_post_is_recorded() {
    let ca = TestCa::new();
    let rx = Receiver::builder().start(&ca).await;
    let c = client(ca.client_config());

    let (status, body) = post(&c, &rx.url("/hook?x=1"), r#"{"id":7}"#).await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));

    let rec = rx.next(WAIT).await.expect("request recorded");
    assert_eq!(rec.method, Method::POST);
    assert_eq!(rec.path, "/hook");
    assert_eq!(rec.query.as_deref(), Some("x=1"));
    assert_eq!(rec.header("X-Hub-Signature-256"), Some("sha256=abc"));
    assert_eq!(rec.json()["id"], 7);
    assert_eq!(rx.count(), 1);
    assert_eq!(rx.tls_errors(), 0);

    // The IP URL works too (IP SAN), and keep-alive reuses the client pool.
    post(&c, &rx.ip_url("/other"), "{}").await.unwrap();
    let rec = rx.next_post(WAIT).await.expect("second request recorded");
    assert_eq!(rec.path, "/other");
    assert!(rx.next(Duration::from_millis(50)).await.is_none());
    assert!(rx.try_drain().is_empty());
    assert_eq!(rx.count(), 2);
}

#[tokio::test]
async fn client_not_trusting_the_ca_fails() {
    let ca = TestCa::new();
    let rx = Receiver::builder().start(&ca).await;
    let other = TestCa::new();
    let c = client(other.client_config());

    assert_refused(post(&c, &rx.url("/hook"), "{}").await);
    eventually("the TLS error to be counted", || rx.tls_errors() >= 1).await;
    assert_eq!(rx.count(), 0);
}

#[tokio::test]
async fn self_signed_server_cert_is_refused() {
    let ca = TestCa::new();
    let rx = Receiver::builder()
        .cert(IssuedCert::self_signed(&["localhost", "127.0.0.1"]))
        .start(&ca)
        .await;
    let c = client(ca.client_config());

    assert_refused(post(&c, &rx.url("/hook"), "{}").await);
    eventually("the TLS error to be counted", || rx.tls_errors() >= 1).await;
    assert_eq!(rx.count(), 0);
}

#[tokio::test]
async fn cert_for_another_name_is_refused() {
    let ca = TestCa::new();
    let rx = Receiver::builder()
        .cert(ca.issue_server(&["example.invalid"]))
        .start(&ca)
        .await;
    let c = client(ca.client_config());
    assert_refused(post(&c, &rx.url("/hook"), "{}").await);
    assert_refused(post(&c, &rx.ip_url("/hook"), "{}").await);
    assert_eq!(rx.count(), 0);
}

#[tokio::test]
async fn handshake_echoes_challenge_only_with_the_right_token() {
    let ca = TestCa::new();
    let rx = Receiver::builder().start(&ca).await;
    let c = client(ca.client_config());

    let url = rx.url("/cb?hub.mode=subscribe&hub.challenge=123&hub.verify_token=verify-me");
    let (status, body) = get(&c, &url).await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "123"));
    let rec = rx.next(WAIT).await.expect("handshake recorded");
    assert_eq!(rec.method, Method::GET);
    assert_eq!(rec.query_param("hub.mode").as_deref(), Some("subscribe"));

    let url = rx.url("/cb?hub.mode=subscribe&hub.challenge=123&hub.verify_token=wrong");
    let (status, body) = get(&c, &url).await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::FORBIDDEN, "bad token")
    );

    // Percent-encoded token and challenge are decoded.
    let url = rx.url("/cb?hub.challenge=a%20b&hub.verify_token=verify%2Dme");
    let (status, body) = get(&c, &url).await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "a b"));

    rx.set_handshake(Handshake::Reply(Reply::status(404).with_body("gone")));
    let url = rx.url("/cb?hub.challenge=123&hub.verify_token=verify-me");
    let (status, body) = get(&c, &url).await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "gone"));

    // Handshakes do not consume the POST script; next_post skips them.
    assert!(rx.next_post(Duration::from_millis(100)).await.is_none());
    assert_eq!(rx.count(), 4);
}

#[tokio::test]
async fn custom_verify_token() {
    let ca = TestCa::new();
    let rx = Receiver::builder().verify_token("s3cret").start(&ca).await;
    let c = client(ca.client_config());
    let (status, _) = get(&c, &rx.url("/?hub.challenge=1&hub.verify_token=verify-me"))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = get(&c, &rx.url("/?hub.challenge=1&hub.verify_token=s3cret"))
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
}

#[tokio::test]
async fn reply_script_then_default() {
    let ca = TestCa::new();
    let rx = Receiver::builder()
        .replies(vec![
            Reply::status(500),
            Reply::status(500).with_body("again"),
            Reply::ok(),
        ])
        .default_reply(Reply::status(202).with_body("accepted"))
        .start(&ca)
        .await;
    let c = client(ca.client_config());
    let url = rx.url("/hook");

    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(post(&c, &url, "{}").await.unwrap());
    }
    let seen: Vec<(u16, &str)> = seen.iter().map(|(s, b)| (s.as_u16(), b.as_str())).collect();
    assert_eq!(
        seen,
        [
            (500, ""),
            (500, "again"),
            (200, "ok"),
            (202, "accepted"),
            (202, "accepted")
        ]
    );
    assert_eq!(rx.try_drain().len(), 5);

    rx.set_replies(vec![Reply::status(410)]);
    assert_eq!(post(&c, &url, "{}").await.unwrap().0.as_u16(), 410);
    assert_eq!(post(&c, &url, "{}").await.unwrap().0.as_u16(), 202);
    assert_eq!(rx.count(), 7);
}

#[tokio::test]
async fn delays_and_hangs() {
    let ca = TestCa::new();
    let rx = Receiver::builder()
        .replies(vec![
            Reply::ok().with_delay(Duration::from_millis(300)),
            Reply::hang(),
        ])
        .start(&ca)
        .await;
    let c = client(ca.client_config());

    let started = Instant::now();
    post(&c, &rx.url("/slow"), "{}").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));

    // The hung request is recorded before its (never coming) answer.
    let hang_url = rx.url("/hang");
    let hung = tokio::time::timeout(Duration::from_millis(500), post(&c, &hang_url, "{}"));
    assert!(hung.await.is_err(), "a hang must not be answered");
    rx.next(WAIT).await.expect("slow request recorded");
    let rec = rx.next(WAIT).await.expect("hung request recorded");
    assert_eq!(rec.path, "/hang");
}

#[tokio::test]
async fn mutual_tls() {
    let ca = TestCa::new();
    let rx = Receiver::builder()
        .require_client_cert(ca.client_verifier_roots())
        .start(&ca)
        .await;

    // No client certificate: refused at the TLS layer.
    let without = client(ca.client_config());
    assert_refused(post(&without, &rx.url("/hook"), "{}").await);
    eventually("the TLS error to be counted", || rx.tls_errors() >= 1).await;

    // A client certificate from another CA: refused too.
    let other = TestCa::new();
    let foreign = client(ca.client_config_with_cert(&other.issue_client("intruder")));
    assert_refused(post(&foreign, &rx.url("/hook"), "{}").await);
    eventually("the second TLS error", || rx.tls_errors() >= 2).await;
    assert_eq!(rx.count(), 0);

    // A certificate issued by the CA: accepted.
    let with = client(ca.client_config_with_cert(&ca.issue_client("graphhooks")));
    let (status, _) = post(&with, &rx.url("/hook"), "{}").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rx.next_post(WAIT).await.expect("recorded").path, "/hook");
}

#[tokio::test]
async fn plain_http() {
    let ca = TestCa::new();
    let rx = Receiver::builder().plain_http().start(&ca).await;
    assert!(rx.url("/x").starts_with("http://localhost:"));
    assert_eq!(rx.ip_url("x"), format!("http://127.0.0.1:{}/x", rx.port()));
    let c = client(ca.client_config());
    let (status, _) = post(&c, &rx.url("/plain"), "{}").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rx.next(WAIT).await.expect("recorded").path, "/plain");
}

#[tokio::test]
async fn http1_only_receiver() {
    let ca = TestCa::new();
    let rx = Receiver::builder().http1_only().start(&ca).await;
    assert!(rx.url("/x").starts_with("https://localhost:"));
    let c = client(ca.client_config());
    post(&c, &rx.url("/h1"), "{}").await.unwrap();
    let rec = rx.next(WAIT).await.expect("recorded");
    assert_eq!(rec.path, "/h1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_requests() {
    const N: usize = 500;
    let ca = TestCa::new();
    let rx = Receiver::builder().start(&ca).await;
    let c = client(ca.client_config());

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let c = c.clone();
        let url = rx.url(&format!("/n/{i}"));
        tasks.spawn(async move { post(&c, &url, "{}").await });
    }
    while let Some(res) = tasks.join_next().await {
        let (status, _) = res.unwrap().unwrap();
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(rx.count(), N);
    let mut paths: Vec<String> = rx.try_drain().into_iter().map(|r| r.path).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), N);
}

#[tokio::test]
async fn dropping_stops_the_server() {
    let ca = TestCa::new();
    let rx = Receiver::builder().start(&ca).await;
    let addr = rx.addr();
    drop(rx);
    let deadline = Instant::now() + WAIT;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "receiver still accepting after drop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn http2_via_alpn() {
    use hyper_util::rt::TokioIo;
    use std::sync::Arc;

    let ca = TestCa::new();
    let rx = Receiver::builder().start(&ca).await;
    let mut config = ca.client_config();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

    let fut = async {
        let tcp = tokio::net::TcpStream::connect(rx.addr()).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = Request::post(rx.url("/h2"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.version(), http::Version::HTTP_2);
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .expect("h2 request timed out");
    let rec = rx.next_post(WAIT).await.expect("recorded");
    assert_eq!(rec.path, "/h2");
}
