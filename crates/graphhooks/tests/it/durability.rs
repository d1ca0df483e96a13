//! What only a separate process shows: every accepted change survives `kill -9` at any moment
//! and goes out after a restart on the same file; SIGTERM stops cleanly; the generated admin
//! token is printed once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use graphhooks_testkit::{Receiver, Reply, TestCa};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::process::ServeProcess;
use crate::support::{WAIT, http::request};

const TOKEN: &str = "durability-admin-token-0123456789";

async fn admin(
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> crate::support::Response {
    request(
        method,
        &format!("{base}{path}"),
        &[("authorization", format!("Bearer {TOKEN}"))],
        body.map(|b| ("application/json", b.to_string().into_bytes())),
    )
    .await
}

fn serve_args<'a>(db: &'a str, ca: &'a str) -> Vec<&'a str> {
    vec![
        "--database",
        db,
        "--callback-ca",
        ca,
        "--allow-private-callbacks",
        "--retry-schedule",
        "0s,100ms,200ms",
        "--batch-linger",
        "2ms",
        "--admin-token",
        TOKEN,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_change_is_delivered_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_path = ca.write_pem(dir.path()).display().to_string();
    let db = format!("sqlite://{}", dir.path().join("graphhooks.db").display());
    // A receiver slow enough that work is in flight when the process dies.
    let receiver = Receiver::builder()
        .default_reply(Reply::ok().with_delay(Duration::from_millis(15)))
        .start(&ca)
        .await;

    let first = ServeProcess::spawn(&serve_args(&db, &ca_path), &[]).await;
    let app = admin(
        &first.base,
        Method::POST,
        "/admin/apps",
        Some(json!({"name": "durable", "mode": "live"})),
    )
    .await;
    assert_eq!(app.status, StatusCode::CREATED, "{}", app.text);
    let app_id = app.json["id"].as_str().unwrap().to_owned();
    let secret = app.json["secret"].as_str().unwrap().to_owned();
    let subscribed = request(
        Method::POST,
        &format!("{}/{app_id}/subscriptions", first.base),
        &[("authorization", format!("Bearer {app_id}|{secret}"))],
        Some((
            "application/json",
            json!({"object": "application", "fields": ["async_requests"], "callback_url": receiver.url("/durable"),
                   "verify_token": "verify-me", "include_values": true})
            .to_string()
            .into_bytes(),
        )),
    )
    .await;
    assert_eq!(subscribed.status, StatusCode::OK, "{}", subscribed.text);

    // Push batches from two clients; kill -9 while they are still pushing.
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
    let mut pushers = Vec::new();
    for client in 0..2 {
        let base = first.base.clone();
        let app_id = app_id.clone();
        let accepted = accepted.clone();
        pushers.push(tokio::spawn(async move {
            for batch in 0..1000 {
                let values: Vec<i64> = (0..20).map(|i| client * 1_000_000 + batch * 100 + i).collect();
                let changes: Vec<Value> = values
                    .iter()
                    .map(|n| json!({"object": "application", "id": app_id, "field": "async_requests", "value": {"n": n}}))
                    .collect();
                let url = format!("{base}/admin/changes");
                let body = json!({"changes": changes}).to_string().into_bytes();
                let sent = tokio::time::timeout(
                    Duration::from_secs(2),
                    crate::support::http::try_request(Method::POST, &url, &[("authorization", format!("Bearer {TOKEN}"))], body),
                )
                .await;
                match sent {
                    Ok(Ok(status)) if status == StatusCode::ACCEPTED => accepted.lock().unwrap().extend(values),
                    // The process died: this batch was not accepted; stop.
                    _ => return,
                }
            }
        }));
    }
    // Let some work be accepted and some be delivered, then kill at an arbitrary moment.
    let deadline = tokio::time::Instant::now() + WAIT;
    while accepted.lock().unwrap().len() < 1500 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "changes are accepted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill9().await;
    for pusher in pushers {
        pusher.await.unwrap();
    }
    let accepted: HashSet<i64> = accepted.lock().unwrap().clone();
    let before_restart = receiver.count();

    let second = ServeProcess::spawn(&serve_args(&db, &ca_path), &[]).await;
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut drained = Vec::new();
    while !accepted.iter().all(|n| seen.contains_key(n)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} accepted changes delivered",
            accepted.iter().filter(|n| seen.contains_key(n)).count(),
            accepted.len()
        );
        if let Some(post) = receiver.next_post(Duration::from_millis(200)).await {
            drained.push(post);
        }
        drained.extend(
            receiver
                .try_drain()
                .into_iter()
                .filter(|r| r.method == Method::POST),
        );
        for post in drained.drain(..) {
            for entry in post.json()["entry"].as_array().unwrap() {
                for change in entry["changes"].as_array().unwrap() {
                    *seen
                        .entry(change["value"]["n"].as_i64().unwrap())
                        .or_default() += 1;
                }
            }
        }
    }
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    println!(
        "kill -9 durability: {} changes accepted, all delivered; {} POSTs before the crash; {duplicates} duplicate deliveries",
        accepted.len(),
        before_restart
    );
    second.terminate(WAIT).await;
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_the_generated_token_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("token.db").display());
    let first = ServeProcess::spawn(&["--database", &db], &[]).await;
    let token = first
        .printed_token
        .clone()
        .expect("a generated token is printed on first start");
    let response = request(
        Method::GET,
        &format!("{}/admin/apps", first.base),
        &[("authorization", format!("Bearer {token}"))],
        None,
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let status = first.terminate(WAIT).await;
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");

    let second = ServeProcess::spawn(&["--database", &db], &[]).await;
    assert!(second.printed_token.is_none(), "printed only once");
    let response = request(
        Method::GET,
        &format!("{}/admin/apps", second.base),
        &[("authorization", format!("Bearer {token}"))],
        None,
    )
    .await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "the stored token still works"
    );
    second.terminate(WAIT).await;
}

