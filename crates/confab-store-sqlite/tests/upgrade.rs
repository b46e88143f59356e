//! A database written by the previous schema version opens with this one and keeps working:
//! `fixtures/v2.db` was written by the server of schema version 2 (see `fixtures/README.md`).
//! Version 3 stopped indexing every event of the log by room and seq (a send no longer writes
//! to that index), so a deletion now finds the texts to redact in other ways; this checks that
//! messages posted and edited before the upgrade are still redacted completely.

use confab_core::command::{Command, Outcome};
use confab_core::command::{DeleteMessage, SendMessage};
use confab_core::event::EventBody;
use confab_core::ids::{AppId, Offset, RoomNumber, Seq, UserId};
use confab_core::model::{HistoryQuery, Item};
use confab_core::store::Store;
use confab_store_sqlite::{Options, SqliteStore};
use std::sync::Arc;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v2.db");

fn open_copy() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.db");
    std::fs::copy(FIXTURE, &path).expect("copy the fixture");
    let store = SqliteStore::open(&path, Options::default()).expect("open the old database");
    (store, dir)
}

fn user(name: &str) -> UserId {
    UserId(name.into())
}

async fn room(store: &SqliteStore, app: AppId, number: i64) -> Vec<Item> {
    let (items, before, after) = store
        .history(app, RoomNumber(number), HistoryQuery::Latest, 100)
        .await
        .expect("history");
    assert!(!before && !after);
    items
}

/// Every text the log still holds for `seq` of `room`: posted and edited events.
async fn logged_texts(store: &SqliteStore, app: AppId, number: i64, seq: i64) -> Vec<String> {
    let log = store.events(app, Offset(0), 1000).await.expect("events");
    assert!(!log.has_more);
    let mut texts = Vec::new();
    for ev in &log.rows {
        match &ev.body {
            EventBody::MessagePosted {
                room, seq: s, text, ..
            }
            | EventBody::MessageEdited {
                room, seq: s, text, ..
            } if room.0 == number && s.0 == seq => texts.push(text.clone()),
            _ => {}
        }
    }
    texts
}

#[tokio::test]
async fn a_version_2_database_upgrades_with_everything_in_place() {
    let (store, dir) = open_copy();
    let app = store
        .app_by_token("5b18hkryob")
        .await
        .expect("lookup")
        .expect("the fixture's app")
        .id;

    let items = room(&store, app, 1).await;
    let seqs: Vec<i64> = items.iter().map(|i| i.seq.0).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert_eq!(items[2].text.as_deref(), Some("first words, edited twice"));
    assert_eq!(items[2].reply_count, 1);
    assert_eq!(items[2].client_id.as_deref(), Some("a-1"));
    assert_eq!(items[3].reply_to, Some(Seq(3)));
    assert!(items[4].deleted && items[4].text.is_none());
    assert_eq!(logged_texts(&store, app, 1, 5).await, [""]);
    assert_eq!(
        logged_texts(&store, app, 1, 3).await,
        [
            "first words",
            "first words, edited",
            "first words, edited twice"
        ]
    );

    // A message posted and edited twice before the upgrade, and one never edited, deleted after
    // it: no text of either remains in the log.
    for (actor, seq) in [("alice", 3), ("bob", 6)] {
        store
            .execute(Command::Delete(DeleteMessage {
                app,
                actor: user(actor),
                room: RoomNumber(1),
                seq: Seq(seq),
            }))
            .await
            .expect("delete");
    }
    assert_eq!(logged_texts(&store, app, 1, 3).await, ["", "", ""]);
    assert_eq!(logged_texts(&store, app, 1, 6).await, [""]);
    // The others keep theirs.
    assert_eq!(logged_texts(&store, app, 1, 4).await, ["a reply"]);
    assert_eq!(logged_texts(&store, app, 2, 2).await, ["direct hello"]);

    // Numbering goes on where it stopped: room 1 had seq 6 and pos 10, the deletes took 11-12.
    let sent = store
        .execute(Command::Send(SendMessage {
            app,
            actor: Some(user("bob")),
            room: RoomNumber(1),
            text: "after the upgrade".into(),
            reply_to: None,
            client_id: None,
        }))
        .await
        .expect("send");
    let Outcome::Item { item, created } = sent else {
        panic!("a send answers its item: {sent:?}");
    };
    assert!(created);
    assert_eq!((item.seq.0, item.pos.0), (7, 13));

    // Deleting the new message redacts it too, and a replay gives back exactly the live state.
    store
        .execute(Command::Delete(DeleteMessage {
            app,
            actor: user("bob"),
            room: RoomNumber(1),
            seq: Seq(7),
        }))
        .await
        .expect("delete the new message");
    assert_eq!(logged_texts(&store, app, 1, 7).await, [""]);
    let live = (room(&store, app, 1).await, room(&store, app, 2).await);
    store.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    let replayed = (room(&store, app, 1).await, room(&store, app, 2).await);
    assert_eq!(live, replayed);

    // An existing database keeps the page size it was made with.
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("t.db")).expect("open the file");
    let page: i64 = conn
        .pragma_query_value(None, "page_size", |r| r.get(0))
        .expect("page size");
    assert_eq!(page, 4096);
}
