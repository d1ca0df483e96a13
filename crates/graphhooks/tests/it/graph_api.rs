//! The Graph-compatible API: subscriptions with the handshake, every parameter encoding, auth,
//! errors, and refused callbacks.

use std::sync::Arc;

use graphhooks_core::signature::appsecret_proof;
use graphhooks_testkit::{Handshake, IssuedCert, Receiver, Reply, TestCa};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestServer, WAIT};

fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

fn assert_graph_error(response: &crate::support::Response, status: StatusCode, code: u64) {
    assert_eq!(response.status, status, "{}", response.text);
    let error = &response.json["error"];
    assert_eq!(error["code"], code, "{}", response.text);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("(#{code}) ")),
        "{}",
        response.text
    );
    assert!(matches!(
        error["type"].as_str(),
        Some("OAuthException" | "GraphMethodException")
    ));
    assert!(
        error["fbtrace_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

async fn subscriptions(server: &TestServer, app: &crate::support::TestApp) -> Value {
    let response = server
        .graph(
            Method::GET,
            &format!("/{}/subscriptions", app.id),
            &bearer(&app.token()),
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    response.json
}

#[tokio::test]
async fn a_subscription_runs_the_handshake_and_is_listed_with_versions() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    let callback = format!("{}?tenant=7", receiver.url("/hook"));
    let response = server
        .subscribe(&app, "user", &["email", "photos"], &callback, true)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.json, json!({"success": true}));

    let handshake = receiver.next(WAIT).await.expect("handshake");
    assert_eq!(handshake.method, Method::GET);
    assert_eq!(handshake.path, "/hook");
    assert_eq!(
        handshake.query_param("tenant").as_deref(),
        Some("7"),
        "the existing query is kept"
    );
    assert_eq!(
        handshake.query_param("hub.mode").as_deref(),
        Some("subscribe")
    );
    assert_eq!(
        handshake.query_param("hub.verify_token").as_deref(),
        Some("verify-me")
    );
    let challenge = handshake.query_param("hub.challenge").unwrap();
    assert!(
        !challenge.is_empty() && challenge.bytes().all(|b| b.is_ascii_digit()),
        "{challenge}"
    );

    let listed = subscriptions(&server, &app).await;
    assert_eq!(
        listed,
        json!({"data": [{
            "object": "user",
            "callback_url": callback,
            "active": true,
            "fields": [{"name": "email", "version": "v25.0"}, {"name": "photos", "version": "v25.0"}],
        }]})
    );
    assert!(
        !listed.to_string().contains("verify-me"),
        "no tokens in the listing"
    );

    // Adding a field through another version keeps the others and pins the new one.
    let response = server
        .graph(
            Method::POST,
            &format!("/v19.0/{}/subscriptions", app.id),
            &bearer(&app.token()),
            Some((
                "application/x-www-form-urlencoded",
                b"object=user&fields=friends".to_vec(),
            )),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(receiver.count(), 1, "same URL and token: no new handshake");
    let fields = subscriptions(&server, &app).await["data"][0]["fields"].clone();
    assert_eq!(
        fields,
        json!([
            {"name": "email", "version": "v25.0"},
            {"name": "friends", "version": "v19.0"},
            {"name": "photos", "version": "v25.0"},
        ])
    );
}

#[tokio::test]
async fn a_failed_handshake_stores_nothing_and_says_what_came_back() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;

    // Wrong verify token: the receiver answers 403 "bad token".
    let receiver = Receiver::builder()
        .verify_token("something-else")
        .start(&server.ca)
        .await;
    let response = server
        .subscribe(&app, "page", &["feed"], &receiver.url("/cb"), true)
        .await;
    assert_graph_error(&response, StatusCode::BAD_REQUEST, 2200);
    let message = response.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("403") && message.contains("bad token"),
        "{message}"
    );

    // 200 with the wrong body.
    receiver.set_handshake(Handshake::Reply(Reply::ok().with_body("not the challenge")));
    let response = server
        .subscribe(&app, "page", &["feed"], &receiver.url("/cb"), true)
        .await;
    assert_graph_error(&response, StatusCode::BAD_REQUEST, 2201);
    let message = response.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("received=\"not the challenge\""),
        "{message}"
    );

    // Nothing listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let response = server
        .subscribe(
            &app,
            "page",
            &["feed"],
            &format!("https://localhost:{closed}/cb"),
            true,
        )
        .await;
    assert_graph_error(&response, StatusCode::BAD_REQUEST, 2200);
    assert!(
        response.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not reach"),
        "{}",
        response.text
    );

    assert_eq!(subscriptions(&server, &app).await, json!({"data": []}));
}

