//! A database written by the previous schema version opens with this one and keeps working:
//! `fixtures/v2.db` was written by the server of schema version 2 (see `fixtures/README.md`).
//! Version 3 stopped indexing every event of the log by room and seq (a send no longer writes
//! to that index), so a deletion now finds the texts to redact in other ways; this checks that
//! messages posted and edited before the upgrade are still redacted completely. Version 4 added
//! meetups and polls, which an upgraded room plans like a new one.

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

/// The meetups migration runs on an old database: its rooms plan meetups and polls with their
/// numbering going on where it stopped, and a replay gives the new tables back.
#[tokio::test]
async fn an_upgraded_database_plans_meetups_and_polls() {
    use confab_core::command::{CreateMeetup, CreatePoll, Vote};
    use confab_core::ids::{MeetupNumber, PollNumber, Timestamp};
    use confab_core::meetups::{PollKind, Results};

    let (store, dir) = open_copy();
    let app = store
        .app_by_token("5b18hkryob")
        .await
        .expect("lookup")
        .expect("the fixture's app")
        .id;
    let at = Timestamp(Timestamp::now().0 + 7 * 86_400_000);
    let out = store
        .execute(Command::CreateMeetup(CreateMeetup {
            app,
            actor: user("alice"),
            room: RoomNumber(1),
            name: "Picnic".into(),
            location: "Park".into(),
            takes_place_on: at,
            image_url: None,
        }))
        .await
        .expect("create a meetup");
    assert_eq!(out, Outcome::Meetup(MeetupNumber(1)));
    let out = store
        .execute(Command::CreatePoll(CreatePoll {
            app,
            actor: user("alice"),
            room: RoomNumber(1),
            question: "Where?".into(),
            kind: PollKind::Relocate,
            choices: vec!["Park".into(), "Beach".into()],
            max_selections: 1,
            results: Results::Disclosed,
            closes_at: None,
            meetup: Some(MeetupNumber(1)),
        }))
        .await
        .expect("create a poll");
    assert_eq!(out, Outcome::Poll(PollNumber(1)));
    let alerts = store
        .alerts(app, &user("bob"), Timestamp::now(), None, 10)
        .await
        .expect("alerts");
    assert_eq!(alerts.rows.len(), 1);
    for who in ["alice", "bob"] {
        store
            .execute(Command::Vote(Vote {
                app,
                actor: user(who),
                room: RoomNumber(1),
                poll: PollNumber(1),
                choices: vec![1],
            }))
            .await
            .expect("vote");
    }

    // Room 1 had seq 6 and pos 10: the meetup and the poll announced seq 7 and 8, the votes
    // took positions, the closing and the move announced seq 9 and 10.
    let items = room(&store, app, 1).await;
    let announced: Vec<(i64, i64)> = items[6..].iter().map(|i| (i.seq.0, i.pos.0)).collect();
    assert_eq!(announced, [(7, 11), (8, 12), (9, 15), (10, 16)]);
    let moved = store
        .meetup(app, RoomNumber(1), MeetupNumber(1), &user("bob"))
        .await
        .expect("read")
        .expect("the meetup");
    assert_eq!(moved.meetup.location, "Beach");

    let live = (
        room(&store, app, 1).await,
        store
            .poll(app, RoomNumber(1), PollNumber(1), &user("bob"))
            .await
            .expect("read"),
    );
    store.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    let replayed = (
        room(&store, app, 1).await,
        store
            .poll(app, RoomNumber(1), PollNumber(1), &user("bob"))
            .await
            .expect("read"),
    );
    assert_eq!(live, replayed);

    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("t.db")).expect("open the file");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, 5);
}
