//! The delivery engine end to end: signed Meta-format notifications, batching, retries, the
//! delivery log, redelivery, isolation, eligibility and test notifications.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graphhooks_testkit::{Receiver, Reply, TestCa};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, TestServer, WAIT, change, sign256};

/// Every change value in a notification, in order.
fn values(body: &Value) -> Vec<Value> {
    body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|entry| {
            entry["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["value"].clone())
        })
        .collect()
}

#[tokio::test]
async fn notifications_are_signed_over_the_exact_escaped_bytes() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "user", &["about", "email"], &receiver, "/signed")
        .await;
    server.grant(&app, "user", "1021", &["email"]).await;
    server
        .push(vec![
            change(
                "user",
                "1021",
                "about",
                json!({"text": "Zoë likes café/bar 😀", "url": "https://x.example/a/b"}),
            ),
            change("user", "1021", "email", json!("zoë@example.com")),
        ])
        .await;
    let post = receiver.next_post(WAIT).await.expect("a notification");
    let raw = post.body_text();
    assert!(raw.is_ascii(), "non-ASCII is escaped: {raw}");
    assert!(
        raw.contains(r"Zo\u00eb likes caf\u00e9\/bar \ud83d\ude00"),
        "{raw}"
    );
    assert!(raw.contains(r"https:\/\/x.example\/a\/b"), "{raw}");
    assert!(!raw.contains(' ') || raw.contains("likes"), "compact");

    // A receiver hashing the raw body verifies both headers.
    assert_eq!(
        post.header("x-hub-signature-256").unwrap(),
        sign256(&app.secret, &post.body)
    );
    let sha1 = post.header("x-hub-signature").unwrap();
    assert!(sha1.starts_with("sha1=") && sha1.len() == 45, "{sha1}");
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert!(
        post.header("user-agent")
            .unwrap()
            .starts_with("graphhooks/")
    );
    assert_eq!(post.header("x-graphhooks-attempt"), Some("1"));
    let delivery_id = post.header("x-graphhooks-delivery").unwrap().to_owned();

    let body = post.json();
    assert_eq!(body["object"], "user");
    let entries = body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "changes of one object share an entry");
    let entry = &entries[0];
    assert_eq!(entry["id"], "1021");
    assert_eq!(entry["uid"], "1021");
    assert!(entry["time"].is_i64());
    assert_eq!(entry["changes"][0]["field"], "about");
    assert_eq!(
        entry["changes"][0]["value"]["text"],
        "Zoë likes café/bar 😀"
    );
    assert_eq!(
        entry["changes"][1],
        json!({"field": "email", "value": "zoë@example.com"})
    );
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["entry", "object"]);

    // The log shows the exact body and the attempt.
    let log = server
        .deliveries_until(&format!("app_id={}", app.id), |log| {
            log["data"][0]["state"] == "delivered"
        })
        .await;
    let delivery = &log["data"][0];
    assert_eq!(delivery["id"], delivery_id);
    assert_eq!(delivery["body"], raw);
    assert_eq!(delivery["object"], "user");
    assert_eq!(delivery["attempts"][0]["number"], 1);
    assert_eq!(delivery["attempts"][0]["status"], 200);
    assert_eq!(delivery["attempts"][0]["error"], Value::Null);
    assert_eq!(delivery["attempts"][0]["response"], "ok");
}

#[tokio::test]
async fn without_values_only_the_changed_fields_are_sent() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    let response = server
        .subscribe(&app, "page", &["feed", "name"], &receiver.url("/cf"), false)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    receiver.next(WAIT).await.expect("handshake");
    server
        .grant(
            &app,
            "page",
            "p1",
            &["pages_read_engagement", "pages_manage_metadata"],
        )
        .await;
    server
        .push(vec![
            change("page", "p1", "feed", json!({"item": "post"})),
            change("page", "p1", "feed", json!({"item": "comment"})),
            change("page", "p1", "name", json!("New name")),
        ])
        .await;
    let body = receiver
        .next_post(WAIT)
        .await
        .expect("a notification")
        .json();
    let entry = &body["entry"][0];
    assert_eq!(entry["changed_fields"], json!(["feed", "name"]));
    assert!(entry.get("changes").is_none());
    assert!(
        entry.get("uid").is_none(),
        "uid only for user and permissions"
    );
}

