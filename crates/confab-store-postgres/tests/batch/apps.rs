//! A batch's app rows and log: a batch of one app updates its app row and writes its events in
//! one statement, a batch of several apps updates their rows one statement each
//! (`stages::finish`). Either way each app's log must be numbered on its own, gapless and in
//! command order, with the counters a replay makes.

use super::*;
use confab_core::conformance::{app_with_users, snapshot};

/// The texts of an app's messages in its log, in offset order, after asserting that the
/// offsets run from 1 without a gap.
async fn logged_texts(store: &Arc<dyn Store>, app: AppId) -> Vec<String> {
    let log = store.events(app, Offset(0), 10_000).await.expect("events");
    let offsets: Vec<i64> = log.rows.iter().map(|e| e.offset.0).collect();
    assert_eq!(
        offsets,
        (1..=offsets.len() as i64).collect::<Vec<_>>(),
        "gapless offsets"
    );
    log.rows
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::MessagePosted { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_apps_log_is_gapless_in_batches_of_one_app_and_of_two() {
    let (store, db) = common::fresh().await;
    let a = app_with_users(&store, "logs-a", 4).await;
    let b = app_with_users(&store, "logs-b", 4).await;
    let ra = group_of_four(&store, a, "a", Visibility::Public).await;
    let rb = group_of_four(&store, b, "b", Visibility::Public).await;
    let last = |app, room| {
        let store = store.clone();
        async move {
            let r = store.access(app, room, None).await.expect("access");
            r.expect("room").room.last_seq.0
        }
    };
    let (next_a, next_b) = (last(a, ra).await + 1, last(b, rb).await + 1);

    // Two apps in one batch, interleaved, with a refusal in the middle.
    let two = in_one_batch(
        &db,
        &store,
        a,
        vec![
            /* 0 */ send(a, "u0", ra, "a1", None, Some("x")),
            /* 1 */ send(b, "u0", rb, "b1", None, Some("x")),
            /* 2 */ send(b, "u1", rb, "b2", Some(next_b), None),
            /* 3 */ send(a, "stranger", ra, "refused", None, None),
            /* 4 */ mark(a, "u1", ra, next_a),
            /* 5 */ send(a, "u2", ra, "a2", None, None),
            /* 6 */ mark(b, "u2", rb, next_b + 1),
        ],
    )
    .await;
    for (i, answer) in two.iter().enumerate() {
        if i == 3 {
            assert!(
                matches!(answer, Err(StoreError::Domain(_))),
                "refused: {answer:?}"
            );
        } else {
            assert!(answer.is_ok(), "command {i}: {answer:?}");
        }
    }
    assert_eq!(marker(&two[4]), next_a);
    // One app: read markers alone (no item to write), then sends with a repeated client id.
    let marks = in_one_batch(
        &db,
        &store,
        b,
        vec![mark(b, "u3", rb, next_b), mark(b, "u1", rb, next_b + 1)],
    )
    .await;
    assert_eq!(marker(&marks[1]), next_b + 1);
    let sends = in_one_batch(
        &db,
        &store,
        a,
        vec![
            send(a, "u3", ra, "a3", Some(next_a), None),
            send(a, "u0", ra, "a1", None, Some("x")),
        ],
    )
    .await;
    assert_eq!(item(&sends[0]).0.seq.0, next_a + 2);
    let (again, created) = item(&sends[1]);
    assert_eq!(
        (again.seq.0, created),
        (next_a, false),
        "the same client id"
    );

    assert_eq!(logged_texts(&store, a).await, ["a1", "a2", "a3"]);
    assert_eq!(logged_texts(&store, b).await, ["b1", "b2"]);
    assert_eq!(store.app_stats(a).await.expect("stats").messages_count, 3);
    assert_eq!(store.app_stats(b).await.expect("stats").messages_count, 2);

    // The counters and rows written live equal those of a replay, one event at a time.
    let tables = ["apps", "rooms", "members", "items"];
    let live = (
        snapshot(&store, a).await,
        snapshot(&store, b).await,
        rows_of(&db, &tables).await,
    );
    store.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    let rebuilt = (
        snapshot(&store, a).await,
        snapshot(&store, b).await,
        rows_of(&db, &tables).await,
    );
    assert_eq!(live, rebuilt);
}
