//! The operator API: catalog, apps, roles, grants, changes (all-or-nothing batches), the
//! delivery log, explain, auth and bad input.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Response, TestServer, change};

fn assert_admin_error(response: &Response, status: StatusCode, code: &str) {
    assert_eq!(response.status, status, "{}", response.text);
    assert_eq!(response.json["error"]["code"], code, "{}", response.text);
    assert!(
        response.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        response.text
    );
}

#[tokio::test]
async fn the_catalog_has_metas_types_and_grows_without_losing_fields() {
    let server = TestServer::start().await;
    let response = server.admin(Method::GET, "/admin/object-types", None).await;
    assert_eq!(response.status, StatusCode::OK);
    let types = response.json["data"].as_array().unwrap();
    let names: Vec<&str> = types.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for name in [
        "user",
        "page",
        "permissions",
        "application",
        "instagram",
        "whatsapp_business_account",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let application = types.iter().find(|t| t["name"] == "application").unwrap();
    assert_eq!(application["grant"], "none");
    let user = types.iter().find(|t| t["name"] == "user").unwrap();
    let email = user["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "email")
        .unwrap();
    assert_eq!(email["permission"], "email");
    assert!(!email["sample"].is_null());

    let response = server
        .admin(
            Method::PUT,
            "/admin/object-types/order",
            Some(json!({"grant": "object", "fields": [{"name": "status", "sample": {"state": "paid"}}]})),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let response = server
        .admin(
            Method::PUT,
            "/admin/object-types/order",
            Some(json!({"fields": [{"name": "total", "permission": "orders_read"}]})),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let fields: Vec<&str> = response.json["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["status", "total"]);

    // An update that names a field without `permission` keeps the permission; `null` clears it.
    let permission_of = |response: &Response| {
        response.json["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "total")
            .unwrap()["permission"]
            .clone()
    };
    let response = server
        .admin(
            Method::PUT,
            "/admin/object-types/order",
            Some(json!({"fields": [{"name": "total", "sample": 5}]})),
        )
        .await;
    assert_eq!(permission_of(&response), "orders_read", "{}", response.text);
    let response = server
        .admin(
            Method::PUT,
            "/admin/object-types/order",
            Some(json!({"fields": [{"name": "total", "permission": null}]})),
        )
        .await;
    assert_eq!(permission_of(&response), Value::Null, "{}", response.text);

    for (body, code) in [
        (
            json!({"grant": "sometimes", "fields": [{"name": "a"}]}),
            "invalid_request",
        ),
        (json!({"fields": [{"name": "Bad Name"}]}), "invalid_request"),
        (
            json!({"fields": [{"name": "a", "colour": "red"}]}),
            "invalid_json",
        ),
        (json!({"fields": "status"}), "invalid_json"),
    ] {
        let response = server
            .admin(Method::PUT, "/admin/object-types/order", Some(body))
            .await;
        assert_admin_error(&response, StatusCode::BAD_REQUEST, code);
    }
    let response = server
        .admin(
            Method::PUT,
            "/admin/object-types/Bad-Type",
            Some(json!({"fields": [{"name": "a"}]})),
        )
        .await;
    assert_admin_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn apps_are_created_with_a_secret_shown_once_then_managed() {
    let server = TestServer::start().await;
    let response = server
        .admin(Method::POST, "/admin/apps", Some(json!({"name": "Acme"})))
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let id = response.json["id"].as_str().unwrap().to_owned();
    assert!(id.bytes().all(|b| b.is_ascii_digit()));
    let secret = response.json["secret"].as_str().unwrap();
    assert!(secret.len() >= 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(response.json["mode"], "development");
    assert_eq!(response.json["name"], "Acme");

    let response = server
        .admin(Method::GET, &format!("/admin/apps/{id}"), None)
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.json.get("secret").is_none(), "never shown again");
    let response = server
        .admin(
            Method::PATCH,
            &format!("/admin/apps/{id}"),
            Some(json!({"mode": "live", "name": "Acme 2"})),
        )
        .await;
    assert_eq!(
        (
            response.json["mode"].as_str(),
            response.json["name"].as_str()
        ),
        (Some("live"), Some("Acme 2"))
    );
    let response = server
        .admin(
            Method::PATCH,
            &format!("/admin/apps/{id}"),
            Some(json!({"mode": "prod"})),
        )
        .await;
    assert_admin_error(&response, StatusCode::BAD_REQUEST, "invalid_request");

    let response = server
        .admin(
            Method::PUT,
            &format!("/admin/apps/{id}/roles/42"),
            Some(json!({"role": "developer"})),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let response = server
        .admin(
            Method::PUT,
            &format!("/admin/apps/{id}/roles/42"),
            Some(json!({"role": "king"})),
        )
        .await;
    assert_admin_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
    let response = server
        .admin(Method::DELETE, &format!("/admin/apps/{id}/roles/42"), None)
        .await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    let response = server
        .admin(Method::DELETE, &format!("/admin/apps/{id}/roles/42"), None)
        .await;
    assert_admin_error(&response, StatusCode::NOT_FOUND, "not_found");

    let response = server
        .admin(
            Method::PUT,
            &format!("/admin/apps/{id}/grants/user/7"),
            Some(json!({"permissions": ["email"]})),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let response = server
        .admin(
            Method::PUT,
            &format!("/admin/apps/{id}/grants/starship/7"),
            Some(json!({"permissions": []})),
        )
        .await;
    assert_admin_error(&response, StatusCode::BAD_REQUEST, "unknown_object_type");
    let response = server
        .admin(
            Method::DELETE,
            &format!("/admin/apps/{id}/grants/user/7"),
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);

    let response = server
        .admin(Method::DELETE, &format!("/admin/apps/{id}"), None)
        .await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    for (method, path) in [
        (Method::GET, format!("/admin/apps/{id}")),
        (Method::DELETE, format!("/admin/apps/{id}")),
        (Method::GET, "/admin/apps/not-a-number".to_owned()),
    ] {
        assert_admin_error(
            &server.admin(method, &path, None).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
}

#[tokio::test]
async fn the_admin_token_is_required() {
    let server = TestServer::start().await;
    let url = format!("{}/admin/apps", server.base);
    let response = crate::support::http::request(Method::GET, &url, &[], None).await;
    assert_admin_error(&response, StatusCode::UNAUTHORIZED, "unauthorized");
    let response = crate::support::http::request(
        Method::GET,
        &url,
        &[("authorization", "Bearer wrong".into())],
        None,
    )
    .await;
    assert_admin_error(&response, StatusCode::UNAUTHORIZED, "unauthorized");
    let response = server
        .admin(Method::GET, "/admin/no-such-thing", None)
        .await;
    assert_admin_error(&response, StatusCode::NOT_FOUND, "not_found");
    let response = server.admin(Method::DELETE, "/admin/changes", None).await;
    assert_admin_error(
        &response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn a_batch_with_one_bad_change_is_refused_whole_and_names_it() {
    let server = TestServer::start().await;
    let good = change("user", "1", "email", json!("a@example.com"));
    let cases: Vec<(Value, &str, usize)> = vec![
        (
            change("user", "1", "shoe_size", json!(44)),
            "unknown_field",
            1,
        ),
        (
            change("spaceship", "1", "speed", json!(1)),
            "unknown_object_type",
            1,
        ),
        (
            json!({"object": "user", "id": "", "field": "email", "value": 1}),
            "invalid_request",
            1,
        ),
        (
            json!({"object": "user", "id": "1", "field": "email", "value": 1, "time": -5}),
            "invalid_request",
            1,
        ),
    ];
    for (bad, code, index) in cases {
        let response = server
            .admin(
                Method::POST,
                "/admin/changes",
                Some(json!({"changes": [good.clone(), bad, good.clone()]})),
            )
            .await;
        assert_admin_error(&response, StatusCode::BAD_REQUEST, code);
        assert_eq!(response.json["error"]["index"], index, "{}", response.text);
        assert!(
            response.json["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("changes[{index}]")),
            "{}",
            response.text
        );
    }
    // Wrong types are named by path.
    let response = server
        .admin(Method::POST, "/admin/changes", Some(json!({"changes": [good.clone(), {"object": "user", "id": 5, "field": "email", "value": 1}]})))
        .await;
    assert_admin_error(&response, StatusCode::BAD_REQUEST, "invalid_json");
    assert!(
        response.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("changes[1].id"),
        "{}",
        response.text
    );
    let response = server
        .admin(
            Method::POST,
            "/admin/changes",
            Some(json!({"changes": [{"object": "user", "id": "1", "field": "email"}]})),
        )
        .await;
    assert_admin_error(&response, StatusCode::BAD_REQUEST, "invalid_json");

    // Nothing of the refused batches was stored: the first accepted change gets id 1.
    let ids = server.push(vec![good.clone(), good.clone()]).await;
    assert_eq!(ids, vec!["1", "2"]);
    let response = server.admin(Method::GET, "/admin/changes/3", None).await;
    assert_admin_error(&response, StatusCode::NOT_FOUND, "not_found");
    let response = server.admin(Method::GET, "/admin/changes/2", None).await;
    assert_eq!(response.json["value"], "a@example.com");
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_clear_4xx() {
    let server = TestServer::start().await;
    let url = format!("{}/admin/changes", server.base);
    let auth = [(
        "authorization",
        format!("Bearer {}", crate::support::ADMIN_TOKEN),
    )];
    for body in [
        &b"{not json"[..],
        b"",
        b"[]",
        b"{\"changes\": {}}",
        b"{\"changes\": []} trailing",
    ] {
        let response = crate::support::http::request(
            Method::POST,
            &url,
            &auth,
            Some(("application/json", body.to_vec())),
        )
        .await;
        assert_admin_error(&response, StatusCode::BAD_REQUEST, "invalid_json");
    }
    let too_many: Vec<Value> = (0..10_001)
        .map(|i| change("user", &i.to_string(), "email", json!(1)))
        .collect();
    let response = server
        .admin(
            Method::POST,
            "/admin/changes",
            Some(json!({"changes": too_many})),
        )
        .await;
    assert_admin_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
    let huge =
        json!({"changes": [change("user", "1", "about", json!("x".repeat(17 * 1024 * 1024)))]});
    let response = server
        .admin(Method::POST, "/admin/changes", Some(huge))
        .await;
    assert_admin_error(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let response = server
        .admin(Method::POST, "/admin/changes", Some(json!({"changes": []})))
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED);
    assert_eq!(response.json, json!({"accepted": 0, "ids": []}));
}

#[tokio::test]
async fn health_is_reported() {
    let server = TestServer::start().await;
    let response =
        crate::support::http::request(Method::GET, &format!("{}/healthz", server.base), &[], None)
            .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json["status"], "ok");
    let response =
        crate::support::http::request(Method::GET, &format!("{}/metrics", server.base), &[], None)
            .await;
    assert_eq!(response.status, StatusCode::OK);
    for path in ["/dashboard", "/dashboard/"] {
        let url = format!("{}{path}", server.base);
        let response = crate::support::http::request(Method::GET, &url, &[], None).await;
        assert!(
            response.status.is_redirection(),
            "{path}: {}",
            response.status
        );
        assert_eq!(response.headers["location"], "/dashboard/home", "{path}");
    }
}

#[tokio::test]
async fn explain_names_the_rule_for_each_app() {
    let server = TestServer::start().await;
    let receiver = server.receiver().await;
    let live = server.create_app("live").await;
    let dev = server.create_app("development").await;
    let unsubscribed = server.create_app("live").await;
    let no_field = server.create_app("live").await;
    let no_permission = server.create_app("live").await;
    server
        .subscribe_ok(&live, "user", &["email"], &receiver, "/live")
        .await;
    server
        .subscribe_ok(&dev, "user", &["email"], &receiver, "/dev")
        .await;
    server
        .subscribe_ok(&no_field, "user", &["name"], &receiver, "/nf")
        .await;
    server
        .subscribe_ok(&no_permission, "user", &["email"], &receiver, "/np")
        .await;
    server.grant(&live, "user", "u1", &["email"]).await;
    server.grant(&dev, "user", "u1", &["email"]).await;
    server.grant(&no_permission, "user", "u1", &[]).await;
    let ids = server
        .push(vec![change("user", "u1", "email", json!("a@b.c"))])
        .await;
    let post = receiver
        .next_post(crate::support::WAIT)
        .await
        .expect("the live app's notification");
    assert_eq!(post.path, "/live");
    let delivery_id = post.header("x-graphhooks-delivery").unwrap().to_owned();

    let response = server
        .admin(
            Method::GET,
            &format!("/admin/changes/{}/explain", ids[0]),
            None,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.json["change_id"], ids[0]);
    let results = response.json["results"].as_array().unwrap();
    let find = |app: &crate::support::TestApp| {
        results
            .iter()
            .find(|r| r["app_id"] == app.id)
            .unwrap()
            .clone()
    };
    let live_result = find(&live);
    assert_eq!(live_result["eligible"], true);
    assert_eq!(live_result["delivery_id"], delivery_id);
    for (app, rule) in [
        (&dev, "mode"),
        (&unsubscribed, "subscription"),
        (&no_field, "field"),
        (&no_permission, "permission"),
    ] {
        let result = find(app);
        assert_eq!(result["eligible"], false, "{result}");
        assert_eq!(result["rule"], rule, "{result}");
        assert!(result["detail"].as_str().unwrap().len() > 10);
    }
    let response = server
        .admin(
            Method::GET,
            &format!("/admin/changes/{}/explain?app_id={}", ids[0], dev.id),
            None,
        )
        .await;
    assert_eq!(response.json["results"].as_array().unwrap().len(), 1);
    let response = server
        .admin(Method::GET, "/admin/changes/999/explain", None)
        .await;
    assert_admin_error(&response, StatusCode::NOT_FOUND, "not_found");
}
