//! The axum integration receiving real deliveries: handshake, verification over the escaped raw
//! bytes, typed parsing, refusal of a wrong secret, and a secret rotation.

use graphhooks_receiver::{Secret, Verifier};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestReceiver, TestServer, VERIFY_TOKEN, request};

/// The first attempt of the newest delivery, once it has one.
async fn first_attempt(server: &TestServer, app: &crate::support::TestApp) -> Value {
    let log = server
        .deliveries_until(app, |log| {
            log["data"][0]["attempts"]
                .as_array()
                .is_some_and(|attempts| !attempts.is_empty())
        })
        .await;
    log["data"][0]["attempts"][0].clone()
}

#[tokio::test]
async fn a_change_with_non_ascii_and_slashes_arrives_verified_and_typed() {
    let server = TestServer::start().await;
    let app = server.create_app().await;
    let mut receiver = TestReceiver::start(Verifier::new(&app.secret), VERIFY_TOKEN).await;
    let response = server.subscribe(&app, &receiver.url, VERIFY_TOKEN).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);

    let value = json!({"text": "Zoë likes café/bar 😀", "url": "https://x.example/a/b"});
    server.push_about(value.clone()).await;
    let verified = receiver.next().await;

    // The bytes as sent: ASCII only, escaped the way Meta escapes them.
    let raw = std::str::from_utf8(&verified.raw_body).expect("UTF-8");
    assert!(raw.is_ascii(), "{raw}");
    assert!(raw.contains(r"caf\u00e9\/bar \ud83d\ude00"), "{raw}");
    assert!(raw.contains(r"https:\/\/x.example\/a\/b"), "{raw}");
    // Re-serialising what was parsed would not verify; the raw bytes did.
    let reparsed: Value = serde_json::from_str(raw).expect("JSON");
    assert_ne!(serde_json::to_string(&reparsed).expect("JSON"), raw);

    let notification = &verified.payload;
    assert_eq!(notification.object, "user");
    let (entry, change) = notification.changes().next().expect("one change");
    assert_eq!(entry.id, "1021");
    assert_eq!(entry.uid.as_deref(), Some("1021"));
    assert!(entry.time.is_some_and(|time| time > 1_600_000_000));
    assert_eq!(change.field, "about");
    assert_eq!(change.value, value);
    assert_eq!(verified.attempt, Some(1));
    let delivery_id = verified.delivery_id.clone().expect("a delivery id");

    let log = server
        .deliveries_until(&app, |log| log["data"][0]["state"] == "delivered")
        .await;
    assert_eq!(log["data"][0]["id"], delivery_id.as_str());
    assert_eq!(log["data"][0]["attempts"][0]["status"], 200);
}

#[tokio::test]
async fn a_receiver_with_the_wrong_secret_answers_401_before_the_handler() {
    let server = TestServer::start().await;
    let app = server.create_app().await;
    let mut receiver = TestReceiver::start(Verifier::new("not the app secret"), VERIFY_TOKEN).await;
    let response = server.subscribe(&app, &receiver.url, VERIFY_TOKEN).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);

    server.push_about(json!("hello")).await;
    let attempt = first_attempt(&server, &app).await;
    assert_eq!(attempt["status"], 401, "{attempt}");
    let shown = attempt["response"].as_str().expect("the response body");
    assert!(shown.contains("signature mismatch"), "{shown}");
    assert!(!receiver.has_pending(), "the handler never ran");

    // A forged request straight to the receiver: refused too.
    let body = br#"{"object":"user","entry":[]}"#.to_vec();
    for headers in [
        vec![(
            "x-hub-signature-256",
            Secret::new("forged").sign_sha256(&body),
        )],
        vec![],
    ] {
        let response = request(Method::POST, &receiver.url, &headers, Some(body.clone())).await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            response.text
        );
    }
    assert!(!receiver.has_pending());
}

#[tokio::test]
async fn a_wrong_verify_token_fails_the_subscription() {
    let server = TestServer::start().await;
    let app = server.create_app().await;
    let receiver = TestReceiver::start(Verifier::new(&app.secret), "the receiver's token").await;
    let response = server.subscribe(&app, &receiver.url, VERIFY_TOKEN).await;
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.text
    );
    assert_eq!(response.json["error"]["code"], 2200, "{}", response.text);
    assert!(response.text.contains("403"), "{}", response.text);
}

#[tokio::test]
async fn a_secret_rotation_verifies_with_the_old_the_new_or_both_secrets() {
    let server = TestServer::start().await;
    let app = server.create_app().await;
    let old = app.secret.clone();
    let mut receiver = TestReceiver::start(Verifier::new(&old), VERIFY_TOKEN).await;
    let response = server.subscribe(&app, &receiver.url, VERIFY_TOKEN).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);

    server.push_about(json!("before the rotation")).await;
    assert_eq!(
        receiver.next().await.payload.entry[0].changes[0].value,
        "before the rotation"
    );

    // During the grace period the new secret signs X-Hub-Signature-256 and the old one
    // X-Hub-Signature-256-Previous: a receiver that still has only the old secret verifies.
    let new = server.rotate(&app, "1h").await;
    assert_ne!(new, old);
    server.push_about(json!("old secret only")).await;
    assert_eq!(
        receiver.next().await.payload.entry[0].changes[0].value,
        "old secret only"
    );

    // Redeployed with the new secret only.
    receiver.set_verifier(Verifier::new(&new));
    server.push_about(json!("new secret only")).await;
    assert_eq!(
        receiver.next().await.payload.entry[0].changes[0].value,
        "new secret only"
    );

    // Both, as a receiver configured for the switch-over holds them.
    receiver.set_verifier(Verifier::new(&old).with_secret(&new));
    server.push_about(json!("both secrets")).await;
    assert_eq!(
        receiver.next().await.payload.entry[0].changes[0].value,
        "both secrets"
    );

    // Without a grace period no Previous header comes, and a receiver left with a retired
    // secret refuses: the header above is what kept it verifying.
    receiver.set_verifier(Verifier::new(&new));
    let newest = server.rotate(&app, "0s").await;
    server.push_about(json!("retired secret")).await;
    let log = server
        .deliveries_until(&app, |log| {
            log["data"][0]["attempts"][0]["status"].is_number()
                && log["data"][0]["body"]
                    .as_str()
                    .is_some_and(|body| body.contains("retired secret"))
        })
        .await;
    assert_eq!(log["data"][0]["attempts"][0]["status"], 401, "{log}");
    assert!(!receiver.has_pending());

    receiver.set_verifier(Verifier::new(&newest));
    server.push_about(json!("current secret")).await;
    assert_eq!(
        receiver.next().await.payload.entry[0].changes[0].value,
        "current secret"
    );
}