#[tokio::test]
async fn two_and_a_half_thousand_changes_arrive_in_posts_of_at_most_a_thousand_each_once() {
    let server = TestServer::start_with(Arc::new(TestCa::new()), |config| {
        // A long linger so that every change is ready when notifications are built.
        config.batch_linger = Duration::from_millis(300);
    })
    .await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "application", &["async_requests"], &receiver, "/bulk")
        .await;
    let changes: Vec<Value> = (0..2500)
        .map(|i| change("application", &app.id, "async_requests", json!({"n": i})))
        .collect();
    server.push(changes).await;
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut posts = Vec::new();
    while seen.len() < 2500 {
        let post = receiver
            .next_post(WAIT)
            .await
            .unwrap_or_else(|| panic!("only {} of 2500 arrived", seen.len()));
        let body = post.json();
        let values = values(&body);
        assert!(values.len() <= 1000, "{} changes in one POST", values.len());
        assert!(post.body.len() <= 3_000_000);
        for value in values {
            *seen.entry(value["n"].as_i64().unwrap()).or_default() += 1;
        }
        posts.push(values_len(&body));
    }
    assert!(seen.values().all(|&n| n == 1), "each change exactly once");
    assert_eq!(posts, vec![1000, 1000, 500]);
    assert!(
        receiver
            .next_post(Duration::from_millis(300))
            .await
            .is_none(),
        "nothing more"
    );
}

fn values_len(body: &Value) -> usize {
    values(body).len()
}

#[tokio::test]
async fn batch_max_one_sends_one_change_per_post() {
    let server =
        TestServer::start_with(Arc::new(TestCa::new()), |config| config.batch_max = 1).await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "application", &["async_requests"], &receiver, "/one")
        .await;
    server
        .push(
            (0..5)
                .map(|i| change("application", &app.id, "async_requests", json!({"n": i})))
                .collect(),
        )
        .await;
    let mut order = Vec::new();
    for _ in 0..5 {
        let body = receiver
            .next_post(WAIT)
            .await
            .expect("a notification")
            .json();
        let values = values(&body);
        assert_eq!(values.len(), 1);
        order.push(values[0]["n"].as_i64().unwrap());
    }
    assert_eq!(order, vec![0, 1, 2, 3, 4], "one object: sent in order");
}

#[tokio::test]
async fn five_hundred_five_hundred_two_hundred_is_three_attempts_of_one_delivery() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = Receiver::builder()
        .replies(vec![
            Reply::status(500).with_body("boom"),
            Reply::status(500),
            Reply::ok(),
        ])
        .start(&server.ca)
        .await;
    server
        .subscribe_ok(&app, "application", &["group_install"], &receiver, "/retry")
        .await;
    server
        .push(vec![change(
            "application",
            &app.id,
            "group_install",
            json!({"verb": "add"}),
        )])
        .await;
    let mut ids = Vec::new();
    let mut bodies = Vec::new();
    for expected in ["1", "2", "3"] {
        let post = receiver.next_post(WAIT).await.expect("an attempt");
        assert_eq!(post.header("x-graphhooks-attempt"), Some(expected));
        assert_eq!(
            post.header("x-hub-signature-256").unwrap(),
            sign256(&app.secret, &post.body)
        );
        ids.push(post.header("x-graphhooks-delivery").unwrap().to_owned());
        bodies.push(post.body.clone());
    }
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one delivery id: {ids:?}"
    );
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "the same body");
    let log = server
        .deliveries_until(&format!("app_id={}", app.id), |log| {
            log["data"][0]["state"] == "delivered"
        })
        .await;
    let attempts = log["data"][0]["attempts"].as_array().unwrap();
    let statuses: Vec<&Value> = attempts.iter().map(|a| &a["status"]).collect();
    assert_eq!(statuses, vec![&json!(500), &json!(500), &json!(200)]);
    assert_eq!(attempts[0]["response"], "boom");
    assert!(
        receiver
            .next_post(Duration::from_millis(700))
            .await
            .is_none(),
        "no attempt after success"
    );
}

