//! SQLite keeps claims in memory: a claim whose write fails is taken back, not leaked, and an
//! outcome settles only the row it was for.

use graphhooks_core::catalog::builtin;
use graphhooks_core::model::{AppMode, DeliveryState};
use graphhooks_store::conformance::{app, planned, subscription};
use graphhooks_store::{AttemptOutcome, ClaimRequest, NextStep, Store, SubscriptionKey};
use graphhooks_store_sqlite::{SqliteOptions, SqliteStore};

/// A store with apps `ids`, each subscribed to `user`'s name.
async fn store_with_apps(path: &std::path::Path, ids: &[&str]) -> SqliteStore {
    let store = SqliteStore::open(path, SqliteOptions::default()).expect("open SQLite");
    store
        .seed_object_types(builtin())
        .await
        .expect("seed the catalog");
    for id in ids {
        store
            .create_app(app(id, AppMode::Live))
            .await
            .expect("create an app");
        store
            .put_subscription(subscription(id, "user", &["name"]))
            .await
            .expect("subscribe it");
    }
    store
}

/// A claim that fails part-way (here on a row it cannot read) claims nothing: the rows it had
/// taken before the failure are claimable again once the cause is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_claim_takes_its_claims_back() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("claims.db");
    let store = store_with_apps(&path, &["1"]).await;
    let first = store
        .insert_delivery(planned("1", "user", "u1"), 1_000)
        .await
        .unwrap();
    let second = store
        .insert_delivery(planned("1", "user", "u2"), 1_000)
        .await
        .unwrap();

    // The claim reads `first`, then fails on `second`.
    let side = rusqlite::Connection::open(&path).unwrap();
    side.execute(
        "UPDATE deliveries SET object_ids = 'not json' WHERE id = ?1",
        [second],
    )
    .unwrap();
    assert!(
        store
            .claim_due("a", 2_000, &ClaimRequest::any(10))
            .await
            .is_err()
    );

    side.execute(
        "UPDATE deliveries SET object_ids = '[\"u2\"]' WHERE id = ?1",
        [second],
    )
    .unwrap();
    let claimed: Vec<i64> = store
        .claim_due("a", 2_000, &ClaimRequest::any(10))
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(claimed, vec![first, second]);
}

/// SQLite reuses the highest ids once their rows are deleted. The outcome of a claimed
/// delivery whose app was deleted meanwhile must not settle the new row that took its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_for_a_deleted_delivery_leaves_the_row_that_reuses_its_id() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = store_with_apps(&dir.path().join("reuse.db"), &["1", "2"]).await;
    let gone = store
        .insert_delivery(planned("2", "user", "u1"), 1_000)
        .await
        .unwrap();
    let claimed = store
        .claim_due("a", 1_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store.delete_app("2").await.unwrap();

    let reused = store
        .insert_delivery(planned("1", "user", "u2"), 1_000)
        .await
        .unwrap();
    assert_eq!(reused, gone, "SQLite reused the id");
    store
        .record_outcomes(
            vec![AttemptOutcome {
                delivery_id: gone,
                key: SubscriptionKey {
                    app_id: "2".into(),
                    object_type: "user".into(),
                },
                attempt: None,
                next: NextStep::Delivered,
            }]
            .into(),
        )
        .await
        .unwrap();
    let row = store.delivery(reused).await.unwrap().unwrap();
    assert_eq!(row.app_id, "1");
    assert_eq!(
        row.state,
        DeliveryState::Pending,
        "not settled by the old outcome"
    );
    let claimed = store
        .claim_due("a", 2_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![reused]
    );
}
