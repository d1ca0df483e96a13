//! Ingest tells other nodes over NOTIFY only while another node is registered.

use std::time::Duration;

use graphhooks_core::model::NewChange;
use graphhooks_store::Store;
use graphhooks_store_postgres::testing::TestDatabase;
use graphhooks_store_postgres::{PostgresOptions, PostgresStore};
use sqlx::postgres::PgListener;

const CHANNEL: &str = "graphhooks";
const LEASE: Duration = Duration::from_secs(60);
/// Far longer than a notification takes on loopback.
const BOUND: Duration = Duration::from_secs(10);

fn change() -> NewChange {
    NewChange {
        object_type: "user".into(),
        object_id: "1".into(),
        field: "name".into(),
        value: "\"Ada\"".into(),
        actor: None,
        time: 1_764_288_000,
    }
}

async fn next_payload(listener: &mut PgListener) -> String {
    tokio::time::timeout(BOUND, listener.recv())
        .await
        .expect("a notification in time")
        .expect("listening")
        .payload()
        .to_owned()
}

/// Sends a marker after everything committed so far, so that its arrival shows that nothing
/// before it was notified (notifications arrive in commit order).
async fn marker(pool: &sqlx::PgPool) {
    sqlx::query("SELECT pg_notify($1, 'marker')")
        .bind(CHANNEL)
        .execute(pool)
        .await
        .expect("notify the marker");
}

#[tokio::test]
async fn ingest_notifies_only_while_another_node_is_registered() {
    let database = TestDatabase::create().await;
    let options = PostgresOptions {
        pool_size: 4,
        listen: false,
        ..PostgresOptions::default()
    };
    let store = PostgresStore::open(&database.url, options)
        .await
        .expect("open PostgreSQL");
    let pool = sqlx::PgPool::connect(&database.url).await.expect("a pool");
    let mut listener = PgListener::connect(&database.url)
        .await
        .expect("a listener");
    listener.listen(CHANNEL).await.expect("listen");

    // Before this store has heartbeated, it does not know it is alone: it tells.
    store.insert_changes(vec![change()]).await.expect("insert");
    assert!(next_payload(&mut listener).await.starts_with("changes "));

    // Alone: the marker is the first thing heard.
    store.heartbeat("node-a", LEASE).await.expect("heartbeat a");
    store.insert_changes(vec![change()]).await.expect("insert");
    marker(&pool).await;
    assert_eq!(next_payload(&mut listener).await, "marker");

    // Another node registers; from this store's next heartbeat on, ingest tells again.
    store.heartbeat("node-b", LEASE).await.expect("heartbeat b");
    store.heartbeat("node-a", LEASE).await.expect("heartbeat a");
    store.insert_changes(vec![change()]).await.expect("insert");
    marker(&pool).await;
    assert!(next_payload(&mut listener).await.starts_with("changes "));
    assert_eq!(next_payload(&mut listener).await, "marker");

    store.close().await;
    pool.close().await;
}
