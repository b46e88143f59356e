//! Write leases on a real database, from two store instances (two nodes): a free lease is
//! claimed, a held one is refused to the other node and renewed for its holder, an expired one
//! is taken over, a released one is free at once. Each case gets its own database.

mod common;

use confab_core::ids::AppId;
use confab_core::store::{Lease, Store};
use std::time::{Duration, Instant};

async fn lease(store: &dyn Store, app: AppId, node: &str, ttl: Duration) -> Lease {
    store
        .write_lease(app, node, ttl)
        .await
        .expect("the lease query runs")
        .expect("PostgreSQL has leases")
}

#[tokio::test]
async fn a_lease_is_claimed_refused_while_held_renewed_and_taken_over_after_expiry() {
    let db = common::database().await;
    let (a, b) = tokio::join!(common::open(&db), common::open(&db));
    let (app, other_app) = (AppId(1), AppId(2));
    let long = Duration::from_secs(30);

    let first = lease(&*a, app, "node-a", long).await;
    assert_eq!(
        first.holder, "node-a",
        "a free lease goes to the first asker"
    );
    assert!(first.valid_for > Duration::from_secs(29) && first.valid_for <= long);

    let refused = lease(&*b, app, "node-b", long).await;
    assert_eq!(
        refused.holder, "node-a",
        "a held lease stays with its holder"
    );
    assert!(refused.valid_for > Duration::ZERO && refused.valid_for <= long);

    // Leases are per app.
    assert_eq!(lease(&*b, other_app, "node-b", long).await.holder, "node-b");

    // Renewing moves the expiry: a renewal for 60 s leaves more than the first 30.
    let renewed = lease(&*a, app, "node-a", Duration::from_secs(60)).await;
    assert_eq!(renewed.holder, "node-a");
    assert!(renewed.valid_for > long, "renewed: {renewed:?}");

    // A short renewal, then node b asks until the lease has expired and it takes it over.
    let short = lease(&*a, app, "node-a", Duration::from_millis(300)).await;
    assert_eq!(short.holder, "node-a");
    let deadline = Instant::now() + Duration::from_secs(10);
    let taken = loop {
        let l = lease(&*b, app, "node-b", long).await;
        if l.holder == "node-b" {
            break l;
        }
        assert!(Instant::now() < deadline, "never taken over: {l:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(taken.valid_for > Duration::from_secs(29));
    // Now node a is the one refused.
    assert_eq!(lease(&*a, app, "node-a", long).await.holder, "node-b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_racing_for_a_free_lease_all_see_one_holder() {
    let db = common::database().await;
    let (a, b) = tokio::join!(common::open(&db), common::open(&db));
    for app in 1..=20 {
        let app = AppId(app);
        let mut asks = Vec::new();
        for k in 0..6 {
            let store = if k % 2 == 0 { a.clone() } else { b.clone() };
            asks.push(tokio::spawn(async move {
                lease(&*store, app, &format!("node-{k}"), Duration::from_secs(30)).await
            }));
        }
        let mut holders = std::collections::HashSet::new();
        for ask in asks {
            holders.insert(ask.await.expect("task").holder);
        }
        assert_eq!(holders.len(), 1, "app {app:?}: {holders:?}");
    }
}

#[tokio::test]
async fn released_leases_are_free_at_once_and_only_the_releasers() {
    let db = common::database().await;
    let (a, b) = tokio::join!(common::open(&db), common::open(&db));
    let long = Duration::from_secs(600);
    for app in [AppId(1), AppId(2)] {
        assert_eq!(lease(&*a, app, "node-a", long).await.holder, "node-a");
    }
    assert_eq!(lease(&*b, AppId(3), "node-b", long).await.holder, "node-b");
    assert_eq!(lease(&*b, AppId(1), "node-b", long).await.holder, "node-a");

    assert_eq!(a.release_leases("node-a").await.expect("released"), 2);
    assert_eq!(a.release_leases("node-a").await.expect("released"), 0);
    // Long before the ten minutes are up, node b takes both; its own lease stayed.
    for app in [AppId(1), AppId(2)] {
        assert_eq!(lease(&*b, app, "node-b", long).await.holder, "node-b");
    }
    let kept = lease(&*a, AppId(3), "node-a", long).await;
    assert_eq!(
        kept.holder, "node-b",
        "another node's lease is not released"
    );
}
