//! SQLite keeps claims in memory: a claim whose write fails is taken back, not leaked, and an
//! outcome settles only the row it was for.

use std::collections::BTreeMap;

use graphhooks_core::catalog::builtin;
use graphhooks_core::fanout::PlannedDelivery;
use graphhooks_core::model::{
    App, AppMode, DeliveryState, Secret, Subscription, SubscriptionStatus,
};
use graphhooks_core::wire::BuiltNotification;
use graphhooks_store::{
    AttemptOutcome, ClaimRequest, NewDelivery, NextStep, Store, SubscriptionKey,
};
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

/// SQLite reuses the highest ids once their rows are deleted. The outcome of a claimed
/// delivery whose app was deleted meanwhile must not settle the new row that took its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_for_a_deleted_delivery_leaves_the_row_that_reuses_its_id() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("reuse.db"), SqliteOptions::default())
        .expect("open SQLite");
    store.seed_object_types(builtin()).await.unwrap();
    for app in ["1", "2"] {
        store.create_app(app_of(app)).await.unwrap();
        store.put_subscription(subscription_of(app)).await.unwrap();
    }
    let mut gone = planned("u1");
    gone.planned.app_id = "2".into();
    let gone = store.insert_delivery(gone, 1_000).await.unwrap();
    let claimed = store
        .claim_due("a", 1_000, &ClaimRequest::any(10))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store.delete_app("2").await.unwrap();

    let reused = store.insert_delivery(planned("u2"), 1_000).await.unwrap();
    assert_eq!(reused, gone, "SQLite reused the id");
    store
        .record_outcomes(vec![AttemptOutcome {
            delivery_id: gone,
            key: SubscriptionKey {
                app_id: "2".into(),
                object_type: "user".into(),
            },
            attempt: None,
            next: NextStep::Delivered,
        }])
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

fn app_of(id: &str) -> App {
    App {
        id: id.into(),
        name: format!("app {id}"),
        mode: AppMode::Live,
        secret: Secret::from_stored("0123456789abcdef0123456789abcdef".into()),
        previous_secret: None,
        created_time: 1_700_000_000,
    }
}

fn subscription_of(app_id: &str) -> Subscription {
    Subscription {
        app_id: app_id.into(),
        object_type: "user".into(),
        callback_url: format!("https://example.com/{app_id}"),
        verify_token: "token".into(),
        include_values: true,
        include_client_certificate: false,
        standard_webhooks: false,
        status: SubscriptionStatus::Active,
        fields: BTreeMap::from([("name".to_owned(), "v25.0".to_owned())]),
        failing_since: None,
    }
}
