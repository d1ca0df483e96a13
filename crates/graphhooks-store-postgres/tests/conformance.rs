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
