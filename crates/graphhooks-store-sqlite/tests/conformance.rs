//! The shared store conformance suite on SQLite, one temporary database file per test.

use std::sync::Arc;

use graphhooks_store::conformance::Fixture;
use graphhooks_store_sqlite::{SqliteOptions, SqliteStore};

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("conformance.db"), SqliteOptions::default())
        .expect("open SQLite");
    Fixture {
        store: Arc::new(store),
        guard: Box::new(dir),
    }
}

graphhooks_store::store_conformance!(sqlite);

/// SQLite claims a round's new work as it writes it (the engine's handover).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_hands_over_into_an_empty_lane() {
    let fixture = sqlite().await;
    graphhooks_store::conformance::fan_out_hands_over_into_an_empty_lane(fixture.store.clone())
        .await;
}
