//! Several `graphhooks serve` processes on one PostgreSQL database: shared work, a node killed
//! with `-9` and its work taken over, and PostgreSQL itself restarted under load.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graphhooks_store_postgres::testing::TestDatabase;
use graphhooks_testkit::{Receiver, Reply, TestCa};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::http::{request, try_request};
use crate::support::postgres::PrivatePostgres;
use crate::support::process::ServeProcess;

const TOKEN: &str = "multinode-admin-token-0123456789";
const APPS: usize = 6;

struct Cluster {
    nodes: Vec<Option<ServeProcess>>,
    _ca_dir: tempfile::TempDir,
}

async fn start_nodes(count: usize, database: &str, ca: &TestCa) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = ca.write_pem(dir.path()).display().to_string();
    let mut nodes = Vec::new();
    for _ in 0..count {
        let args = [
            "--database",
            database,
            "--callback-ca",
            &ca_path,
            "--allow-private-callbacks",
            "--admin-token",
            TOKEN,
            "--node-lease",
            "2s",
            "--retry-schedule",
            "0s,200ms,500ms",
            "--database-pool-size",
            "8",
        ];
        nodes.push(Some(ServeProcess::spawn(&args, &[]).await));
    }
    Cluster {
        nodes,
        _ca_dir: dir,
    }
}

impl Cluster {
    fn base(&self, index: usize) -> Option<String> {
        self.nodes[index].as_ref().map(|node| node.base.clone())
    }

    fn live_bases(&self) -> Vec<String> {
        self.nodes
            .iter()
            .flatten()
            .map(|n| n.base.clone())
            .collect()
    }
}

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

/// Creates `APPS` live apps, each subscribed (through a different node) to `page.feed` at its
/// own path and granted page `p{i}`; returns their ids.
async fn set_up_apps(cluster: &Cluster, receiver: &Receiver) -> Vec<String> {
    let bases = cluster.live_bases();
    let mut ids = Vec::new();
    for i in 0..APPS {
        let base = &bases[i % bases.len()];
        let app = admin(
            base,
            Method::POST,
            "/admin/apps",
            Some(json!({"name": format!("app {i}"), "mode": "live"})),
        )
        .await;
        assert_eq!(app.status, StatusCode::CREATED, "{}", app.text);
        let id = app.json["id"].as_str().unwrap().to_owned();
        let secret = app.json["secret"].as_str().unwrap();
        let subscribed = request(
            Method::POST,
            &format!("{base}/v25.0/{id}/subscriptions"),
            &[("authorization", format!("Bearer {id}|{secret}"))],
            Some((
                "application/json",
                json!({"object": "page", "fields": ["feed"], "callback_url": receiver.url(&format!("/app{i}")),
                       "verify_token": "verify-me", "include_values": true})
                .to_string()
                .into_bytes(),
            )),
        )
        .await;
        assert_eq!(subscribed.status, StatusCode::OK, "{}", subscribed.text);
        let granted = admin(
            base,
            Method::PUT,
            &format!("/admin/apps/{id}/grants/page/p{i}"),
            Some(json!({"permissions": ["pages_read_engagement"]})),
        )
        .await;
        assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);
        ids.push(id);
    }
    ids
}

fn batch_body(values: &[i64]) -> Vec<u8> {
    let changes: Vec<Value> = values
        .iter()
        .map(|n| json!({"object": "page", "id": format!("p{}", n % APPS as i64), "field": "feed", "value": {"n": n}}))
        .collect();
    json!({"changes": changes}).to_string().into_bytes()
}

/// Everything the receiver got: value → (path, times received).
fn tally(receiver: &Receiver, seen: &mut HashMap<i64, (String, usize)>) {
    for post in receiver
        .try_drain()
        .into_iter()
        .filter(|r| r.method == Method::POST)
    {
        for entry in post.json()["entry"].as_array().unwrap() {
            for change in entry["changes"].as_array().unwrap() {
                let n = change["value"]["n"].as_i64().unwrap();
                seen.entry(n).or_insert_with(|| (post.path.clone(), 0)).1 += 1;
            }
        }
    }
}

