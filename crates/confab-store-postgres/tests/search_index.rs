//! Search stays exact whatever the search indexer's lag: with no indexer at all, with an index
//! left behind by edits, deletions and new messages, after a rebuild empties it, and once an
//! indexer has caught up again (its rows then equal the items' folded texts).

mod common;

use confab_core::command::{
    Command, CreateGroup, DeleteMessage, EditMessage, Outcome, SendMessage,
};
use confab_core::conformance::{app_with_users, search_all};
use confab_core::ids::{AppId, RoomNumber, Seq, UserId};
use confab_core::model::Visibility;
use confab_core::search::Scope;
use confab_core::store::Store;
use confab_store_postgres::{Options, PgStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn user(s: &str) -> UserId {
    UserId(s.to_owned())
}

async fn open(db: &common::Db, search_index: bool) -> Arc<dyn Store> {
    let options = Options {
        search_index,
        ..Options::default()
    };
    Arc::new(PgStore::open(&db.url, options).await.expect("open"))
}

async fn sql(db: &common::Db) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

async fn group(store: &Arc<dyn Store>, app: AppId, members: &[&str]) -> RoomNumber {
    let out = store
        .execute(Command::CreateGroup(CreateGroup {
            app,
            actor: Some(user("u0")),
            name: Some("room".into()),
            image_url: None,
            visibility: Visibility::Private,
            alias: None,
            members: members.iter().map(|m| user(m)).collect(),
        }))
        .await
        .expect("create group");
    match out {
        Outcome::Room { room, .. } => room.number,
        other => panic!("expected a room, got {other:?}"),
    }
}

async fn send(store: &Arc<dyn Store>, app: AppId, room: RoomNumber, text: &str) -> Seq {
    let out = store
        .execute(Command::Send(SendMessage {
            app,
            actor: Some(user("u0")),
            room,
            text: text.into(),
            reply_to: None,
            client_id: None,
        }))
        .await
        .expect("send");
    match out {
        Outcome::Item { item, .. } => item.seq,
        other => panic!("expected an item, got {other:?}"),
    }
}

async fn edit(store: &Arc<dyn Store>, app: AppId, room: RoomNumber, seq: Seq, text: &str) {
    store
        .execute(Command::Edit(EditMessage {
            app,
            actor: user("u0"),
            room,
            seq,
            text: text.into(),
        }))
        .await
        .expect("edit");
}

/// The texts found, newest first, in the user's rooms and in `room`.
async fn found(store: &Arc<dyn Store>, app: AppId, room: RoomNumber, q: &str) -> Vec<String> {
    let texts = |hits: Vec<confab_core::search::Hit>| -> Vec<String> {
        hits.into_iter()
            .map(|h| h.item.text.unwrap_or_default())
            .collect()
    };
    let joined = texts(search_all(store, app, Scope::Joined(user("u0")), q).await);
    let in_room = texts(search_all(store, app, Scope::Room(room), q).await);
    let expected_in_room: Vec<String> = joined
        .iter()
        .filter(|t| !t.contains("elsewhere"))
        .cloned()
        .collect();
    assert_eq!(in_room, expected_in_room, "room search for {q:?}");
    joined
}

/// What every search must answer after the writes below, whatever the index holds.
async fn assert_exact(store: &Arc<dyn Store>, app: AppId, room: RoomNumber) {
    assert_eq!(
        found(store, app, room, "alpha").await,
        ["alpha juliet", "alpha golf lima elsewhere"]
    );
    // The edited message is found by its new text only; the deleted one not at all.
    assert!(found(store, app, room, "bravo").await.is_empty());
    assert_eq!(found(store, app, room, "hotel").await, ["hotel india"]);
    assert!(found(store, app, room, "charlie").await.is_empty());
    assert_eq!(
        found(store, app, room, "lima").await,
        ["alpha golf lima elsewhere"]
    );
    assert_eq!(found(store, app, room, "echo").await, ["echo kilo"]);
    assert_eq!(found(store, app, room, "ki").await, ["echo kilo"]);
    assert_eq!(found(store, app, room, "filler").await.len(), 120);
}

async fn mark(db: &common::Db, app: AppId) -> i64 {
    sql(db)
        .await
        .query_one(
            "SELECT COALESCE((SELECT last_offset FROM search_marks WHERE app_id = $1), 0)",
            &[&app.0],
        )
        .await
        .expect("mark")
        .get(0)
}

/// Rows of `search_items` that differ from the items' folded texts, both ways.
async fn index_differences(db: &common::Db) -> i64 {
    sql(db)
        .await
        .query_one(
            "SELECT COUNT(*) FROM (
                 (SELECT app_id, room_no, seq, folded FROM items WHERE folded IS NOT NULL
                  EXCEPT SELECT app_id, room_no, seq, folded FROM search_items)
                 UNION ALL
                 (SELECT app_id, room_no, seq, folded FROM search_items
                  EXCEPT SELECT app_id, room_no, seq, folded FROM items WHERE folded IS NOT NULL)
             ) d",
            &[],
        )
        .await
        .expect("differences")
        .get(0)
}

