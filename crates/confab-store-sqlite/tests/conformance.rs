//! Runs the store conformance suite against SQLite files in temp dirs: once as configured by
//! default, and twice more with search tuned so that every search takes one particular path
//! (see `search.rs`): the suite's small data would otherwise be served by the first pass alone.

use confab_core::store::Store;
use confab_store_sqlite::{Options, SearchTuning, SqliteStore};
use std::sync::Arc;

async fn fresh_with(search: SearchTuning) -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = Options {
        search,
        ..Options::default()
    };
    let store = SqliteStore::open(&dir.path().join("t.db"), options).expect("open store");
    (Arc::new(store), dir)
}

async fn fresh() -> (Arc<dyn Store>, tempfile::TempDir) {
    fresh_with(SearchTuning::default()).await
}

confab_core::conformance_tests!(fresh());

/// No first pass; candidates from one query over the whole index.
mod whole_index {
    use super::*;
    confab_core::conformance_tests!(fresh_with(SearchTuning {
        scan_budget: 0,
        global_cap: usize::MAX,
    }));
}

/// No first pass; each room's part of the index, room after room.
mod per_room {
    use super::*;
    confab_core::conformance_tests!(fresh_with(SearchTuning {
        scan_budget: 0,
        global_cap: 0,
    }));
}