/// Where work is stuck, for failure messages.
async fn diagnose(database: &str) -> String {
    let Ok(db) = sqlx::PgPool::connect(database).await else {
        return "(cannot connect)".into();
    };
    let mut report = String::new();
    for (label, sql) in [
        ("queued changes", "SELECT count(*)::text FROM change_queue"),
        (
            "deliveries by state/claim",
            "SELECT coalesce(string_agg(s, ', '), '') FROM (SELECT state || ' claimed_by=' || coalesce(claimed_by, '-') || ': ' || count(*) AS s FROM deliveries GROUP BY state, claimed_by) x",
        ),
        (
            "nodes",
            "SELECT coalesce(string_agg(id || ' (' || round(extract(epoch FROM now() - heartbeat_at))::text || 's ago)', ', '), '') FROM nodes",
        ),
        (
            "lanes",
            "SELECT coalesce(string_agg(app_id || '/' || object_type || '@' || node_id, ', '), '') FROM lanes",
        ),
    ] {
        let value: String = sqlx::query_scalar(sql)
            .fetch_one(&db)
            .await
            .unwrap_or_else(|e| e.to_string());
        report.push_str(&format!("  {label}: {value}\n"));
    }
    report
}

/// Waits (bounded) until every accepted value arrived; returns the duplicate count.
async fn await_all(
    receiver: &Receiver,
    accepted: &HashSet<i64>,
    within: Duration,
    database: &str,
) -> usize {
    let mut seen: HashMap<i64, (String, usize)> = HashMap::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        tally(receiver, &mut seen);
        let missing = accepted.iter().filter(|n| !seen.contains_key(n)).count();
        if missing == 0 {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "{missing} of {} accepted changes never arrived; the database says:\n{}",
                accepted.len(),
                diagnose(database).await
            );
        }
        // Wait for the next request rather than spin; put it back by tallying it.
        if let Some(post) = receiver.next_post(Duration::from_millis(200)).await {
            for entry in post.json()["entry"].as_array().unwrap() {
                for change in entry["changes"].as_array().unwrap() {
                    let n = change["value"]["n"].as_i64().unwrap();
                    seen.entry(n).or_insert_with(|| (post.path.clone(), 0)).1 += 1;
                }
            }
        }
    }
    for (n, (path, _)) in &seen {
        assert_eq!(
            path,
            &format!("/app{}", n % APPS as i64),
            "change {n} went to its object's app only"
        );
    }
    seen.values().map(|(_, count)| count - 1).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_share_the_work_and_take_over_a_killed_one() {
    let database = TestDatabase::create().await;
    let ca = TestCa::new();
    // Slow enough answers that work is queued and in flight when a node dies.
    let receiver = Receiver::builder()
        .default_reply(Reply::ok().with_delay(Duration::from_millis(20)))
        .start(&ca)
        .await;
    let mut cluster = start_nodes(3, &database.url, &ca).await;
    set_up_apps(&cluster, &receiver).await;
    receiver.try_drain();

    // 10,000 changes in batches of 100, round-robin over the nodes, from four clients. A batch
    // whose node died is sent again through another node.
    let total: i64 = 10_000;
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let next_batch = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let bases: Arc<Mutex<Vec<Option<String>>>> =
        Arc::new(Mutex::new((0..3).map(|i| cluster.base(i)).collect()));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (accepted, next_batch, bases) = (accepted.clone(), next_batch.clone(), bases.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let batch = next_batch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if batch * 100 >= total {
                    return;
                }
                let values: Vec<i64> = (batch * 100..(batch + 1) * 100).collect();
                for attempt in 0..6 {
                    let base = {
                        let bases = bases.lock().unwrap();
                        let live: Vec<&String> = bases.iter().flatten().collect();
                        live[(batch as usize + attempt) % live.len()].clone()
                    };
                    let sent = tokio::time::timeout(
                        Duration::from_secs(5),
                        try_request(
                            Method::POST,
                            &format!("{base}/admin/changes"),
                            &[("authorization", format!("Bearer {TOKEN}"))],
                            batch_body(&values),
                        ),
                    )
                    .await;
                    if let Ok(Ok(StatusCode::ACCEPTED)) = sent {
                        accepted.lock().unwrap().extend(values.iter().copied());
                        break;
                    }
                }
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while accepted.lock().unwrap().len() < 4_000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "changes are accepted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Kill node 1 once it sends a share of the work (it owns lanes, hence claims).
    let db = sqlx::PgPool::connect(&database.url).await.unwrap();
    let pid = cluster.nodes[1].as_ref().expect("node 1 runs").pid();
    let node_pattern = format!("%-{pid}-%");
    let owned = |pattern: String| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM lanes WHERE node_id LIKE $1")
                .bind(pattern)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while owned(node_pattern.clone()).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 1 never took a share of the lanes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lanes_at_kill = owned(node_pattern.clone()).await;
    let killed = cluster.nodes[1].take().expect("node 1 runs");
    bases.lock().unwrap()[1] = None;
    killed.kill9().await;
    for client in clients {
        client.await.unwrap();
    }
    let accepted: HashSet<i64> = accepted.lock().unwrap().clone();
    assert_eq!(
        accepted.len() as i64,
        total,
        "every batch was accepted by some node"
    );
    let duplicates = await_all(&receiver, &accepted, Duration::from_secs(60), &database.url).await;
    // The survivors reaped the dead node: nothing is left claimed by it or owned by it.
    let leftovers: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM lanes WHERE node_id LIKE $1)
              + (SELECT count(*) FROM deliveries WHERE claimed_by LIKE $1)
              + (SELECT count(*) FROM nodes WHERE id LIKE $1)",
    )
    .bind(&node_pattern)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        leftovers, 0,
        "the killed node's lease, lanes and claims are gone"
    );
    // Every delivery ends delivered (the last outcomes are recorded just after the receiver
    // answers, so this waits for them, bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state <> 'delivered'")
                .fetch_one(&db)
                .await
                .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pending} deliveries never ended delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "three nodes, kill -9 of one mid-way (it owned {lanes_at_kill} of {APPS} lanes): {} changes accepted, all delivered to the right app; {duplicates} duplicate deliveries",
        accepted.len()
    );
    db.close().await;

    // The survivors reaped the dead node: no claims or lanes of it are left.
    let response = admin(&cluster.live_bases()[0], Method::GET, "/healthz", None).await;
    assert_eq!(response.status, StatusCode::OK);
    for node in cluster.nodes.iter_mut().filter_map(Option::take) {
        node.terminate(crate::support::WAIT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_loses_nothing_and_delivery_resumes() {
    let postgres = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let ca = TestCa::new();
    let receiver = Receiver::builder().start(&ca).await;
    let postgres_url = postgres.url();
    let mut cluster = start_nodes(2, &postgres_url, &ca).await;
    set_up_apps(&cluster, &receiver).await;
    receiver.try_drain();
    let bases = cluster.live_bases();

    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pusher = {
        let (accepted, stop, bases) = (accepted.clone(), stop.clone(), bases.clone());
        tokio::spawn(async move {
            let mut batch: i64 = 0;
            let mut refused = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let values: Vec<i64> = (batch * 20..(batch + 1) * 20).collect();
                let base = &bases[batch as usize % bases.len()];
                let sent = tokio::time::timeout(
                    Duration::from_secs(5),
                    try_request(
                        Method::POST,
                        &format!("{base}/admin/changes"),
                        &[("authorization", format!("Bearer {TOKEN}"))],
                        batch_body(&values),
                    ),
                )
                .await;
                match sent {
                    Ok(Ok(StatusCode::ACCEPTED)) => {
                        accepted.lock().unwrap().extend(values);
                        batch += 1;
                    }
                    // PostgreSQL is down: the node refuses (503) rather than accept what it
                    // cannot keep; try again in a moment.
                    _ => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            refused
        })
    };
    let wait_for = |count: usize| {
        let accepted = accepted.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while accepted.lock().unwrap().len() < count {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "changes are accepted"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(1_000).await;
    let postgres = Arc::new(postgres);
    {
        let postgres = postgres.clone();
        tokio::task::spawn_blocking(move || postgres.stop())
            .await
            .unwrap();
    }
    let health = admin(&bases[0], Method::GET, "/healthz", None).await;
    assert_eq!(
        health.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        health.text
    );
    assert_eq!(health.json["database"], "down");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_restart = accepted.lock().unwrap().len();
    {
        let postgres = postgres.clone();
        tokio::task::spawn_blocking(move || postgres.start_again())
            .await
            .unwrap();
    }
    wait_for(before_restart + 1_000).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let refused = pusher.await.unwrap();
    let accepted: HashSet<i64> = accepted.lock().unwrap().clone();
    let duplicates = await_all(&receiver, &accepted, Duration::from_secs(60), &postgres_url).await;
    let health = admin(&bases[0], Method::GET, "/healthz", None).await;
    assert_eq!(
        health.status,
        StatusCode::OK,
        "healthy again: {}",
        health.text
    );
    println!(
        "PostgreSQL restart under load: {} changes accepted ({refused} refused while it was down), all delivered; {duplicates} duplicates",
        accepted.len()
    );
    for node in cluster.nodes.iter_mut().filter_map(Option::take) {
        node.terminate(crate::support::WAIT).await;
    }
}
