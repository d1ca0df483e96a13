//! `graphhooks copy`: a SQLite database moved to PostgreSQL keeps its apps, tokens, ids,
//! attempts and pending work, and a server on the copy carries on where the old one stopped.

use std::time::Duration;

use graphhooks_store_postgres::testing::TestDatabase;
use graphhooks_testkit::{Receiver, Reply, TestCa};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::process::ServeProcess;
use crate::support::{WAIT, http::request};

async fn call(
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> crate::support::Response {
    request(
        method,
        &format!("{base}{path}"),
        &[("authorization", format!("Bearer {token}"))],
        body.map(|b| ("application/json", b.to_string().into_bytes())),
    )
    .await
}

async fn copy(from: &str, to: &str) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_graphhooks"))
        .args(["copy", "--from", from, "--to", to])
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run graphhooks copy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_database_copied_to_postgres_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_path = ca.write_pem(dir.path()).display().to_string();
    let sqlite = format!("sqlite://{}", dir.path().join("old.db").display());
    let receiver = Receiver::builder().start(&ca).await;
    let failing = Receiver::builder()
        .default_reply(Reply::status(503))
        .start(&ca)
        .await;
    let flags = |database: &str| {
        vec![
            "--database".to_owned(),
            database.to_owned(),
            "--callback-ca".to_owned(),
            ca_path.clone(),
            "--allow-private-callbacks".to_owned(),
            // One immediate retry, then an hour: the failing app's delivery stays pending.
            "--retry-schedule".to_owned(),
            "0s,1h".to_owned(),
        ]
    };

    let old_flags = flags(&sqlite);
    let old = ServeProcess::spawn(
        &old_flags.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    )
    .await;
    let token = old.printed_token.clone().expect("a generated admin token");
    let mut apps = Vec::new();
    for (name, target) in [("healthy", &receiver), ("failing", &failing)] {
        let app = call(
            &old.base,
            &token,
            Method::POST,
            "/admin/apps",
            Some(json!({"name": name, "mode": "live"})),
        )
        .await;
        assert_eq!(app.status, StatusCode::CREATED, "{}", app.text);
        let id = app.json["id"].as_str().unwrap().to_owned();
        let secret = app.json["secret"].as_str().unwrap().to_owned();
        let subscribed = request(
            Method::POST,
            &format!("{}/{id}/subscriptions", old.base),
            &[("authorization", format!("Bearer {id}|{secret}"))],
            Some((
                "application/json",
                json!({"object": "page", "fields": ["feed"], "callback_url": target.url("/cb"),
                       "verify_token": "verify-me", "include_values": true})
                .to_string()
                .into_bytes(),
            )),
        )
        .await;
        assert_eq!(subscribed.status, StatusCode::OK, "{}", subscribed.text);
        let granted = call(
            &old.base,
            &token,
            Method::PUT,
            &format!("/admin/apps/{id}/grants/page/p1"),
            Some(json!({"permissions": ["pages_read_engagement"]})),
        )
        .await;
        assert_eq!(granted.status, StatusCode::OK);
        apps.push((id, secret));
    }
    let pushed = call(
        &old.base,
        &token,
        Method::POST,
        "/admin/changes",
        Some(json!({"changes": [{"object": "page", "id": "p1", "field": "feed", "value": {"n": 1}}]})),
    )
    .await;
    let change_id = pushed.json["ids"][0].as_str().unwrap().to_owned();
    receiver
        .next_post(WAIT)
        .await
        .expect("the healthy app's notification");
    // Wait for the failing app's two attempts, then for their outcome to be recorded.
    failing.next_post(WAIT).await.expect("attempt 1");
    failing.next_post(WAIT).await.expect("attempt 2");
    let failing_id = &apps[1].0;
    let before = loop {
        let log = call(
            &old.base,
            &token,
            Method::GET,
            &format!("/admin/deliveries?app_id={failing_id}"),
            None,
        )
        .await;
        if log.json["data"][0]["attempts"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
        {
            break log.json["data"][0].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(before["state"], "pending");
    let explained_before = call(
        &old.base,
        &token,
        Method::GET,
        &format!("/admin/changes/{change_id}/explain"),
        None,
    )
    .await;
    // A page owner's token and the install it made, with its subscribed fields.
    let issued = call(
        &old.base,
        &token,
        Method::POST,
        "/admin/object-tokens",
        Some(json!({"object": "page", "id": "p2"})),
    )
    .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    let page_token = issued.json["token"].as_str().unwrap().to_owned();
    let installed = call(
        &old.base,
        &page_token,
        Method::POST,
        "/p2/subscribed_apps",
        Some(json!({"app_id": apps[0].0, "subscribed_fields": ["feed"]})),
    )
    .await;
    assert_eq!(installed.status, StatusCode::OK, "{}", installed.text);
    assert!(old.terminate(WAIT).await.success());

    let database = TestDatabase::create().await;
    let output = copy(&sqlite, &database.url).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("2 apps")
            && stdout.contains("1 changes")
            && stdout.contains("2 deliveries"),
        "{stdout}"
    );
    let again = copy(&sqlite, &database.url).await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let new_flags = flags(&database.url);
    let new = ServeProcess::spawn(
        &new_flags.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    )
    .await;
    assert!(new.printed_token.is_none(), "the admin token came along");
    let explained = call(
        &new.base,
        &token,
        Method::GET,
        &format!("/admin/changes/{change_id}/explain"),
        None,
    )
    .await;
    assert_eq!(explained.status, StatusCode::OK, "{}", explained.text);
    assert_eq!(
        explained.json, explained_before.json,
        "explain sees the same deliveries"
    );
    let installs = call(
        &new.base,
        &page_token,
        Method::GET,
        "/p2/subscribed_apps",
        None,
    )
    .await;
    assert_eq!(
        installs.status,
        StatusCode::OK,
        "the object token came along: {}",
        installs.text
    );
    assert_eq!(installs.json["data"][0]["id"], apps[0].0.as_str());
    assert_eq!(
        installs.json["data"][0]["subscribed_fields"],
        json!(["feed"])
    );
    let copied = call(
        &new.base,
        &token,
        Method::GET,
        &format!("/admin/deliveries/{}", before["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(
        copied.json, before,
        "the delivery with its attempts, as it was"
    );
    // App tokens work, and the pending delivery goes on under its own id.
    let (healthy_id, healthy_secret) = &apps[0];
    let listed = request(
        Method::GET,
        &format!("{}/{healthy_id}/subscriptions", new.base),
        &[(
            "authorization",
            format!("Bearer {healthy_id}|{healthy_secret}"),
        )],
        None,
    )
    .await;
    assert_eq!(listed.json["data"][0]["object"], "page", "{}", listed.text);
    failing.set_default_reply(Reply::ok());
    let id = before["id"].as_str().unwrap();
    let redelivered = call(
        &new.base,
        &token,
        Method::POST,
        &format!("/admin/deliveries/{id}/redeliver"),
        None,
    )
    .await;
    assert_eq!(redelivered.status, StatusCode::ACCEPTED);
    let post = failing.next_post(WAIT).await.expect("the redelivery");
    assert_eq!(post.header("x-graphhooks-delivery"), Some(id));
    assert_eq!(post.header("x-graphhooks-attempt"), Some("3"));
    // New ids continue after the copied ones.
    let pushed = call(
        &new.base,
        &token,
        Method::POST,
        "/admin/changes",
        Some(json!({"changes": [{"object": "page", "id": "p1", "field": "feed", "value": {"n": 2}}]})),
    )
    .await;
    assert!(
        pushed.json["ids"][0]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > change_id.parse::<i64>().unwrap()
    );
    new.terminate(WAIT).await;
}