#[tokio::test]
async fn a_self_signed_callback_is_refused_with_the_tls_error() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = Receiver::builder()
        .cert(IssuedCert::self_signed(&["localhost", "127.0.0.1"]))
        .start(&server.ca)
        .await;
    let response = server
        .subscribe(&app, "page", &["feed"], &receiver.url("/cb"), true)
        .await;
    assert_graph_error(&response, StatusCode::BAD_REQUEST, 2200);
    let message = response.json["error"]["message"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        message.contains("certificate"),
        "the TLS error is named: {message}"
    );
    assert_eq!(receiver.count(), 0, "no request got through");
    assert_eq!(subscriptions(&server, &app).await, json!({"data": []}));

    // A certificate for another host name is refused too.
    let wrong_host = Receiver::builder()
        .cert(server.ca.issue_server(&["not-this-host.example"]))
        .start(&server.ca)
        .await;
    let response = server
        .subscribe(&app, "page", &["feed"], &wrong_host.url("/cb"), true)
        .await;
    assert_graph_error(&response, StatusCode::BAD_REQUEST, 2200);
}

#[tokio::test]
async fn private_and_plain_http_callbacks_are_refused_before_any_request() {
    let ca = Arc::new(TestCa::new());
    let server =
        TestServer::start_with(ca.clone(), |config| config.allow_private_callbacks = false).await;
    let app = server.create_app("live").await;
    let receiver = Receiver::builder().start(&ca).await;
    for url in [receiver.ip_url("/cb"), receiver.url("/cb")] {
        let response = server.subscribe(&app, "page", &["feed"], &url, true).await;
        assert_graph_error(&response, StatusCode::BAD_REQUEST, 100);
        assert!(
            response.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("non-public"),
            "{}",
            response.text
        );
    }
    let response = server
        .subscribe(&app, "page", &["feed"], "http://example.com/cb", true)
        .await;
    assert_graph_error(&response, StatusCode::BAD_REQUEST, 100);
    assert!(
        response.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("https"),
        "{}",
        response.text
    );
    let response = server
        .subscribe(&app, "page", &["feed"], "https://", true)
        .await;
    assert_graph_error(&response, StatusCode::BAD_REQUEST, 100);
    assert_eq!(receiver.count(), 0, "no request reached the host");
}

#[tokio::test]
async fn plain_http_callbacks_work_with_the_development_flag() {
    let ca = Arc::new(TestCa::new());
    let server =
        TestServer::start_with(ca.clone(), |config| config.allow_http_callbacks = true).await;
    let app = server.create_app("live").await;
    let receiver = Receiver::builder().plain_http().start(&ca).await;
    assert!(receiver.url("/cb").starts_with("http://"));
    server
        .subscribe_ok(&app, "page", &["feed"], &receiver, "/cb")
        .await;
}