#[tokio::test]
async fn after_the_retry_window_the_delivery_fails_and_nothing_more_is_sent() {
    let server = TestServer::start_with(Arc::new(TestCa::new()), |config| {
        config.retry.schedule = vec![Duration::from_millis(100)];
        config.retry.window = Duration::from_millis(450);
    })
    .await;
    let app = server.create_app("live").await;
    let receiver = Receiver::builder()
        .default_reply(Reply::status(503))
        .start(&server.ca)
        .await;
    server
        .subscribe_ok(&app, "application", &["group_install"], &receiver, "/fail")
        .await;
    server
        .push(vec![change(
            "application",
            &app.id,
            "group_install",
            json!({}),
        )])
        .await;
    let log = server
        .deliveries_until(&format!("app_id={}&state=failed", app.id), |log| {
            !log["data"].as_array().unwrap().is_empty()
        })
        .await;
    let attempts = log["data"][0]["attempts"].as_array().unwrap().len();
    assert!(
        (4..=6).contains(&attempts),
        "attempts every 100 ms within 450 ms: {attempts}"
    );
    let received = receiver
        .try_drain()
        .into_iter()
        .filter(|r| r.method == Method::POST)
        .count();
    assert_eq!(received, attempts);
    assert!(
        receiver
            .next_post(Duration::from_millis(500))
            .await
            .is_none(),
        "nothing after the window"
    );

    // A manual redelivery of a failed delivery that succeeds makes it delivered.
    receiver.set_default_reply(Reply::ok());
    let id = log["data"][0]["id"].as_str().unwrap();
    let response = server
        .admin(
            Method::POST,
            &format!("/admin/deliveries/{id}/redeliver"),
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    let post = receiver.next_post(WAIT).await.expect("the redelivery");
    assert_eq!(post.header("x-graphhooks-delivery"), Some(id));
    assert_eq!(
        post.header("x-graphhooks-attempt"),
        Some((attempts + 1).to_string().as_str())
    );
    server
        .deliveries_until(&format!("app_id={}&state=delivered", app.id), |log| {
            log["data"][0]["id"] == id
        })
        .await;
}

/// The healthy app of the isolation tests: subscribed to `application.async_requests`.
/// `application` needs no grant, so every subscriber hears every change of a field; the
/// hanging apps subscribe to another field.
async fn healthy_app(server: &TestServer) -> (TestApp, Receiver) {
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "application", &["async_requests"], &receiver, "/fast")
        .await;
    (app, receiver)
}

/// Pushes one change for the healthy app and returns how long its notification took to
/// arrive (at most [`WAIT`]).
async fn healthy_app_is_heard(server: &TestServer, app: &TestApp, receiver: &Receiver) -> Duration {
    let started = Instant::now();
    server
        .push(vec![change(
            "application",
            &app.id,
            "async_requests",
            json!({"fast": true}),
        )])
        .await;
    let post = receiver
        .next_post(WAIT)
        .await
        .expect("the healthy app's notification");
    let waited = started.elapsed();
    assert_eq!(values(&post.json())[0]["fast"], true);
    waited
}

#[tokio::test]
async fn a_hanging_callback_does_not_delay_another_app() {
    let server = TestServer::start_with(Arc::new(TestCa::new()), |config| {
        config.delivery_timeout = Duration::from_secs(8);
        config.callback_concurrency = 2;
    })
    .await;
    let slow_app = server.create_app("live").await;
    let slow = Receiver::builder()
        .default_reply(Reply::hang())
        .start(&server.ca)
        .await;
    server
        .subscribe_ok(&slow_app, "application", &["group_install"], &slow, "/slow")
        .await;
    let (fast_app, fast) = healthy_app(&server).await;
    // Fill the slow callback's concurrency with hanging requests, plus a backlog.
    for _ in 0..5 {
        server
            .push(vec![change(
                "application",
                &slow_app.id,
                "group_install",
                json!({}),
            )])
            .await;
        slow.next_post(Duration::from_millis(200)).await;
    }
    let waited = healthy_app_is_heard(&server, &fast_app, &fast).await;
    assert!(
        waited < Duration::from_secs(2),
        "the healthy app waited {waited:?}"
    );
}

#[tokio::test]
async fn hanging_callbacks_with_big_backlogs_leave_room_for_other_apps() {
    // Six subscriptions whose callbacks hang from their first request, each with a backlog of
    // 4,100: were each to hold a healthy lane's share (4,000 claims), they would fill the
    // node's 20,000 and nothing else would be claimed until their attempts time out. A lane
    // holds no more than a first claim's worth (1,000) until one of its attempts succeeds.
    const CONCURRENCY: usize = 4;
    let server = TestServer::start_with(Arc::new(TestCa::new()), |config| {
        config.delivery_timeout = Duration::from_secs(120);
        config.batch_max = 1;
        config.callback_concurrency = CONCURRENCY;
    })
    .await;
    let hanging = Receiver::builder()
        .default_reply(Reply::hang())
        .start(&server.ca)
        .await;
    let mut hanging_apps = Vec::new();
    for n in 0..6 {
        let app = server.create_app("live").await;
        server
            .subscribe_ok(
                &app,
                "application",
                &["group_install"],
                &hanging,
                &format!("/hang{n}"),
            )
            .await;
        hanging_apps.push(app);
    }
    let (fast_app, fast) = healthy_app(&server).await;
    // `application` needs no grant: each change reaches all six hanging subscriptions. One
    // object per change, so per-object order lets each lane fill its slots.
    let backlog: Vec<Value> = (0..4100)
        .map(|n| change("application", &n.to_string(), "group_install", json!({})))
        .collect();
    server.push(backlog).await;
    for _ in 0..hanging_apps.len() * CONCURRENCY {
        hanging
            .next_post(WAIT)
            .await
            .expect("every hanging subscription's slots fill up");
    }
    // Long before the hanging attempts time out (120 s).
    healthy_app_is_heard(&server, &fast_app, &fast).await;
}

