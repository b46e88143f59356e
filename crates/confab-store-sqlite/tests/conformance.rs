//! Runs the store conformance suite against SQLite files in temp dirs.

use confab_core::store::Store;
use confab_store_sqlite::{Options, SqliteStore};
use std::sync::Arc;

async fn fresh() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        SqliteStore::open(&dir.path().join("t.db"), Options::default()).expect("open store");
    (Arc::new(store), dir)
}

confab_core::conformance_tests!(fresh());