#[tokio::test]
async fn the_python_sdk_form_with_token_and_proof_in_the_query_is_accepted() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    let token = app.token();
    let proof = appsecret_proof(&app.secret, &token);
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("access_token", &token)
        .append_pair("appsecret_proof", &proof)
        .finish();
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("object", "page")
        .append_pair("callback_url", &receiver.url("/sdk"))
        .append_pair("fields", r#"["feed","mention"]"#)
        .append_pair("verify_token", "verify-me")
        .append_pair("include_values", "true")
        .append_pair("summary", "true") // an SDK extra, ignored
        .finish();
    let response = server
        .graph(
            Method::POST,
            &format!("/v25.0/{}/subscriptions?{query}", app.id),
            &[],
            Some(("application/x-www-form-urlencoded", body.into_bytes())),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let listed = subscriptions(&server, &app).await;
    assert_eq!(listed["data"][0]["fields"].as_array().unwrap().len(), 2);

    // A wrong proof is refused with code 100.
    let response = server
        .graph(
            Method::GET,
            &format!(
                "/{}/subscriptions?access_token={}&appsecret_proof={}",
                app.id,
                token.replace('|', "%7C"),
                "00".repeat(32)
            ),
            &[],
            None,
        )
        .await;
    assert_graph_error(&response, StatusCode::BAD_REQUEST, 100);
}

#[tokio::test]
async fn parameters_arrive_in_every_encoding() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    let url = receiver.url("/enc");

    // Query string only, comma list, OAuth header.
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("object", "user")
        .append_pair("fields", "email,name")
        .append_pair("callback_url", &url)
        .append_pair("verify_token", "verify-me")
        .append_pair("include_values", "1")
        .finish();
    let response = server
        .graph(
            Method::POST,
            &format!("/{}/subscriptions?{query}", app.id),
            &[("authorization", format!("OAuth {}", app.token()))],
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);

    // Multipart, PHP-style list keys.
    let boundary = "GraphHooks-Boundary7MA4YWxk";
    let mut body = String::new();
    for (name, value) in [
        ("object", "page"),
        ("fields[]", "feed"),
        ("fields[]", "mention"),
        ("callback_url", url.as_str()),
        ("verify_token", "verify-me"),
        ("include_values", "false"),
        ("access_token", &app.token()),
    ] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let response = server
        .graph(
            Method::POST,
            &format!("/v25.0/{}/subscriptions", app.id),
            &[],
            Some((
                &format!("multipart/form-data; boundary={boundary}"),
                body.into_bytes(),
            )),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);

    let listed = subscriptions(&server, &app).await;
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["object"], "page");
    assert_eq!(data[0]["fields"].as_array().unwrap().len(), 2);
    assert_eq!(data[1]["object"], "user");

    // Invalid booleans and lists are code 100.
    for body in [
        json!({"object": "user", "fields": ["email"], "include_values": "maybe"}),
        json!({"object": "user", "fields": 5}),
        json!({"object": "user", "fields": "[\"email\""}),
    ] {
        let response = server
            .graph(
                Method::POST,
                &format!("/{}/subscriptions", app.id),
                &bearer(&app.token()),
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await;
        assert_graph_error(&response, StatusCode::BAD_REQUEST, 100);
    }
}

#[tokio::test]
async fn tokens_are_checked() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let other = server.create_app("live").await;
    let path = format!("/{}/subscriptions", app.id);

    let response = server.graph(Method::GET, &path, &[], None).await;
    assert_graph_error(&response, StatusCode::UNAUTHORIZED, 190);
    let response = server
        .graph(Method::GET, &path, &bearer("garbage"), None)
        .await;
    assert_graph_error(&response, StatusCode::UNAUTHORIZED, 190);
    let wrong_secret = format!("{}|{}", app.id, "0".repeat(64));
    let response = server
        .graph(Method::GET, &path, &bearer(&wrong_secret), None)
        .await;
    assert_graph_error(&response, StatusCode::UNAUTHORIZED, 190);
    let response = server
        .graph(Method::GET, &path, &bearer(&other.token()), None)
        .await;
    assert_graph_error(&response, StatusCode::FORBIDDEN, 200);
    let response = server
        .graph(
            Method::GET,
            "/999999/subscriptions",
            &bearer(&app.token()),
            None,
        )
        .await;
    assert_graph_error(&response, StatusCode::FORBIDDEN, 200);
    let response = server
        .graph(
            Method::GET,
            &format!("/{}/nonsense", app.id),
            &bearer(&app.token()),
            None,
        )
        .await;
    assert_graph_error(&response, StatusCode::NOT_FOUND, 100);
}

#[tokio::test]
async fn unknown_objects_and_fields_are_code_100_and_store_nothing() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    let response = server
        .subscribe(&app, "spaceship", &["speed"], &receiver.url("/x"), true)
        .await;
    assert_graph_error(&response, StatusCode::BAD_REQUEST, 100);
    assert!(
        response.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("spaceship")
    );
    let response = server
        .subscribe(
            &app,
            "user",
            &["email", "shoe_size"],
            &receiver.url("/x"),
            true,
        )
        .await;
    assert_graph_error(&response, StatusCode::BAD_REQUEST, 100);
    assert!(
        response.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shoe_size")
    );
    assert_eq!(receiver.count(), 0);
    assert_eq!(subscriptions(&server, &app).await, json!({"data": []}));
}

