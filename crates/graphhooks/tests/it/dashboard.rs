//! The dashboard at `/dashboard`, over HTTP as a browser uses it (cookies, forms, redirects):
//! sign-in and sessions (signed cookies, CSRF, rotation ends sessions), an app seeing only its
//! own pages, "Verify and save" with the handshake's result, fields, test notifications,
//! redelivery, pause and resume, and the operator's pages. `browser_walkthrough` (ignored; run
//! by `scripts/browser-tests`) drives the same in headless Chromium.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use graphhooks_testkit::{Receiver, Reply, TestCa};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_TOKEN, Response, TestApp, TestServer, WAIT, http::request, sign256};

/// A browser's share of the work: a cookie jar, and the CSRF token of the last page seen.
struct Browser {
    base: String,
    cookies: HashMap<String, String>,
    csrf: String,
}

/// The value of `name="…" value="…"` style attributes after `marker` in a page.
fn attribute_after(html: &str, marker: &str, attribute: &str) -> Option<String> {
    let start = html.find(marker)?;
    let rest = &html[start..];
    let needle = format!("{attribute}=\"");
    let from = rest.find(&needle)? + needle.len();
    let to = rest[from..].find('"')?;
    Some(rest[from..from + to].to_owned())
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        Browser {
            base: server.base.clone(),
            cookies: HashMap::new(),
            csrf: String::new(),
        }
    }

    fn cookie_header(&self) -> Vec<(&'static str, String)> {
        if self.cookies.is_empty() {
            return Vec::new();
        }
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        vec![("cookie", cookie)]
    }

    fn remember(&mut self, response: &Response) {
        for value in response.headers.get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        if let Some(token) = attribute_after(&response.text, "name=\"csrf-token\"", "content") {
            self.csrf = token;
        }
    }

    async fn get(&mut self, path: &str) -> Response {
        let response = request(
            Method::GET,
            &format!("{}{path}", self.base),
            &self.cookie_header(),
            None,
        )
        .await;
        self.remember(&response);
        response
    }

    /// POSTs a form with the session's CSRF token added.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        let csrf = self.csrf.clone();
        all.push(("_csrf", &csrf));
        self.post_raw(path, &all, &[]).await
    }

    async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        extra_headers: &[(&'static str, String)],
    ) -> Response {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut headers = self.cookie_header();
        headers.extend(extra_headers.iter().cloned());
        let response = request(
            Method::POST,
            &format!("{}{path}", self.base),
            &headers,
            Some(("application/x-www-form-urlencoded", body.into_bytes())),
        )
        .await;
        self.remember(&response);
        response
    }

    /// Signs in through the form as an app; returns the answer to the POST.
    async fn sign_in_app(&mut self, app: &TestApp) -> Response {
        let page = self.get("/dashboard/login").await;
        assert_eq!(page.status, StatusCode::OK);
        let token = attribute_after(&page.text, "name=\"_csrf\"", "value").unwrap();
        self.post_raw(
            "/dashboard/login",
            &[
                ("_csrf", &token),
                ("kind", "app"),
                ("app_id", &app.id),
                ("app_secret", &app.secret),
            ],
            &[],
        )
        .await
    }

    async fn sign_in_operator(&mut self) -> Response {
        let page = self.get("/dashboard/login").await;
        let token = attribute_after(&page.text, "name=\"_csrf\"", "value").unwrap();
        self.post_raw(
            "/dashboard/login",
            &[
                ("_csrf", &token),
                ("kind", "operator"),
                ("admin_token", ADMIN_TOKEN),
            ],
            &[],
        )
        .await
    }
}

