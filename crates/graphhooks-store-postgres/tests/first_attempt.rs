//! A delivery's first attempt is kept in its row (migration 0002); a database from before it
//! keeps first attempts in `attempts`, and both are read.

use std::sync::Arc;

use graphhooks_core::model::Attempt;
use graphhooks_store::{AttemptOutcome, NextStep, Store, SubscriptionKey};
use graphhooks_store_postgres::testing::TestDatabase;
use graphhooks_store_postgres::{PostgresOptions, PostgresStore};

fn attempt(number: u32, time_ms: i64, status: u16) -> Attempt {
    Attempt {
        number,
        time_ms,
        status: Some(status),
        error: None,
        latency_ms: 3,
        response: Some(format!("status {status}")),
    }
}

/// A first attempt stored the old way (in `attempts`) is read from there; one recorded now goes
/// into the delivery's row and later ones into `attempts`; each shows once, in order, in the
/// log and in the apps' stats.
#[tokio::test]
async fn first_attempts_are_read_from_the_row_and_from_before_it() {
    let database = TestDatabase::create().await;
    let options = PostgresOptions {
        pool_size: 2,
        listen: false,
        ..PostgresOptions::default()
    };
    let store = PostgresStore::open(&database.url, options)
        .await
        .expect("open PostgreSQL");
    let pool = sqlx::PgPool::connect(&database.url).await.expect("a pool");
    for statement in [
        "INSERT INTO apps (id, name, mode, secret, created_time) VALUES ('1', 'a', 'live', 's', 0)",
        "INSERT INTO deliveries (id, app_id, object_type, state, created_time, body, change_ids,
                                 object_ids, test, due_ms, attempt_count, first_attempt_ms)
         VALUES (1, '1', 'user', 'delivered', 7, '{}', '{1}', '{}', false, 5, 1, 100),
                (2, '1', 'user', 'pending', 7, '{}', '{2}', '{}', false, 5, 0, NULL),
                (3, '1', 'user', 'pending', 7, '{}', '{3}', '{}', false, 5, 1, 150)",
        // Deliveries 1 and 3 have a first attempt as a database from before migration 0002
        // holds it; delivery 3's is sent again below (its claim was released before the
        // outcome was written).
        "INSERT INTO attempts (delivery_id, number, time_ms, status, error, latency_ms, response)
         VALUES (1, 1, 100, 200, NULL, 3, 'status 200'), (3, 1, 150, 500, NULL, 3, 'status 500')",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect("seed the database");
    }
    let key = SubscriptionKey {
        app_id: "1".into(),
        object_type: "user".into(),
    };
    let outcome = |delivery_id, number, time_ms, status, next| AttemptOutcome {
        delivery_id,
        key: key.clone(),
        attempt: Some(attempt(number, time_ms, status)),
        next,
    };
    store
        .record_outcomes(Arc::from(vec![outcome(
            2,
            1,
            200,
            500,
            NextStep::RetryAt(250),
        )]))
        .await
        .expect("record the first attempt");
    store
        .record_outcomes(Arc::from(vec![
            outcome(2, 2, 300, 200, NextStep::Delivered),
            outcome(3, 1, 400, 200, NextStep::Delivered),
        ]))
        .await
        .expect("record the second attempt and a resent first one");

    let old = store.delivery(1).await.expect("read").expect("delivery 1");
    assert_eq!(old.attempts, vec![attempt(1, 100, 200)]);
    let new = store.delivery(2).await.expect("read").expect("delivery 2");
    assert_eq!(
        new.attempts,
        vec![attempt(1, 200, 500), attempt(2, 300, 200)]
    );
    let in_table: i64 = sqlx::query_scalar("SELECT count(*) FROM attempts WHERE delivery_id = 2")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(in_table, 1, "only the second attempt has a row of its own");
    let resent = store.delivery(3).await.expect("read").expect("delivery 3");
    assert_eq!(
        resent.attempts,
        vec![attempt(1, 400, 200)],
        "the later of the two first attempts, once"
    );

    let stats = store.app_stats(0).await.expect("stats");
    assert_eq!(
        (stats[0].attempts_ok, stats[0].attempts_failed),
        (3, 1),
        "each attempt counted once, as the log shows it: {stats:?}"
    );
    let recent = store.app_stats(250).await.expect("stats");
    assert_eq!((recent[0].attempts_ok, recent[0].attempts_failed), (2, 0));

    store.close().await;
    pool.close().await;
}
