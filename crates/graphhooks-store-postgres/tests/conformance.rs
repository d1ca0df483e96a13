//! The shared store conformance suite on PostgreSQL, one throwaway database per test.

use std::sync::Arc;

use graphhooks_store::conformance::Fixture;
use graphhooks_store_postgres::testing::TestDatabase;
use graphhooks_store_postgres::{PostgresOptions, PostgresStore};

async fn postgres() -> Fixture {
    let database = TestDatabase::create().await;
    let options = PostgresOptions {
        pool_size: 4,
        ..PostgresOptions::default()
    };
    let store = PostgresStore::open(&database.url, options)
        .await
        .expect("open PostgreSQL");
    Fixture {
        store: Arc::new(store),
        guard: Box::new(database),
    }
}

graphhooks_store::store_conformance!(postgres);

/// PostgreSQL claims a round's new work as it writes it, in lanes the node owns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_hands_over_into_an_empty_lane() {
    let fixture = postgres().await;
    graphhooks_store::conformance::fan_out_hands_over_into_an_empty_lane(fixture.store.clone())
        .await;
}