fn location(response: &Response) -> &str {
    response
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A test server with a 1 s pause threshold (for the paused banner).
async fn server() -> TestServer {
    TestServer::start_with(Arc::new(TestCa::new()), |config| {
        config.pause_after = Duration::from_secs(1);
    })
    .await
}

/// Creates an app with a chosen id and name.
async fn create_app(server: &TestServer, id: &str, name: &str) -> TestApp {
    let response = server
        .admin(
            Method::POST,
            "/admin/apps",
            Some(json!({"name": name, "mode": "live", "id": id})),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    TestApp {
        id: response.json["id"].as_str().unwrap().to_owned(),
        secret: response.json["secret"].as_str().unwrap().to_owned(),
    }
}

/// Sends a test notification through the Graph API; returns its delivery id.
async fn graph_sample(server: &TestServer, app: &TestApp, object: &str, field: &str) -> String {
    let response = server
        .graph(
            Method::POST,
            &format!("/{}/subscriptions_sample", app.id),
            &[("authorization", format!("Bearer {}", app.token()))],
            Some((
                "application/json",
                json!({"object_type": object, "field": field, "object_id": "b-marker-4242"})
                    .to_string()
                    .into_bytes(),
            )),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let log = server
        .deliveries_until(&format!("app_id={}", app.id), |log| {
            log["data"].as_array().is_some_and(|d| !d.is_empty())
        })
        .await;
    log["data"][0]["id"].as_str().unwrap().to_owned()
}

/// Polls until `check` holds for the app's subscriptions as the operator sees them.
async fn subscriptions_until(server: &TestServer, app: &TestApp, check: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let response = server
            .admin(
                Method::GET,
                &format!("/admin/apps/{}/subscriptions", app.id),
                None,
            )
            .await;
        if check(&response.json) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscriptions never matched: {}",
            response.text
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn an_app_signs_in_with_its_secret_and_sees_only_its_own_pages() {
    let server = server().await;
    let a = create_app(&server, "482910375518233", "Acme Social").await;
    let b = create_app(&server, "777000111222333", "Other App").await;
    let receiver = server.receiver().await;
    server
        .subscribe_ok(&b, "user", &["email"], &receiver, "/b")
        .await;
    let b_delivery = graph_sample(&server, &b, "user", "email").await;

    // Signed out: pages redirect to the sign-in form, which comes back afterwards.
    let mut browser = Browser::new(&server);
    let response = browser
        .get(&format!("/dashboard/apps/{}/deliveries", a.id))
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        format!(
            "/dashboard/login?next=%2Fdashboard%2Fapps%2F{}%2Fdeliveries",
            a.id
        )
    );
    let page = browser.get(location(&response)).await;
    assert!(
        page.text.contains(&format!(
            "name=\"next\" value=\"/dashboard/apps/{}/deliveries\"",
            a.id
        )),
        "the sign-in form carries where to go back to"
    );

    let response = browser.sign_in_app(&a).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.text);
    assert_eq!(
        location(&response),
        format!("/dashboard/apps/{}/webhooks", a.id)
    );
    let set_cookie: Vec<&str> = response
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .filter(|v| v.starts_with("graphhooks_session="))
        .collect();
    assert_eq!(set_cookie.len(), 1);
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/dashboard",
        "Max-Age=43200",
    ] {
        assert!(set_cookie[0].contains(attribute), "{}", set_cookie[0]);
    }
    assert!(
        !set_cookie[0].contains("Secure"),
        "plain HTTP: no Secure flag"
    );
    assert!(
        !set_cookie[0].contains(&a.secret),
        "the cookie never holds the secret"
    );

    let page = browser
        .get(&format!("/dashboard/apps/{}/webhooks", a.id))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("<html lang=\"en\">"));
    assert!(page.text.contains("Acme Social"));
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );

    // B's pages, B's log, B's delivery, the operator's pages: all refused, and nothing of B shows.
    for path in [
        format!("/dashboard/apps/{}/webhooks", b.id),
        format!("/dashboard/apps/{}/deliveries", b.id),
        format!("/dashboard/apps/{}/deliveries/{b_delivery}", b.id),
        format!("/dashboard/apps/{}/deliveries/{b_delivery}/status", b.id),
        format!("/dashboard/apps/{}/settings", a.id),
        "/dashboard/apps/999999999/webhooks".to_owned(),
    ] {
        let response = browser.get(&path).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!response.text.contains("b-marker-4242"), "{path}");
        assert!(!response.text.contains("Other App"), "{path}");
    }
    // B's delivery through A's own log: not found, as on the Graph API.
    let response = browser
        .get(&format!("/dashboard/apps/{}/deliveries/{b_delivery}", a.id))
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    let response = browser
        .post(
            &format!("/dashboard/apps/{}/deliveries/{b_delivery}/redeliver", b.id),
            &[],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    let response = browser
        .post(
            &format!("/dashboard/apps/{}/deliveries/{b_delivery}/redeliver", a.id),
            &[],
        )
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    // The operator's apps list sends an app back to its own page.
    let response = browser.get("/dashboard/apps").await;
    assert_eq!(
        location(&response),
        format!("/dashboard/apps/{}/webhooks", a.id)
    );
    let own_log = browser
        .get(&format!("/dashboard/apps/{}/deliveries", a.id))
        .await;
    assert_eq!(own_log.status, StatusCode::OK);
    assert!(!own_log.text.contains("b-marker-4242"));

    // Signing out forgets the cookie.
    let response = browser.post("/dashboard/logout", &[]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert!(!browser.cookies.contains_key("graphhooks_session"));
    let response = browser
        .get(&format!("/dashboard/apps/{}/webhooks", a.id))
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_tampered_forged_or_stale_session_cookie_is_refused() {
    let server = server().await;
    let a = create_app(&server, "482910375518233", "Acme Social").await;
    let b = create_app(&server, "777000111222333", "Other App").await;
    let mut browser = Browser::new(&server);
    browser.sign_in_app(&a).await;
    let cookie = browser.cookies["graphhooks_session"].clone();
    let own = format!("/dashboard/apps/{}/webhooks", a.id);
    assert_eq!(browser.get(&own).await.status, StatusCode::OK);

    let (payload, mac) = cookie.rsplit_once('.').unwrap();
    let mut flipped = mac.to_owned();
    let last = if flipped.ends_with('0') { "1" } else { "0" };
    flipped.replace_range(flipped.len() - 1.., last);
    let forged_role = payload.replacen(&a.id, &b.id, 1);
    let later = {
        let parts: Vec<&str> = payload.split('.').collect();
        let mut parts: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
        parts[2] = (parts[2].parse::<i64>().unwrap() + 3600 * 24 * 365).to_string();
        parts.join(".")
    };
    for bad in [
        format!("{payload}.{flipped}"),
        format!("{forged_role}.{mac}"),
        format!("{later}.{mac}"),
        "v1.op.99999999999.aaaa.bbbb.cccc".to_owned(),
        "garbage".to_owned(),
    ] {
        browser
            .cookies
            .insert("graphhooks_session".into(), bad.clone());
        let response = browser.get(&own).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{bad}");
        assert!(location(&response).starts_with("/dashboard/login"), "{bad}");
        let response = browser
            .get(&format!("/dashboard/apps/{}/webhooks", b.id))
            .await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{bad}");
    }

    // Rotating the app's secret ends the sessions made with the old one.
    browser.cookies.insert("graphhooks_session".into(), cookie);
    assert_eq!(browser.get(&own).await.status, StatusCode::OK);
    let response = server
        .admin(Method::POST, &format!("/admin/apps/{}/secret", a.id), None)
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(browser.get(&own).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn posts_need_the_sessions_csrf_token() {
    let server = server().await;
    let a = create_app(&server, "482910375518233", "Acme Social").await;
    let mut browser = Browser::new(&server);
    browser.sign_in_app(&a).await;
    browser
        .get(&format!("/dashboard/apps/{}/webhooks", a.id))
        .await;
    let path = format!("/dashboard/apps/{}/webhooks/user/remove", a.id);

    let response = browser.post_raw(&path, &[], &[]).await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert!(response.text.contains("security token"));
    let response = browser.post_raw(&path, &[("_csrf", "0123")], &[]).await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    // Another session's token does not do either.
    let mut other = Browser::new(&server);
    other.sign_in_app(&a).await;
    other
        .get(&format!("/dashboard/apps/{}/webhooks", a.id))
        .await;
    assert_ne!(other.csrf, browser.csrf);
    let response = browser
        .post_raw(&path, &[("_csrf", &other.csrf.clone())], &[])
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);

    // The form field or the header (the dashboard's script) both work.
    let response = browser.post(&path, &[]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let header = [("x-csrf-token", browser.csrf.clone())];
    let response = browser.post_raw(&path, &[], &header).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);

    // The sign-in form has its own token.
    let mut fresh = Browser::new(&server);
    let response = fresh
        .post_raw(
            "/dashboard/login",
            &[
                ("kind", "app"),
                ("app_id", &a.id),
                ("app_secret", &a.secret),
            ],
            &[],
        )
        .await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert!(!fresh.cookies.contains_key("graphhooks_session"));
}

#[tokio::test]
async fn wrong_credentials_get_a_clear_message_and_no_session() {
    let server = server().await;
    let a = create_app(&server, "482910375518233", "Acme Social").await;
    let mut browser = Browser::new(&server);
    let wrong = TestApp {
        id: a.id.clone(),
        secret: "0".repeat(64),
    };
    let response = browser.sign_in_app(&wrong).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert!(response.text.contains("The app ID or app secret is wrong"));
    assert!(!browser.cookies.contains_key("graphhooks_session"));
    let unknown = TestApp {
        id: "not-a-number".into(),
        secret: a.secret.clone(),
    };
    let response = browser.sign_in_app(&unknown).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert!(response.text.contains("An app ID is a number"));

    let page = browser.get("/dashboard/login").await;
    let token = attribute_after(&page.text, "name=\"_csrf\"", "value").unwrap();
    let response = browser
        .post_raw(
            "/dashboard/login",
            &[
                ("_csrf", &token),
                ("kind", "operator"),
                ("admin_token", "not-the-token"),
            ],
            &[],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert!(response.text.contains("That is not the admin token."));

    // A `next` outside the dashboard is ignored.
    let page = browser
        .get("/dashboard/login?next=https://evil.example/")
        .await;
    assert!(!page.text.contains("evil.example"));
}

#[tokio::test]
async fn session_cookies_are_secure_behind_an_https_proxy() {
    let server = server().await;
    let page = request(
        Method::GET,
        &format!("{}/dashboard/login", server.base),
        &[("x-forwarded-proto", "https".to_owned())],
        None,
    )
    .await;
    let cookie = page.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let token = attribute_after(&page.text, "name=\"_csrf\"", "value").unwrap();
    let cookie_pair = cookie.split(';').next().unwrap().to_owned();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("_csrf", token.as_str()),
            ("kind", "operator"),
            ("admin_token", ADMIN_TOKEN),
        ])
        .finish();
    let response = request(
        Method::POST,
        &format!("{}/dashboard/login", server.base),
        &[
            ("x-forwarded-proto", "https".to_owned()),
            ("cookie", cookie_pair),
        ],
        Some(("application/x-www-form-urlencoded", body.into_bytes())),
    )
    .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let session = response
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("graphhooks_session="))
        .unwrap();
    assert!(session.contains("; Secure"), "{session}");
}

#[tokio::test]
async fn verify_and_save_shows_the_handshake_result_then_fields_test_and_redeliver_work() {
    let server = server().await;
    let a = create_app(&server, "482910375518233", "Acme Social").await;
    let receiver = server.receiver().await;
    let callback = receiver.url("/hook");
    let mut browser = Browser::new(&server);
    browser.sign_in_app(&a).await;
    let base = format!("/dashboard/apps/{}/webhooks", a.id);
    let page = browser.get(&format!("{base}?object=user")).await;
    assert!(page.text.contains("Verify and save"));

    // A wrong verify token: the handshake's exact answer, inline, and nothing saved.
    let response = browser
        .post(
            &format!("{base}/user/verify"),
            &[
                ("callback_url", &callback),
                ("verify_token", "wrong-token"),
                ("include_values", "on"),
                ("fields", "email"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response.text.contains("Verification failed"),
        "{}",
        response.text
    );
    assert!(response.text.contains("(#2200)"));
    assert!(response.text.contains("HTTP 403"));
    assert!(response.text.contains("bad token"));
    assert!(
        response.text.contains("value=\"wrong-token\""),
        "the form keeps what was typed"
    );
    let handshake = receiver.next(WAIT).await.unwrap();
    assert_eq!(
        handshake.query_param("hub.verify_token").as_deref(),
        Some("wrong-token")
    );
    subscriptions_until(&server, &a, |s| s["data"] == json!([])).await;

    // No field chosen for a new subscription: said inline, no request made.
    let response = browser
        .post(
            &format!("{base}/user/verify"),
            &[("callback_url", &callback), ("verify_token", "verify-me")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text.contains("Choose at least one field"));
    // A refused callback URL.
    let response = browser
        .post(
            &format!("{base}/user/verify"),
            &[
                ("callback_url", "http://127.0.0.1:9/plain"),
                ("verify_token", "verify-me"),
                ("fields", "email"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text.contains("callback_url is refused"));

    // The right token: saved, with the field pinned to the current version.
    let response = browser
        .post(
            &format!("{base}/user/verify"),
            &[
                ("callback_url", &callback),
                ("verify_token", "verify-me"),
                ("include_values", "on"),
                ("fields", "email"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.text);
    assert!(location(&response).contains("notice=verified"));
    receiver.next(WAIT).await.unwrap();
    let page = browser.get(location(&response)).await;
    assert!(page.text.contains("Verified and saved"));
    assert!(page.text.contains("v25.0"));

    // Subscribe and unsubscribe fields.
    let response = browser
        .post(&format!("{base}/user/fields/name/subscribe"), &[])
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let response = browser
        .post(&format!("{base}/user/fields/nonsense/subscribe"), &[])
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text.contains("nonsense"));
    subscriptions_until(&server, &a, |s| {
        s["data"][0]["fields"]
            == json!([{"name": "email", "version": "v25.0"}, {"name": "name", "version": "v25.0"}])
    })
    .await;
    let response = browser
        .post(&format!("{base}/user/fields/name/unsubscribe"), &[])
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    subscriptions_until(&server, &a, |s| {
        s["data"][0]["fields"] == json!([{"name": "email", "version": "v25.0"}])
    })
    .await;

    // Test: the edited sample, signed, to the callback; the script follows it by id.
    let json_headers = [("accept", "application/json".to_owned())];
    let response = browser
        .post_raw(
            &format!("{base}/user/test/email"),
            &[
                ("_csrf", &browser.csrf.clone()),
                ("value", "\"zoë/test@example.com\""),
                ("object_id", "1021"),
            ],
            &json_headers,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let id = response.json["delivery_id"].as_str().unwrap().to_owned();
    let post = receiver.next_post(WAIT).await.unwrap();
    assert_eq!(
        post.header("x-hub-signature-256").unwrap(),
        sign256(&a.secret, &post.body)
    );
    assert_eq!(post.header("x-graphhooks-delivery"), Some(id.as_str()));
    assert_eq!(post.json()["entry"][0]["id"], "1021");
    assert_eq!(
        post.json()["entry"][0]["changes"][0],
        json!({"field": "email", "value": "zoë/test@example.com"})
    );
    assert!(
        post.body_text().contains("zo\\u00eb\\/test"),
        "Meta's escaping"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = browser
            .get(&format!("/dashboard/apps/{}/deliveries/{id}/status", a.id))
            .await;
        if status.json["state"] == "delivered" {
            assert_eq!(status.json["attempts"][0]["status"], 200);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", status.text);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Bad JSON is refused with a message, as JSON for the script and inline for a form.
    let response = browser
        .post_raw(
            &format!("{base}/user/test/email"),
            &[("_csrf", &browser.csrf.clone()), ("value", "{not json")],
            &json_headers,
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response.json["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let response = browser
        .post(
            &format!("{base}/user/test/email"),
            &[("value", "{not json")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text.contains("not valid JSON"));
    assert!(
        response.text.contains("{not json"),
        "the typed value is kept"
    );

    // The log: the delivery, its body, reconstructed headers and attempts; then redeliver.
    let log = browser
        .get(&format!("/dashboard/apps/{}/deliveries", a.id))
        .await;
    assert_eq!(log.status, StatusCode::OK);
    assert!(log.text.contains(&format!("delivery-{id}")));
    let signature = sign256(&a.secret, &post.body);
    assert!(
        log.text.contains(&signature),
        "reconstructed X-Hub-Signature-256"
    );
    assert!(log.text.contains("x-graphhooks-delivery: "));
    let filtered = browser
        .get(&format!("/dashboard/apps/{}/deliveries?state=failed", a.id))
        .await;
    assert!(!filtered.text.contains(&format!("delivery-{id}")));
    let filtered = browser
        .get(&format!(
            "/dashboard/apps/{}/deliveries?state=delivered&object=user",
            a.id
        ))
        .await;
    assert!(filtered.text.contains(&format!("delivery-{id}")));
    let bad_filter = browser
        .get(&format!("/dashboard/apps/{}/deliveries?state=lost", a.id))
        .await;
    assert_eq!(bad_filter.status, StatusCode::OK);
    assert!(bad_filter.text.contains("state must be"));

    let response = browser
        .post(
            &format!("/dashboard/apps/{}/deliveries/{id}/redeliver", a.id),
            &[],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let again = receiver.next_post(WAIT).await.unwrap();
    assert_eq!(again.header("x-graphhooks-delivery"), Some(id.as_str()));
    assert_eq!(again.header("x-graphhooks-attempt"), Some("2"));
    assert_eq!(again.body, post.body);
}

#[tokio::test]
async fn a_paused_subscription_shows_a_banner_and_resume_sends_the_backlog() {
    let server = server().await;
    let a = create_app(&server, "482910375518233", "Acme Social").await;
    let receiver = Receiver::builder()
        .default_reply(Reply::status(500).with_body("down for maintenance"))
        .start(&server.ca)
        .await;
    server
        .subscribe_ok(&a, "page", &["feed"], &receiver, "/page")
        .await;
    let id = graph_sample(&server, &a, "page", "feed").await;
    subscriptions_until(&server, &a, |s| s["data"][0]["active"] == false).await;

    let mut browser = Browser::new(&server);
    browser.sign_in_app(&a).await;
    let base = format!("/dashboard/apps/{}/webhooks", a.id);
    let page = browser.get(&format!("{base}?object=page")).await;
    assert!(page.text.contains("paused-banner"), "{}", page.text);
    assert!(page.text.contains("notifications are paused."));
    let log = browser
        .get(&format!("/dashboard/apps/{}/deliveries?state=paused", a.id))
        .await;
    assert!(log.text.contains(&format!("delivery-{id}")));
    assert!(
        log.text.contains("down for maintenance"),
        "the response snippet"
    );

    receiver.set_default_reply(Reply::ok());
    receiver.try_drain();
    let response = browser.post(&format!("{base}/page/resume"), &[]).await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert!(location(&response).contains("count=1"));
    let page = browser.get(location(&response)).await;
    assert!(page.text.contains("1 held notification will go out now"));
    assert!(!page.text.contains("paused-banner"));
    let post = receiver.next_post(WAIT).await.unwrap();
    assert_eq!(post.header("x-graphhooks-delivery"), Some(id.as_str()));
}

#[tokio::test]
async fn the_operator_sees_every_app_creates_one_and_manages_mode_roles_and_grants() {
    let server = server().await;
    let a = create_app(&server, "482910375518233", "Acme Social").await;
    let mut browser = Browser::new(&server);
    let response = browser.sign_in_operator().await;
    assert_eq!(location(&response), "/dashboard/apps");
    let page = browser.get("/dashboard/apps").await;
    assert!(page.text.contains("Acme Social"));
    assert!(page.text.contains("Success (24 h)"));

    let response = browser
        .post("/dashboard/apps", &[("name", ""), ("mode", "live")])
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text.contains("Give the app a name"));
    let response = browser
        .post(
            "/dashboard/apps",
            &[("name", "Photo Sharer"), ("mode", "development")],
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(response.headers["cache-control"], "no-store");
    let id = response
        .text
        .split("id=\"created-app-id\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    let secret = response
        .text
        .split("id=\"created-secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    assert_eq!(secret.len(), 64);
    // The secret shown works as the app's credential.
    let created = TestApp {
        id: id.clone(),
        secret,
    };
    let mut developer = Browser::new(&server);
    assert_eq!(
        developer.sign_in_app(&created).await.status,
        StatusCode::SEE_OTHER
    );
    // And it is not shown again.
    let page = browser.get("/dashboard/apps").await;
    assert!(page.text.contains("Photo Sharer"));
    assert!(!page.text.contains(&created.secret));

    let settings = format!("/dashboard/apps/{id}/settings");
    browser.get(&settings).await;
    let response = browser
        .post(&format!("{settings}/mode"), &[("mode", "live")])
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let response = browser
        .post(
            &format!("{settings}/roles"),
            &[("user_id", "1021"), ("role", "tester")],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let response = browser
        .post(
            &format!("{settings}/roles"),
            &[("user_id", "1022"), ("role", "owner")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text.contains("role must be"));
    let response = browser
        .post(
            &format!("{settings}/grants"),
            &[
                ("object_type", "user"),
                ("object_id", "1021"),
                ("permissions", "user_likes, email email"),
            ],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let response = browser
        .post(
            &format!("{settings}/grants"),
            &[("object_type", "spaceship"), ("object_id", "1")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);

    let app = server
        .admin(Method::GET, &format!("/admin/apps/{id}"), None)
        .await;
    assert_eq!(app.json["mode"], "live");
    let roles = server
        .admin(Method::GET, &format!("/admin/apps/{id}/roles"), None)
        .await;
    assert_eq!(
        roles.json["data"],
        json!([{"user_id": "1021", "role": "tester"}])
    );
    let grants = server
        .admin(Method::GET, &format!("/admin/apps/{id}/grants"), None)
        .await;
    assert_eq!(
        grants.json["data"][0]["permissions"],
        json!(["email", "user_likes"])
    );

    let response = browser
        .post(
            &format!("{settings}/grants/remove"),
            &[("object_type", "user"), ("object_id", "1021")],
        )
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let response = browser
        .post(&format!("{settings}/roles/remove"), &[("user_id", "1021")])
        .await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    let roles = server
        .admin(Method::GET, &format!("/admin/apps/{id}/roles"), None)
        .await;
    assert_eq!(roles.json["data"], json!([]));

    // The operator opens any app's pages.
    for path in [
        format!("/dashboard/apps/{}/webhooks", a.id),
        format!("/dashboard/apps/{}/deliveries", a.id),
    ] {
        assert_eq!(browser.get(&path).await.status, StatusCode::OK, "{path}");
    }
    assert_eq!(
        browser.get("/dashboard/apps/12345/webhooks").await.status,
        StatusCode::NOT_FOUND
    );
    // The operator's session is tied to the admin token; an app's cannot reach the list.
    assert_eq!(
        developer.get("/dashboard/apps").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn assets_are_embedded_and_unknown_pages_are_dashboard_404s() {
    let server = server().await;
    let css = request(
        Method::GET,
        &format!("{}/dashboard/assets/dashboard.css", server.base),
        &[],
        None,
    )
    .await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let js = request(
        Method::GET,
        &format!("{}/dashboard/assets/dashboard.js", server.base),
        &[],
        None,
    )
    .await;
    assert_eq!(js.status, StatusCode::OK);
    let missing = request(
        Method::GET,
        &format!("{}/dashboard/nowhere", server.base),
        &[],
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text.contains("<html lang=\"en\">"));
}

/// Drives the dashboard in headless Chromium (`dashboard-tests/walkthrough.mjs`) against a real
/// server and HTTPS receivers, then checks what the receivers got. Needs Chromium and the npm
/// packages: `scripts/browser-tests` installs both and runs this.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and node_modules; run by scripts/browser-tests"]
async fn browser_walkthrough() {
    // At run time, not `env!`: a test binary from a shared target directory may have been
    // built by a clone of the workspace at another path.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo runs the tests");
    let root = std::path::Path::new(&manifest_dir).join("../..");
    let script = root.join("dashboard-tests/walkthrough.mjs");
    assert!(
        root.join("dashboard-tests/node_modules/playwright-core")
            .exists(),
        "run scripts/browser-tests (it installs Chromium and playwright-core)"
    );
    let server = server().await;
    let a = create_app(&server, "482910375518233", "Acme Social").await;
    let b = create_app(&server, "777000111222333", "Other App").await;
    let receiver_a = server.receiver().await;
    let receiver_b = server.receiver().await;
    let receiver_paused = Receiver::builder()
        .default_reply(Reply::status(503).with_body("maintenance until 14:00"))
        .start(&server.ca)
        .await;

    // App B has a delivery of its own, which A must never see.
    server
        .subscribe_ok(&b, "user", &["email"], &receiver_b, "/b")
        .await;
    let b_delivery = graph_sample(&server, &b, "user", "email").await;
    receiver_b.next_post(WAIT).await.unwrap();

    // App A's page subscription fails until it is paused; the browser resumes it.
    server
        .subscribe_ok(&a, "page", &["feed"], &receiver_paused, "/pages")
        .await;
    let paused_delivery = graph_sample(&server, &a, "page", "feed").await;
    subscriptions_until(&server, &a, |s| s["data"][0]["active"] == false).await;
    receiver_paused.set_default_reply(Reply::ok());
    receiver_paused.try_drain();

    let screenshots = std::env::var_os("GRAPHHOOKS_SCREENSHOTS")
        .map_or_else(|| root.join("docs/screenshots"), std::path::PathBuf::from);
    std::fs::create_dir_all(&screenshots).unwrap();
    let test_value = "dashboard-test@example.com";
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .current_dir(root.join("dashboard-tests"))
        .env("GH_BASE", &server.base)
        .env("GH_ADMIN_TOKEN", crate::support::ADMIN_TOKEN)
        .env("GH_APP_A_ID", &a.id)
        .env("GH_APP_A_SECRET", &a.secret)
        .env("GH_APP_B_ID", &b.id)
        .env("GH_APP_B_DELIVERY", &b_delivery)
        .env("GH_APP_B_MARKER", "b-marker-4242")
        .env("GH_CALLBACK_URL", receiver_a.url("/webhook"))
        .env("GH_VERIFY_TOKEN", "verify-me")
        .env("GH_TEST_VALUE", test_value)
        .env("GH_SCREENSHOTS", &screenshots)
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (apt-get install nodejs)");
    let status = tokio::time::timeout(Duration::from_secs(240), child.wait())
        .await
        .expect("the browser walkthrough ends within 4 minutes")
        .expect("node ran");
    assert!(status.success(), "the browser walkthrough failed: {status}");

    // What the receivers got: A's wrong-token handshake (refused), the good one, the test
    // notification with the edited value, and its redelivery under the same id.
    let requests = receiver_a.try_drain();
    let handshakes: Vec<_> = requests
        .iter()
        .filter(|r| r.method == Method::GET)
        .map(|r| r.query_param("hub.verify_token").unwrap_or_default())
        .collect();
    assert!(
        handshakes.contains(&"wrong-token".to_owned()),
        "{handshakes:?}"
    );
    assert!(
        handshakes.contains(&"verify-me".to_owned()),
        "{handshakes:?}"
    );
    let posts: Vec<_> = requests
        .iter()
        .filter(|r| r.method == Method::POST)
        .collect();
    let tests: Vec<_> = posts
        .iter()
        .filter(|p| p.body_text().contains(test_value))
        .collect();
    assert!(
        tests.len() >= 2,
        "the test and its redelivery: {}",
        posts.len()
    );
    for post in &tests {
        assert_eq!(
            post.header("x-hub-signature-256").unwrap(),
            sign256(&a.secret, &post.body)
        );
        assert_eq!(
            post.header("x-graphhooks-delivery"),
            tests[0].header("x-graphhooks-delivery")
        );
        assert_eq!(post.json()["entry"][0]["changes"][0]["field"], "email");
    }
    let attempts: Vec<_> = tests
        .iter()
        .map(|p| p.header("x-graphhooks-attempt").unwrap_or(""))
        .collect();
    assert!(
        attempts.contains(&"1") && attempts.contains(&"2"),
        "{attempts:?}"
    );
    // Resuming sent the held page notification.
    let resumed = receiver_paused.next_post(WAIT).await.unwrap();
    assert_eq!(
        resumed.header("x-graphhooks-delivery"),
        Some(paused_delivery.as_str())
    );
    // B's receiver got nothing from A's session.
    assert!(receiver_b.try_drain().is_empty());
    for name in [
        "01-sign-in.png",
        "02-handshake-error.png",
        "03-webhooks.png",
        "04-test-dialog.png",
        "05-paused-banner.png",
        "06-delivery-log.png",
        "07-operator-apps.png",
        "08-app-settings.png",
        "09-phone-webhooks.png",
        "10-phone-delivery-log.png",
    ] {
        assert!(screenshots.join(name).exists(), "screenshot {name}");
    }
}
