//! What app developers get beyond Meta: secret rotation without a gap, Standard Webhooks
//! headers (checked with the official Python library), mutual TLS, pause and resume with an
//! operator alert, replay, their own explain, page installs through `subscribed_apps`, and
//! metrics.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use graphhooks_testkit::{Receiver, Reply, TestCa};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestServer, WAIT, change, sign256};

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

#[tokio::test]
async fn a_rotated_secret_signs_alongside_the_old_one_for_the_grace_period() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "application", &["group_install"], &receiver, "/rot")
        .await;
    let response = server
        .admin(
            Method::POST,
            &format!("/admin/apps/{}/secret", app.id),
            Some(json!({"grace_period": "1h"})),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let new_secret = response.json["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, app.secret);

    server
        .push(vec![change(
            "application",
            &app.id,
            "group_install",
            json!({"n": 1}),
        )])
        .await;
    let post = receiver.next_post(WAIT).await.expect("a notification");
    assert_eq!(
        post.header("x-hub-signature-256").unwrap(),
        sign256(&new_secret, &post.body)
    );
    assert_eq!(
        post.header("x-hub-signature-256-previous").unwrap(),
        sign256(&app.secret, &post.body)
    );

    // During the grace period the old app token still works; the new one does too.
    for secret in [&app.secret, &new_secret] {
        let response = server
            .graph(
                Method::GET,
                &format!("/{}/subscriptions", app.id),
                &bearer(&format!("{}|{secret}", app.id)),
                None,
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    }

    // Rotating again without a grace period drops the previous signature at once.
    let response = server
        .admin(
            Method::POST,
            &format!("/admin/apps/{}/secret", app.id),
            None,
        )
        .await;
    let newest = response.json["secret"].as_str().unwrap().to_owned();
    server
        .push(vec![change(
            "application",
            &app.id,
            "group_install",
            json!({"n": 2}),
        )])
        .await;
    let post = receiver.next_post(WAIT).await.expect("a notification");
    assert_eq!(
        post.header("x-hub-signature-256").unwrap(),
        sign256(&newest, &post.body)
    );
    assert!(post.header("x-hub-signature-256-previous").is_none());
    let response = server
        .graph(
            Method::GET,
            &format!("/{}/subscriptions", app.id),
            &bearer(&app.token()),
            None,
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNAUTHORIZED,
        "the first secret is gone"
    );
    let response = server
        .admin(
            Method::POST,
            &format!("/admin/apps/{}/secret", app.id),
            Some(json!({"grace_period": "soon"})),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
}

/// The Python interpreter with `standardwebhooks` installed (scripts/test prepares one).
fn python() -> String {
    std::env::var("GRAPHHOOKS_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[tokio::test]
async fn standard_webhooks_headers_verify_with_the_official_library() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    let body = json!({"object": "application", "fields": ["group_install"], "callback_url": receiver.url("/sw"),
                      "verify_token": "verify-me", "include_values": true, "standard_webhooks": true});
    let response = server
        .graph(
            Method::POST,
            &format!("/{}/subscriptions", app.id),
            &bearer(&app.token()),
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    receiver.next(WAIT).await.expect("handshake");
    server
        .push(vec![change(
            "application",
            &app.id,
            "group_install",
            json!({"who": "Zoë/Łukasz"}),
        )])
        .await;
    let post = receiver.next_post(WAIT).await.expect("a notification");
    let id = post.header("x-graphhooks-delivery").unwrap();
    assert_eq!(
        post.header("webhook-id"),
        Some(id),
        "webhook-id is the delivery id"
    );
    assert!(post.header("webhook-signature").unwrap().starts_with("v1,"));

    // The official library, keyed `whsec_<base64(app secret)>`.
    let dir = tempfile::tempdir().unwrap();
    let body_path = dir.path().join("body");
    std::fs::write(&body_path, &post.body).unwrap();
    let headers = json!({
        "webhook-id": post.header("webhook-id"),
        "webhook-timestamp": post.header("webhook-timestamp"),
        "webhook-signature": post.header("webhook-signature"),
    });
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(&app.secret)
    );
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
body = open(sys.argv[1], "rb").read()
payload = Webhook(sys.argv[2]).verify(body, json.loads(sys.argv[3]))
print(payload["entry"][0]["changes"][0]["value"]["who"])
"#;
    let output = std::process::Command::new(python())
        .args([
            "-c",
            script,
            &body_path.display().to_string(),
            &secret,
            &headers.to_string(),
        ])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "standardwebhooks refused the signature (or is not installed: run ./scripts/test, or pip install standardwebhooks and set GRAPHHOOKS_TEST_PYTHON): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "Zoë/Łukasz");
    let wrong = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode("0".repeat(64))
    );
    let output = std::process::Command::new(python())
        .args([
            "-c",
            script,
            &body_path.display().to_string(),
            &wrong,
            &headers.to_string(),
        ])
        .output()
        .expect("run python");
    assert!(!output.status.success(), "a wrong key must not verify");
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate_to_callbacks_that_ask_for_it() {
    let ca = Arc::new(TestCa::new());
    let client_dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca
        .issue_client("graphhooks")
        .write(client_dir.path(), "client");
    let server = TestServer::start_with(ca.clone(), |config| {
        config.client_cert = Some(cert.clone());
        config.client_key = Some(key.clone());
    })
    .await;
    let app = server.create_app("live").await;
    let receiver = Receiver::builder()
        .require_client_cert(ca.client_verifier_roots())
        .start(&ca)
        .await;

    // Without the certificate the receiver refuses the TLS handshake: the subscription fails.
    let response = server
        .subscribe(
            &app,
            "application",
            &["group_install"],
            &receiver.url("/m"),
            true,
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.text
    );
    assert_eq!(response.json["error"]["code"], 2200);

    let body = json!({"object": "application", "fields": ["group_install"], "callback_url": receiver.url("/m"),
                      "verify_token": "verify-me", "include_values": true, "include_client_certificate": true});
    let response = server
        .graph(
            Method::POST,
            &format!("/{}/subscriptions", app.id),
            &bearer(&app.token()),
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    receiver
        .next(WAIT)
        .await
        .expect("the handshake, over mutual TLS");
    server
        .push(vec![change(
            "application",
            &app.id,
            "group_install",
            json!({}),
        )])
        .await;
    let post = receiver
        .next_post(WAIT)
        .await
        .expect("a notification over mutual TLS");
    assert_eq!(
        post.header("x-hub-signature-256").unwrap(),
        sign256(&app.secret, &post.body)
    );
}

#[tokio::test]
async fn mutual_tls_needs_a_configured_certificate() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    let body = json!({"object": "application", "fields": ["group_install"], "callback_url": receiver.url("/m"),
                      "verify_token": "verify-me", "include_client_certificate": true});
    let response = server
        .graph(
            Method::POST,
            &format!("/{}/subscriptions", app.id),
            &bearer(&app.token()),
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert!(response.text.contains("client-cert"), "{}", response.text);
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn a_failing_callback_is_paused_with_an_alert_and_resumes_its_backlog_in_order() {
    let ca = Arc::new(TestCa::new());
    let alerts = Receiver::builder().start(&ca).await;
    let alert_url = alerts.url("/alerts");
    let server = TestServer::start_with(ca.clone(), |config| {
        config.pause_after = Duration::from_millis(300);
        config.retry.schedule = vec![Duration::from_millis(100)];
        config.alert_url = Some(alert_url.clone());
        config.alert_secret = Some("alert-secret".into());
    })
    .await;
    let app = server.create_app("live").await;
    let receiver = Receiver::builder()
        .default_reply(Reply::status(500))
        .start(&ca)
        .await;
    server
        .subscribe_ok(&app, "application", &["group_install"], &receiver, "/p")
        .await;
    server
        .push(vec![change(
            "application",
            &app.id,
            "group_install",
            json!({"n": 1}),
        )])
        .await;

    // The operator hears of it, signed like any notification.
    let alert = alerts.next_post(WAIT).await.expect("the pause alert");
    assert_eq!(
        alert.header("x-hub-signature-256").unwrap(),
        sign256("alert-secret", &alert.body)
    );
    let alert = alert.json();
    assert_eq!(alert["object"], "graphhooks_alert");
    let value = &alert["entry"][0]["changes"][0]["value"];
    assert_eq!(
        alert["entry"][0]["changes"][0]["field"],
        "subscription_paused"
    );
    assert_eq!(
        (value["app_id"].as_str(), value["object"].as_str()),
        (Some(app.id.as_str()), Some("application"))
    );

    // The app sees it too; new notifications are kept, not sent.
    let listed = server
        .graph(
            Method::GET,
            &format!("/{}/subscriptions", app.id),
            &bearer(&app.token()),
            None,
        )
        .await;
    assert_eq!(listed.json["data"][0]["active"], false, "{}", listed.text);
    let attempts_before = receiver.try_drain().len();
    assert!(attempts_before >= 2);
    server
        .push(vec![change(
            "application",
            &app.id,
            "group_install",
            json!({"n": 2}),
        )])
        .await;
    let log = server
        .deliveries_until(&format!("app_id={}&state=paused", app.id), |log| {
            log["data"].as_array().unwrap().len() == 2
        })
        .await;
    let first = log["data"][1]["id"].as_str().unwrap().to_owned();
    assert!(
        receiver
            .next_post(Duration::from_millis(400))
            .await
            .is_none(),
        "held while paused"
    );

    receiver.set_default_reply(Reply::ok());
    let response = server
        .admin(
            Method::POST,
            &format!("/admin/apps/{}/subscriptions/application/resume", app.id),
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.json["resumed"], 2);
    let post = receiver.next_post(WAIT).await.expect("the backlog");
    assert_eq!(
        post.header("x-graphhooks-delivery"),
        Some(first.as_str()),
        "the one that caused the pause goes first"
    );
    assert_eq!(post.json()["entry"][0]["changes"][0]["value"]["n"], 1);
    let post = receiver
        .next_post(WAIT)
        .await
        .expect("the rest of the backlog");
    assert_eq!(post.json()["entry"][0]["changes"][0]["value"]["n"], 2);
    let listed = server
        .graph(
            Method::GET,
            &format!("/{}/subscriptions", app.id),
            &bearer(&app.token()),
            None,
        )
        .await;
    assert_eq!(listed.json["data"][0]["active"], true);
    let response = server
        .admin(
            Method::POST,
            &format!("/admin/apps/{}/subscriptions/page/resume", app.id),
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn replay_sends_a_windows_changes_again_as_new_notifications() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "application", &["group_install"], &receiver, "/r")
        .await;
    let at = |n: i64, time: i64| {
        let mut c = change("application", &app.id, "group_install", json!({"n": n}));
        c["time"] = json!(time);
        c
    };
    server.push(vec![at(1, 1_000), at(2, 2_000)]).await;
    let first = receiver
        .next_post(WAIT)
        .await
        .expect("both changes, batched");
    assert_eq!(
        first.json()["entry"][0]["changes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let response = server
        .admin(
            Method::POST,
            &format!("/admin/apps/{}/replay", app.id),
            Some(json!({"since": 500, "until": 1_500})),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.json, json!({"replayed": 1, "changes": 1}));
    let replayed = receiver.next_post(WAIT).await.expect("the replay");
    assert_eq!(replayed.json()["entry"][0]["changes"][0]["value"]["n"], 1);
    assert_ne!(
        replayed.header("x-graphhooks-delivery"),
        first.header("x-graphhooks-delivery"),
        "a new notification"
    );
    assert!(
        receiver
            .next_post(Duration::from_millis(300))
            .await
            .is_none(),
        "change 2 is outside the window"
    );
    for body in [
        json!({"since": 5, "until": 1}),
        json!({"since": 1}),
        json!({"since": 1, "until": 2, "object": "spaceship"}),
    ] {
        let response = server
            .admin(
                Method::POST,
                &format!("/admin/apps/{}/replay", app.id),
                Some(body),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{}",
            response.text
        );
    }
}

#[tokio::test]
async fn an_app_can_explain_its_own_changes_and_no_others() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let other = server.create_app("live").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "user", &["name"], &receiver, "/e")
        .await;
    server.grant(&app, "user", "mine", &[]).await;
    server.grant(&other, "user", "theirs", &[]).await;
    let ids = server
        .push(vec![
            change("user", "mine", "name", json!("a")),
            change("user", "theirs", "name", json!("b")),
        ])
        .await;
    let post = receiver.next_post(WAIT).await.expect("a notification");
    let auth = bearer(&app.token());
    let response = server
        .graph(
            Method::GET,
            &format!("/v25.0/{}/changes/{}/explain", app.id, ids[0]),
            &auth,
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let results = response.json["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "only its own result");
    assert_eq!(results[0]["eligible"], true);
    assert_eq!(
        results[0]["delivery_id"].as_str(),
        post.header("x-graphhooks-delivery")
    );
    let response = server
        .graph(
            Method::GET,
            &format!("/{}/changes/{}/explain", app.id, ids[1]),
            &auth,
            None,
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::NOT_FOUND,
        "an object it has no grant for: {}",
        response.text
    );
    let response = server
        .graph(
            Method::GET,
            &format!("/{}/changes/{}/explain", other.id, ids[1]),
            &auth,
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn page_owners_install_apps_through_subscribed_apps() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "page", &["feed"], &receiver, "/page")
        .await;
    let response = server
        .admin(
            Method::POST,
            "/admin/object-tokens",
            Some(json!({"object": "page", "id": "1234"})),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let token = response.json["token"].as_str().unwrap().to_owned();
    let page_auth = bearer(&token);

    let response = server
        .graph(
            Method::POST,
            "/v25.0/1234/subscribed_apps",
            &page_auth,
            Some((
                "application/x-www-form-urlencoded",
                format!("app_id={}&subscribed_fields=feed,mention", app.id).into_bytes(),
            )),
        )
        .await;
    assert_eq!(response.json, json!({"success": true}), "{}", response.text);
    let listed = server
        .graph(Method::GET, "/1234/subscribed_apps", &page_auth, None)
        .await;
    assert_eq!(listed.json["data"][0]["id"], app.id);
    assert_eq!(
        listed.json["data"][0]["subscribed_fields"],
        json!(["feed", "mention"])
    );
    // The install is the grant: the page's feed now reaches the app.
    server
        .push(vec![change(
            "page",
            "1234",
            "feed",
            json!({"item": "post", "verb": "add"}),
        )])
        .await;
    let post = receiver
        .next_post(WAIT)
        .await
        .expect("the page's notification");
    assert_eq!(post.json()["entry"][0]["id"], "1234");

    // Tokens reach their own object only; app tokens are not page tokens.
    let response = server
        .graph(Method::GET, "/999/subscribed_apps", &page_auth, None)
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    let response = server
        .graph(
            Method::GET,
            "/1234/subscribed_apps",
            &bearer(&app.token()),
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    let response = server
        .graph(
            Method::GET,
            "/1234/subscribed_apps",
            &bearer(crate::support::ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "the operator may too");

    // A user who happens to have the same id is another object: the page's token cannot touch
    // the app's grant for that user.
    server.grant(&app, "user", "1234", &["email"]).await;
    let response = server
        .graph(
            Method::DELETE,
            &format!("/1234/subscribed_apps?app_id={}&object_type=user", app.id),
            &page_auth,
            None,
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.text
    );
    let response = server
        .graph(
            Method::DELETE,
            &format!("/1234/subscribed_apps?app_id={}", app.id),
            &page_auth,
            None,
        )
        .await;
    assert_eq!(response.json, json!({"success": true}));
    let listed = server
        .graph(Method::GET, "/1234/subscribed_apps", &page_auth, None)
        .await;
    assert_eq!(listed.json["data"], json!([]));
    let grants = server
        .admin(Method::GET, &format!("/admin/apps/{}/grants", app.id), None)
        .await;
    let kept: Vec<&str> = grants.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["object_id"] == "1234")
        .map(|g| g["object_type"].as_str().unwrap())
        .collect();
    assert_eq!(kept, vec!["user"], "{}", grants.text);
    let response = server
        .admin(Method::DELETE, "/admin/object-tokens/page/1234", None)
        .await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    let response = server
        .graph(Method::GET, "/1234/subscribed_apps", &page_auth, None)
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED, "revoked");
}

#[tokio::test]
async fn metrics_cover_ingest_outcomes_latency_and_the_queue() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(
            &app,
            "application",
            &["group_install"],
            &receiver,
            "/metrics",
        )
        .await;
    server
        .push(vec![change(
            "application",
            &app.id,
            "group_install",
            json!({}),
        )])
        .await;
    receiver.next_post(WAIT).await.expect("a notification");
    server
        .deliveries_until(&format!("app_id={}&state=delivered", app.id), |log| {
            !log["data"].as_array().unwrap().is_empty()
        })
        .await;
    let metrics =
        crate::support::http::request(Method::GET, &format!("{}/metrics", server.base), &[], None)
            .await;
    assert_eq!(metrics.status, StatusCode::OK);
    for series in [
        "graphhooks_changes_accepted_total",
        "graphhooks_notifications_total{outcome=\"delivered\"}",
        "graphhooks_attempt_duration_seconds_bucket",
        "graphhooks_queue_pending",
        "graphhooks_queue_paused",
        "graphhooks_oldest_pending_age_seconds",
    ] {
        assert!(
            metrics.text.contains(series),
            "{series} missing from:\n{}",
            metrics.text
        );
    }
    let _: Value = Value::Null;
}