#[tokio::test]
async fn deleting_removes_fields_objects_or_everything() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "user", &["email", "name"], &receiver, "/a")
        .await;
    server
        .subscribe_ok(&app, "page", &["feed"], &receiver, "/b")
        .await;
    let path = format!("/{}/subscriptions", app.id);
    let auth = bearer(&app.token());

    let response = server
        .graph(
            Method::DELETE,
            &format!("{path}?object=user&fields=email"),
            &auth,
            None,
        )
        .await;
    assert_eq!(response.json, json!({"success": true}), "{}", response.text);
    let listed = subscriptions(&server, &app).await;
    assert_eq!(
        listed["data"][1]["fields"],
        json!([{"name": "name", "version": "v25.0"}])
    );

    let response = server
        .graph(Method::DELETE, &format!("{path}?object=page"), &auth, None)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(
        subscriptions(&server, &app).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // POST with method=delete, as Meta's JS SDK sends it.
    let response = server
        .graph(Method::POST, &format!("{path}?method=delete"), &auth, None)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(subscriptions(&server, &app).await, json!({"data": []}));
}

#[tokio::test]
async fn a_graph_body_over_one_mebibyte_is_413() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let big =
        json!({"object": "user", "fields": ["email"], "padding": "x".repeat(1024 * 1024 + 10)});
    let response = server
        .graph(
            Method::POST,
            &format!("/{}/subscriptions", app.id),
            &bearer(&app.token()),
            Some(("application/json", big.to_string().into_bytes())),
        )
        .await;
    assert_graph_error(&response, StatusCode::PAYLOAD_TOO_LARGE, 100);
}

#[tokio::test]
async fn a_changed_callback_url_runs_a_new_handshake() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let first = server.receiver().await;
    server
        .subscribe_ok(&app, "user", &["email"], &first, "/1")
        .await;
    let second = Receiver::builder()
        .verify_token("verify-me")
        .start(&server.ca)
        .await;
    let response = server
        .subscribe(&app, "user", &[], &second.url("/2"), true)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(
        second.next(WAIT).await.expect("handshake").method,
        Method::GET
    );
    let listed = subscriptions(&server, &app).await;
    assert_eq!(listed["data"][0]["callback_url"], second.url("/2"));
    assert_eq!(
        listed["data"][0]["fields"].as_array().unwrap().len(),
        1,
        "fields kept"
    );
}

#[tokio::test]
async fn calls_past_the_per_app_limit_get_code_4_and_a_retry_after() {
    let server = TestServer::start_with(Arc::new(TestCa::new()), |config| {
        config.graph_rate_limit = 3;
    })
    .await;
    let app = server.create_app("live").await;
    let other = server.create_app("live").await;
    let path = format!("/{}/subscriptions", app.id);

    // Calls that do not prove who is calling count against nobody.
    for _ in 0..5 {
        let response = server
            .graph(Method::GET, &path, &bearer("garbage"), None)
            .await;
        assert_graph_error(&response, StatusCode::UNAUTHORIZED, 190);
    }
    // Three calls: one subscription and two reads.
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "user", &["email"], &receiver, "/limited")
        .await;
    for _ in 0..2 {
        subscriptions(&server, &app).await;
    }
    let limited = server
        .graph(Method::GET, &path, &bearer(&app.token()), None)
        .await;
    assert_graph_error(&limited, StatusCode::TOO_MANY_REQUESTS, 4);
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // 3 per minute: the next call is allowed 20 s after the first.
    assert!((1..=20).contains(&retry_after), "Retry-After {retry_after}");
    // Every edge is counted, and a limited call changes nothing.
    let limited = server
        .graph(
            Method::DELETE,
            &path,
            &bearer(&app.token()),
            Some(("application/json", br#"{"object":"user"}"#.to_vec())),
        )
        .await;
    assert_graph_error(&limited, StatusCode::TOO_MANY_REQUESTS, 4);

    // Another app has its own allowance; the operator token is not limited, and sees that the
    // refused DELETE removed nothing.
    subscriptions(&server, &other).await;
    for _ in 0..5 {
        let response = server
            .graph(
                Method::GET,
                &path,
                &bearer(crate::support::ADMIN_TOKEN),
                None,
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
        assert_eq!(
            response.json["data"][0]["object"], "user",
            "{}",
            response.text
        );
    }
    // The recorder is process-wide and other tests run beside this one, so at least these two.
    let metrics =
        crate::support::http::request(Method::GET, &format!("{}/metrics", server.base), &[], None)
            .await;
    let limited_total: f64 = metrics
        .text
        .lines()
        .find_map(|line| line.strip_prefix("graphhooks_graph_rate_limited_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no graphhooks_graph_rate_limited_total in:\n{}",
                metrics.text
            )
        });
    assert!(limited_total >= 2.0, "{limited_total}");
}