/// Waits until no indexer of a closed store is still connected to the database.
async fn indexers_gone(db: &common::Db) {
    let client = sql(db).await;
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'confab-indexer'",
                &[],
            )
            .await
            .expect("activity")
            .get(0);
        if n == 0 {
            return;
        }
        assert!(Instant::now() < until, "the indexer outlived its store");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_is_exact_whatever_the_indexer_lag() {
    let db = common::database().await;

    // Indexed: more than a window of items in the room, so that searches over the user's
    // rooms ask the index too.
    let a = open(&db, true).await;
    let app = app_with_users(&a, "lag", 2).await;
    let room = group(&a, app, &["u1"]).await;
    let other = group(&a, app, &[]).await;
    for i in 0..120 {
        send(&a, app, room, &format!("filler {i}")).await;
    }
    let m1 = send(&a, app, room, "alpha bravo").await;
    let m2 = send(&a, app, room, "charlie delta").await;
    let m3 = send(&a, app, room, "echo foxtrot").await;
    let m4 = send(&a, app, other, "alpha golf elsewhere").await;
    a.settle().await.expect("settle");
    assert_eq!(index_differences(&db).await, 0, "the indexer caught up");
    let indexed = mark(&db, app).await;
    assert!(indexed > 120);
    drop(a);
    indexers_gone(&db).await;

    // No indexer: the index is left behind by an edit, a deletion and new messages.
    let b = open(&db, false).await;
    edit(&b, app, room, m1, "hotel india").await;
    b.execute(Command::Delete(DeleteMessage {
        app,
        actor: user("u0"),
        room,
        seq: m2,
    }))
    .await
    .expect("delete");
    edit(&b, app, room, m3, "echo kilo").await;
    edit(&b, app, other, m4, "alpha golf lima elsewhere").await;
    send(&b, app, room, "alpha juliet").await;
    assert_exact(&b, app, room).await;
    assert_eq!(mark(&db, app).await, indexed, "nothing indexed meanwhile");
    assert!(index_differences(&db).await > 0, "the index is behind");

    // A rebuild empties the index: everything is read from the log.
    b.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    assert_eq!(mark(&db, app).await, 0);
    assert_exact(&b, app, room).await;
    drop(b);

    // An indexer catches up from nothing; the answers stay the same.
    let c = open(&db, true).await;
    c.settle().await.expect("settle");
    assert_eq!(index_differences(&db).await, 0, "the indexer caught up");
    assert_exact(&c, app, room).await;
}

/// The conformance search cases with no indexer at all: every message is read from the log.
mod without_indexer {
    use super::*;

    async fn fresh() -> (Arc<dyn Store>, common::Db) {
        let db = common::database().await;
        let store = open(&db, false).await;
        (store, db)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn search_follows_writes() {
        let (store, _db) = fresh().await;
        confab_core::conformance::search_follows_writes(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn search_pages_newest_first() {
        let (store, _db) = fresh().await;
        confab_core::conformance::search_pages_newest_first(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn search_among_many() {
        let (store, _db) = fresh().await;
        confab_core::conformance::search_among_many(store).await;
    }
}
