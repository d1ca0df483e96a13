//! `examples/receiver.rs` as an app developer runs it: a separate process that answers the real
//! server's handshake, verifies deliveries (here with two secrets configured, as during a
//! rotation) and prints them.

use std::process::Stdio;

use graphhooks_receiver::Secret;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use crate::support::{TestServer, VERIFY_TOKEN, WAIT, example_binary, request};

/// The running example; killed when dropped.
struct Example {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Example {
    async fn start(args: &[&str]) -> (Example, String) {
        let mut child = tokio::process::Command::new(example_binary().await)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the example starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut example = Example {
            _child: child,
            lines: BufReader::new(stdout).lines(),
        };
        let first = example.line().await;
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the first line names the address: {first}"))
            .to_owned();
        (example, url)
    }

    /// The next line the example prints, within the wait.
    async fn line(&mut self) -> String {
        tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("a line in time")
            .expect("stdout readable")
            .expect("the example is still running")
    }
}

#[tokio::test]
async fn the_example_receiver_answers_the_handshake_and_prints_verified_changes() {
    let server = TestServer::start().await;
    let app = server.create_app().await;
    let (mut example, url) = Example::start(&[
        "--listen",
        "127.0.0.1:0",
        "--path",
        "/hook",
        "--secret",
        "a-secret-being-retired",
        "--secret",
        &app.secret,
        "--verify-token",
        VERIFY_TOKEN,
    ])
    .await;
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/hook"),
        "{url}"
    );

    let response = server.subscribe(&app, &url, VERIFY_TOKEN).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);

    let value = json!({"text": "naïve café/crème 😀", "link": "https://x.example/a/b"});
    server.push_about(value.clone()).await;

    let header = example.line().await;
    let words: Vec<&str> = header.split(' ').collect();
    assert_eq!(words[..2], ["verified", "delivery"], "{header}");
    let delivery_id = words[2].to_owned();
    assert_eq!(
        words[3..],
        ["attempt", "1", "object", "user", "entries", "1"],
        "{header}"
    );
    let change = example.line().await;
    let printed = change
        .strip_prefix("  change 1021 about ")
        .unwrap_or_else(|| panic!("a change line: {change}"));
    let printed: Value = serde_json::from_str(printed).expect("the value as JSON");
    assert_eq!(printed, value);

    let log = server
        .deliveries_until(&app, |log| log["data"][0]["state"] == "delivered")
        .await;
    assert_eq!(log["data"][0]["id"], delivery_id.as_str());

    // Signed with neither configured secret, or not at all: 401, and nothing printed.
    let body = br#"{"object":"user","entry":[{"id":"1","changes":[]}]}"#.to_vec();
    let forged = Secret::new("forged").sign_sha256(&body);
    for headers in [vec![("x-hub-signature-256", forged)], vec![]] {
        let response = request(Method::POST, &url, &headers, Some(body.clone())).await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            response.text
        );
    }
    // A wrong verify token is refused with 403.
    let response = request(
        Method::GET,
        &format!("{url}?hub.mode=subscribe&hub.challenge=5&hub.verify_token=wrong"),
        &[],
        None,
    )
    .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);

    // The next line printed is the next verified delivery, so the refused requests printed
    // nothing.
    server.push_about(json!("second")).await;
    let header = example.line().await;
    assert!(header.starts_with("verified delivery "), "{header}");
    assert_ne!(header.split(' ').nth(2), Some(delivery_id.as_str()));
    assert_eq!(example.line().await, r#"  change 1021 about "second""#);
}