#[tokio::test]
async fn development_apps_only_hear_about_their_own_people() {
    let server = TestServer::start().await;
    let dev = server.create_app("development").await;
    let live = server.create_app("live").await;
    let dev_receiver = server.receiver().await;
    let live_receiver = server.receiver().await;
    server
        .subscribe_ok(&dev, "user", &["name"], &dev_receiver, "/dev")
        .await;
    server
        .subscribe_ok(&live, "user", &["name"], &live_receiver, "/live")
        .await;
    for app in [&dev, &live] {
        server.grant(app, "user", "u1", &[]).await;
    }
    let response = server
        .admin(
            Method::PUT,
            &format!("/admin/apps/{}/roles/alice", dev.id),
            Some(json!({"role": "tester"})),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    let mut by_stranger = change("user", "u1", "name", json!("by stranger"));
    by_stranger["actor"] = json!("mallory");
    let mut by_alice = change("user", "u1", "name", json!("by alice"));
    by_alice["actor"] = json!("alice");
    server.push(vec![by_stranger.clone()]).await;
    server.push(vec![by_alice.clone()]).await;

    let mut live_values = Vec::new();
    while live_values.len() < 2 {
        let post = live_receiver
            .next_post(WAIT)
            .await
            .expect("live notifications");
        live_values.extend(values(&post.json()));
    }
    assert_eq!(live_values, vec![json!("by stranger"), json!("by alice")]);
    let dev_post = dev_receiver
        .next_post(WAIT)
        .await
        .expect("the development notification");
    assert_eq!(values(&dev_post.json()), vec![json!("by alice")]);
    assert!(
        dev_receiver
            .next_post(Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn grants_and_permissions_decide_who_hears_about_an_object() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "user", &["email", "name"], &receiver, "/g")
        .await;
    server.grant(&app, "user", "granted", &[]).await;
    server
        .push(vec![
            change("user", "stranger", "name", json!("no grant")),
            change("user", "granted", "email", json!("no permission")),
            change("user", "granted", "name", json!("yes")),
        ])
        .await;
    let post = receiver.next_post(WAIT).await.expect("a notification");
    assert_eq!(values(&post.json()), vec![json!("yes")]);
    assert!(
        receiver
            .next_post(Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn test_notifications_use_the_sample_and_object_id_zero() {
    let server = TestServer::start().await;
    let app = server.create_app("development").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "permissions", &["email"], &receiver, "/sample")
        .await;
    let response = server
        .graph(
            Method::POST,
            &format!("/v25.0/{}/subscriptions_sample", app.id),
            &[("authorization", format!("Bearer {}", app.token()))],
            Some((
                "application/x-www-form-urlencoded",
                b"object_type=permissions&field=email&custom_fields=%7B%22verb%22%3A%22revoked%22%7D".to_vec(),
            )),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.json, json!({"success": true}));
    let post = receiver
        .next_post(WAIT)
        .await
        .expect("the test notification");
    assert_eq!(
        post.header("x-hub-signature-256").unwrap(),
        sign256(&app.secret, &post.body)
    );
    let body = post.json();
    assert_eq!(body["object"], "permissions");
    assert_eq!(body["entry"][0]["id"], "0");
    assert_eq!(body["entry"][0]["uid"], "0");
    assert_eq!(body["entry"][0]["changes"][0]["field"], "email");
    assert_eq!(body["entry"][0]["changes"][0]["value"]["verb"], "revoked");

    // Without a subscription to the type, it is refused.
    let response = server
        .graph(
            Method::POST,
            &format!(
                "/{}/subscriptions_sample?object_type=page&field=feed",
                app.id
            ),
            &[("authorization", format!("Bearer {}", app.token()))],
            None,
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.text
    );
    assert_eq!(response.json["error"]["code"], 100);
}

#[tokio::test]
async fn the_log_pages_with_cursors_and_apps_see_only_their_own() {
    let server =
        TestServer::start_with(Arc::new(TestCa::new()), |config| config.batch_max = 1).await;
    let app = server.create_app("live").await;
    let other = server.create_app("live").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&app, "application", &["group_install"], &receiver, "/log")
        .await;
    server
        .subscribe_ok(
            &other,
            "application",
            &["async_requests"],
            &receiver,
            "/other",
        )
        .await;
    server
        .push(
            (0..5)
                .map(|i| change("application", &app.id, "group_install", json!({"n": i})))
                .collect(),
        )
        .await;
    server
        .push(vec![change(
            "application",
            &other.id,
            "async_requests",
            json!({}),
        )])
        .await;
    server
        .deliveries_until("state=delivered", |log| {
            log["data"].as_array().unwrap().len() == 6
        })
        .await;

    let first = server
        .admin(
            Method::GET,
            &format!("/admin/deliveries?app_id={}&limit=2", app.id),
            None,
        )
        .await;
    assert_eq!(first.json["data"].as_array().unwrap().len(), 2);
    let next = first.json["paging"]["next"].as_str().expect("a next page");
    let after = first.json["paging"]["cursors"]["after"].as_str().unwrap();
    let path = &next[next.find("/admin").unwrap()..];
    assert!(path.contains(&format!("after={after}")));
    let second = server.admin(Method::GET, path, None).await;
    let third_path = second.json["paging"]["next"]
        .as_str()
        .expect("a third page");
    let third = server
        .admin(
            Method::GET,
            &third_path[third_path.find("/admin").unwrap()..],
            None,
        )
        .await;
    assert_eq!(third.json["data"].as_array().unwrap().len(), 1);
    assert!(
        third.json["paging"].get("next").is_none(),
        "no next on the last page"
    );
    let mut ids: Vec<i64> = [&first, &second, &third]
        .iter()
        .flat_map(|page| {
            page.json["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().parse::<i64>().unwrap())
        })
        .collect();
    let before = ids.clone();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, before, "newest first");
    assert_eq!(ids.len(), 5);

    // The app-facing log: same shapes, only its own deliveries, redelivery with its token.
    let auth = [("authorization", format!("Bearer {}", app.token()))];
    let own = server
        .graph(
            Method::GET,
            &format!("/v25.0/{}/deliveries?limit=10", app.id),
            &auth,
            None,
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let data = own.json["data"].as_array().unwrap();
    assert_eq!(data.len(), 5);
    assert!(data.iter().all(|d| d["app_id"] == app.id));
    let other_log = server
        .admin(
            Method::GET,
            &format!("/admin/deliveries?app_id={}", other.id),
            None,
        )
        .await;
    let other_id = other_log.json["data"][0]["id"].as_str().unwrap().to_owned();
    let response = server
        .graph(
            Method::POST,
            &format!("/{}/deliveries/{other_id}/redeliver", app.id),
            &auth,
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND, "{}", response.text);
    let response = server
        .graph(
            Method::GET,
            &format!("/{}/deliveries", other.id),
            &auth,
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    let mine = data[0]["id"].as_str().unwrap();
    // Every first attempt is recorded as delivered, so all of them have arrived: forget them.
    receiver.try_drain();
    let response = server
        .graph(
            Method::POST,
            &format!("/{}/deliveries/{mine}/redeliver", app.id),
            &auth,
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let post = loop {
        let post = receiver.next_post(WAIT).await.expect("the redelivery");
        if post.header("x-graphhooks-delivery") == Some(mine) {
            break post;
        }
    };
    assert_eq!(post.header("x-graphhooks-attempt"), Some("2"));

    let response = server
        .admin(Method::GET, "/admin/deliveries?state=lost", None)
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    let response = server
        .admin(Method::GET, "/admin/deliveries?after=%%%", None)
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn graceful_shutdown_lets_an_attempt_in_flight_finish() {
    let server = TestServer::start().await;
    let app = server.create_app("live").await;
    let receiver = Receiver::builder()
        .default_reply(Reply::ok().with_delay(Duration::from_millis(700)))
        .start(&server.ca)
        .await;
    server
        .subscribe_ok(
            &app,
            "application",
            &["group_install"],
            &receiver,
            "/slowish",
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
    receiver.next_post(WAIT).await.expect("the attempt started");
    // Stop while the receiver is still answering: the attempt finishes and is recorded.
    let stopped = server.stop().await;
    let store = stopped.data.open().await;
    let deliveries = store
        .deliveries(graphhooks_store::DeliveryFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        deliveries[0].state,
        graphhooks_core::model::DeliveryState::Delivered
    );
    assert_eq!(deliveries[0].attempts.len(), 1);
}