#[tokio::test]
async fn a_bad_flag_is_a_clear_message_not_a_panic() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_graphhooks"))
        .args(["serve", "--batch-max", "5000"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--batch-max must be between 1 and 1000"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_graphhooks"))
        .args(["serve", "--database", "mysql://nope"])
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("unsupported database URL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_never_show_a_secret_or_a_token() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_path = ca.write_pem(dir.path()).display().to_string();
    let db = format!("sqlite://{}", dir.path().join("logs.db").display());
    let receiver = Receiver::builder()
        .verify_token("a-verify-token-to-hide")
        .replies(vec![Reply::status(500)])
        .start(&ca)
        .await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_graphhooks"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &db,
            "--callback-ca",
            &ca_path,
        ])
        .args([
            "--allow-private-callbacks",
            "--retry-schedule",
            "0s",
            "--admin-token",
            TOKEN,
            "-vv",
        ])
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut printed = Vec::new();
    let base = loop {
        let mut chunk = [0u8; 256];
        let read = tokio::time::timeout(WAIT, stdout.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(read > 0, "graphhooks exited");
        printed.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&printed);
        if let Some(line) = text
            .lines()
            .find(|l| l.starts_with("graphhooks: listening on "))
        {
            break line
                .trim_start_matches("graphhooks: listening on ")
                .trim()
                .to_owned();
        }
    };
    let app = admin(
        &base,
        Method::POST,
        "/admin/apps",
        Some(json!({"name": "logged", "mode": "live"})),
    )
    .await;
    let id = app.json["id"].as_str().unwrap().to_owned();
    let secret = app.json["secret"].as_str().unwrap().to_owned();
    let token = format!("{id}|{secret}");
    let subscribed = request(
        Method::POST,
        &format!("{base}/{id}/subscriptions?access_token={}", token.replace('|', "%7C")),
        &[],
        Some((
            "application/json",
            json!({"object": "application", "fields": ["group_install"], "callback_url": receiver.url("/l"),
                   "verify_token": "a-verify-token-to-hide", "include_values": true})
            .to_string()
            .into_bytes(),
        )),
    )
    .await;
    assert_eq!(subscribed.status, StatusCode::OK, "{}", subscribed.text);
    let rotated = admin(
        &base,
        Method::POST,
        &format!("/admin/apps/{id}/secret"),
        Some(json!({"grace_period": "1h"})),
    )
    .await;
    let new_secret = rotated.json["secret"].as_str().unwrap().to_owned();
    admin(&base, Method::POST, "/admin/changes", Some(json!({"changes": [{"object": "application", "id": id, "field": "group_install", "value": {}}]}))).await;
    receiver.next_post(WAIT).await.expect("attempt 1 (500)");
    receiver.next_post(WAIT).await.expect("attempt 2");
    // A bad token and a wrong proof are logged about without their values.
    request(
        Method::GET,
        &format!("{base}/{id}/subscriptions?access_token={id}%7Cwrong-secret-value"),
        &[],
        None,
    )
    .await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    let logs = logs.await.unwrap();
    assert!(
        logs.contains("Delivered notification") || logs.contains("Attempt 1"),
        "the logs are real: {}",
        &logs[..logs.len().min(2000)]
    );
    for (what, value) in [
        ("admin token", TOKEN),
        ("app secret", secret.as_str()),
        ("rotated secret", new_secret.as_str()),
        ("verify token", "a-verify-token-to-hide"),
        ("wrong secret", "wrong-secret-value"),
    ] {
        assert!(!logs.contains(value), "the {what} appears in the logs");
    }
}
