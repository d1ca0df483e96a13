//! SQLite keeps claims in memory: a claim whose write fails is taken back, not leaked.

use std::collections::BTreeMap;

use graphhooks_core::catalog::builtin;
use graphhooks_core::fanout::PlannedDelivery;
use graphhooks_core::model::{
    App, AppMode, DeliveryState, Secret, Subscription, SubscriptionStatus,
};
use graphhooks_core::wire::BuiltNotification;
use graphhooks_store::{ClaimRequest, NewDelivery, Store};
use graphhooks_store_sqlite::{SqliteOptions, SqliteStore};

fn planned(object_id: &str) -> NewDelivery {
    NewDelivery {
        planned: PlannedDelivery {
            app_id: "1".into(),
            object_type: "user".into(),
            state: DeliveryState::Pending,
            notification: BuiltNotification {
                body: r#"{"object":"user","entry":[]}"#.into(),
                change_ids: vec![],
                object_ids: vec![object_id.into()],
            },
        },
        test: false,
    }
}

/// A claim that fails part-way (here on a row it cannot read) claims nothing: the rows it had
/// taken before the failure are claimable again once the cause is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_claim_takes_its_claims_back() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("claims.db");
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open SQLite");
    store.seed_object_types(builtin()).await.unwrap();
    store
        .create_app(App {
            id: "1".into(),
            name: "app 1".into(),
            mode: AppMode::Live,
            secret: Secret::from_stored("0123456789abcdef0123456789abcdef".into()),
            previous_secret: None,
            created_time: 1_700_000_000,
        })
        .await
        .unwrap();
    store
        .put_subscription(Subscription {
            app_id: "1".into(),
            object_type: "user".into(),
            callback_url: "https://example.com/1".into(),
            verify_token: "token".into(),
            include_values: true,
            include_client_certificate: false,
            standard_webhooks: false,
            status: SubscriptionStatus::Active,
            fields: BTreeMap::from([("name".to_owned(), "v25.0".to_owned())]),
            failing_since: None,
        })
        .await
        .unwrap();
    let first = store.insert_delivery(planned("u1"), 1_000).await.unwrap();
    let second = store.insert_delivery(planned("u2"), 1_000).await.unwrap();

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
