//! Many commands in one write transaction: sends are projected in memory and written together
//! at the end, so later commands of a batch must still see what earlier ones did (a client id
//! just used, a reply count, an edit), and the rows written together must equal what a replay
//! writes one event at a time.
//!
//! Memberships and rooms made in a batch: `memberships`.
//!
//! To get a known batch, the test holds the lock every write transaction takes first (the
//! rebuild lock, taken shared by writers) from a connection of its own: the writer takes one
//! command and waits on it; the commands sent meanwhile queue up and become the next batch.

mod apps;
#[path = "../common/mod.rs"]
mod common;
mod meetups;
mod memberships;
mod plans;

use confab_core::command::{
    CancelMeetup, CreateGroup, CreateMeetup, CreatePoll, Decide, DeleteMessage, EditMessage,
    MarkRead, SendMessage, SetRsvp, UpdateProfile, Vote,
};
use confab_core::command::{Command, Decision, Outcome};
use confab_core::error::{ErrorCode, StoreError};
use confab_core::event::EventBody;
use confab_core::ids::{
    AppId, MeetupNumber, Offset, PollNumber, Pos, RoomNumber, Seq, Timestamp, UserId,
};
use confab_core::meetups::{CloseReason, PollKind, PollOutcome, Results, Rsvp, RsvpCounts};
use confab_core::model::{HistoryQuery, Item, ItemKind, Visibility};
use confab_core::search::Scope;
use confab_core::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The advisory lock every write transaction takes shared first (`schema::LOCK_CLASS`,
/// `schema::LOCK_REBUILD`).
const REBUILD_LOCK: (i32, i32) = (0x6366_6200, 1);

fn user(s: &str) -> UserId {
    UserId(s.to_owned())
}

type Answer = Result<Outcome, StoreError>;

/// Runs `cmds` as one batch of the store's writer, in this order; returns their answers.
async fn in_one_batch(
    db: &common::Db,
    store: &Arc<dyn Store>,
    app: AppId,
    cmds: Vec<Command>,
) -> Vec<Answer> {
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let conn = tokio::spawn(conn);
    client
        .execute(
            "SELECT pg_advisory_lock($1, $2)",
            &[&REBUILD_LOCK.0, &REBUILD_LOCK.1],
        )
        .await
        .expect("lock");
    // A command of its own that the writer takes and then waits with.
    let plug = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .execute(Command::UpdateProfile(UpdateProfile {
                    app,
                    user: user("u3"),
                    name: Some("plug".into()),
                    image_url: None,
                }))
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                   AND database = (SELECT oid FROM pg_database
                                   WHERE datname = current_database())",
                &[],
            )
            .await
            .expect("pg_locks")
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the writer never waited on the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // `join!` polls the sends first: every command is queued before the lock is let go.
    let (answers, unlocked) = tokio::join!(
        futures_util::future::join_all(cmds.into_iter().map(|c| store.execute(c))),
        client.execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&REBUILD_LOCK.0, &REBUILD_LOCK.1]
        )
    );
    unlocked.expect("unlock");
    plug.await.expect("plug task").expect("plug command");
    drop(client);
    let _ = conn.await;
    answers
}

fn send(
    app: AppId,
    who: &str,
    room: RoomNumber,
    text: &str,
    reply_to: Option<i64>,
    cid: Option<&str>,
) -> Command {
    Command::Send(SendMessage {
        app,
        actor: Some(user(who)),
        room,
        text: text.into(),
        reply_to: reply_to.map(Seq),
        client_id: cid.map(str::to_owned),
    })
}

/// A group room of u0 (its owner) with u1, u2 and u3 joined.
async fn group_of_four(
    store: &Arc<dyn Store>,
    app: AppId,
    name: &str,
    visibility: Visibility,
) -> RoomNumber {
    match store
        .execute(Command::CreateGroup(CreateGroup {
            app,
            actor: Some(user("u0")),
            name: Some(name.into()),
            image_url: None,
            visibility,
            alias: None,
            members: vec![user("u1"), user("u2"), user("u3")],
        }))
        .await
        .expect("group")
    {
        Outcome::Room { room, .. } => room.number,
        other => panic!("expected a room, got {other:?}"),
    }
}

fn item(a: &Answer) -> (Item, bool) {
    match a {
        Ok(Outcome::Item { item, created }) => (item.clone(), *created),
        other => panic!("expected an item, got {other:?}"),
    }
}

fn refused(a: &Answer) -> ErrorCode {
    match a {
        Err(StoreError::Domain(d)) => d.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn later_commands_of_a_batch_see_what_earlier_ones_did() {
    let (store, db) = common::fresh().await;
    let app = confab_core::conformance::app_with_users(&store, "b", 4).await;
    let room = group_of_four(&store, app, "room", Visibility::Public).await;
    // Stored before the batch: a message with a client id, and one to reply to.
    let (old, _) = item(&Ok(store
        .execute(send(app, "u0", room, "old", None, Some("old")))
        .await
        .expect("old")));
    let (stored, _) = item(&Ok(store
        .execute(send(app, "u1", room, "stored", None, None))
        .await
        .expect("stored")));

    let a = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room");
    let next = a.room.last_seq.0 + 1;
    let answers = in_one_batch(
        &db,
        &store,
        app,
        vec![
            /* 0 */ send(app, "u0", room, "hello", None, Some("c1")),
            /* 1 */ send(app, "u0", room, "hello", None, Some("c1")),
            /* 2 */ send(app, "u0", room, "other", None, Some("c1")),
            /* 3 */ send(app, "u0", room, "old", None, Some("old")),
            /* 4 */ send(app, "u1", room, "re hello", Some(next), None),
            /* 5 */ send(app, "u1", room, "re stored", Some(stored.seq.0), None),
            /* 6 */ send(app, "u0", room, "hello", None, Some("c1")),
            /* 7 */
            Command::Edit(EditMessage {
                app,
                actor: user("u0"),
                room,
                seq: Seq(next),
                text: "hello, edited".into(),
            }),
            /* 8 */ send(app, "u0", room, "hello", None, Some("c1")),
            /* 9 */ send(app, "u2", room, "bye", None, Some("c2")),
            /* 10 */
            Command::Decide(Decide {
                app,
                actor: user("u0"),
                room,
                target: user("u2"),
                decision: Decision::Kick,
            }),
            /* 11 */ send(app, "u2", room, "after the kick", None, None),
            /* 12 */ send(app, "u1", room, "re hello again", Some(next), None),
            /* 13 */
            Command::MarkRead(MarkRead {
                app,
                actor: user("u1"),
                room,
                seq: Seq(next + 3),
            }),
        ],
    )
    .await;

    let (first, created) = item(&answers[0]);
    assert!(created);
    assert_eq!(first.seq.0, next);
    let (again, created) = item(&answers[1]);
    assert!(
        !created,
        "a retry in the same batch returns the item sent just before"
    );
    assert_eq!(again.seq, first.seq);
    assert_eq!(refused(&answers[2]), ErrorCode::ClientIdReused);
    let (dup_old, created) = item(&answers[3]);
    assert!(!created, "a client id stored before the batch is found");
    assert_eq!(dup_old.seq, old.seq);
    let (reply, created) = item(&answers[4]);
    assert!(created, "a reply to a message sent earlier in the batch");
    assert_eq!(reply.reply_to, Some(first.seq));
    item(&answers[5]);
    let (later, created) = item(&answers[6]);
    assert!(!created);
    assert_eq!(
        later.reply_count, 1,
        "the retry sees the reply sent after its item"
    );
    assert!(
        matches!(answers[7], Ok(Outcome::Item { .. })),
        "{:?}",
        answers[7]
    );
    assert_eq!(
        refused(&answers[8]),
        ErrorCode::ClientIdReused,
        "the retry after the edit sees the edited text"
    );
    item(&answers[9]);
    assert!(
        matches!(answers[10], Ok(Outcome::Member(_))),
        "{:?}",
        answers[10]
    );
    assert_eq!(refused(&answers[11]), ErrorCode::NotAMember);
    item(&answers[12]);
    assert!(
        matches!(answers[13], Ok(Outcome::ReadMarker(_))),
        "{:?}",
        answers[13]
    );

    // What was written, read back.
    let (items, _, _) = store
        .history(app, room, HistoryQuery::Latest, 100)
        .await
        .expect("history");
    let at = |seq: Seq| items.iter().find(|i| i.seq == seq).expect("item").clone();
    let batch: Vec<&Item> = items.iter().filter(|i| i.seq.0 >= next).collect();
    assert!(
        batch.iter().all(|i| i.created_at == first.created_at),
        "the commands ran in one transaction: {batch:?}"
    );
    let hello = at(first.seq);
    assert_eq!(hello.reply_count, 2);
    assert_eq!(hello.text.as_deref(), Some("hello, edited"));
    assert_eq!(at(stored.seq).reply_count, 1);
    let last = items.last().expect("items");
    let a = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room");
    assert_eq!(a.room.last_seq, last.seq);
    // Sends: 2 before, then 0, 4, 5, 9, 12 in the batch.
    assert_eq!(a.room.messages_count, 7);
    assert_eq!(store.app_stats(app).await.expect("stats").messages_count, 7);
    let seqs: Vec<i64> = items.iter().map(|i| i.seq.0).collect();
    assert_eq!(seqs, (1..=last.seq.0).collect::<Vec<_>>(), "gapless seqs");

    // The rows written together equal a replay of the log one event at a time.
    let live = confab_core::conformance::snapshot(&store, app).await;
    store.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    let rebuilt = confab_core::conformance::snapshot(&store, app).await;
    assert_eq!(live, rebuilt);
}

/// Every row of the gathering tables and of the rooms, memberships and timeline, sorted.
async fn dump(db: &common::Db) -> Vec<String> {
    rows_of(
        db,
        &[
            "meetups",
            "rsvps",
            "polls",
            "poll_voters",
            "alerts",
            "rooms",
            "members",
            "items",
        ],
    )
    .await
}

fn vote(app: AppId, who: &str, room: RoomNumber, poll: i64, choices: &[u32]) -> Command {
    Command::Vote(Vote {
        app,
        actor: user(who),
        room,
        poll: PollNumber(poll),
        choices: choices.to_vec(),
    })
}

fn rsvp(app: AppId, who: &str, room: RoomNumber, meetup: i64, rsvp: Rsvp) -> Command {
    Command::SetRsvp(SetRsvp {
        app,
        actor: user(who),
        room,
        meetup: MeetupNumber(meetup),
        rsvp,
    })
}

fn meetup(app: AppId, who: &str, room: RoomNumber, name: &str, at: Timestamp) -> Command {
    Command::CreateMeetup(CreateMeetup {
        app,
        actor: user(who),
        room,
        name: name.into(),
        location: "Cafe".into(),
        takes_place_on: at,
        image_url: None,
    })
}

fn poll(app: AppId, who: &str, room: RoomNumber, kind: PollKind, choices: &[&str]) -> Command {
    Command::CreatePoll(CreatePoll {
        app,
        actor: user(who),
        room,
        question: "where?".into(),
        kind,
        choices: choices.iter().map(|c| c.to_string()).collect(),
        max_selections: 1,
        results: Results::Undisclosed,
        closes_at: None,
        meetup: Some(MeetupNumber(1)),
    })
}

/// Meetup and poll events are projected one statement at a time between buffered sends, and
/// a command may append several (the last vote closes its poll and moves its meetup; a
/// cancellation closes the meetup's polls), reading the room back between them: in one
/// transaction the room must stay gapless and every read must see the writes before it. A
/// rebuild then empties the gathering tables and gives them back row for row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gatherings_between_sends_in_one_batch_keep_the_room_gapless() {
    let (store, db) = common::fresh().await;
    let app = confab_core::conformance::app_with_users(&store, "g", 4).await;
    let room = group_of_four(&store, app, "plans", Visibility::Private).await;
    let soon = Timestamp(Timestamp::now().0 + 10 * 86_400_000);
    let run = async |cmd: Command| store.execute(cmd).await.expect("accepted");
    run(meetup(app, "u0", room, "Dinner", soon)).await;
    // u2 declines, so u0, u1 and u3 vote where to go.
    run(rsvp(app, "u2", room, 1, Rsvp::No)).await;
    run(poll(app, "u0", room, PollKind::Relocate, &["Cafe", "Park"])).await;
    let t1 = Timestamp(soon.0 + 86_400_000).to_rfc3339();
    let t2 = Timestamp(soon.0 + 2 * 86_400_000).to_rfc3339();

    let answers = in_one_batch(
        &db,
        &store,
        app,
        vec![
            /* 0 */ send(app, "u1", room, "a", None, None),
            /* 1 */ rsvp(app, "u1", room, 1, Rsvp::Maybe),
            /* 2 */ vote(app, "u0", room, 1, &[1]),
            /* 3 */ vote(app, "u1", room, 1, &[1]),
            /* 4 */ send(app, "u3", room, "b", None, None),
            /* 5 */ meetup(app, "u1", room, "Walk", soon),
            /* 6 */ vote(app, "u3", room, 1, &[0]),
            /* 7 */ send(app, "u0", room, "c", None, None),
            /* 8 */
            Command::CreatePoll(CreatePoll {
                meetup: Some(MeetupNumber(2)),
                ..match poll(app, "u1", room, PollKind::Reschedule, &[&t1, &t2]) {
                    Command::CreatePoll(p) => p,
                    _ => unreachable!("a poll"),
                }
            }),
            /* 9 */ vote(app, "u2", room, 2, &[0]),
            /* 10 */ vote(app, "u2", room, 2, &[]),
            /* 11 */ vote(app, "u2", room, 1, &[0]),
            /* 12 */
            Command::CancelMeetup(CancelMeetup {
                app,
                actor: user("u1"),
                room,
                meetup: MeetupNumber(2),
            }),
            /* 13 */ send(app, "u2", room, "d", None, None),
            /* 14 */ rsvp(app, "u3", room, 1, Rsvp::No),
        ],
    )
    .await;
    for (i, a) in answers.iter().enumerate() {
        if i == 11 {
            assert_eq!(refused(a), ErrorCode::PollClosed, "the last vote closed it");
        } else {
            assert!(a.is_ok(), "command {i}: {a:?}");
        }
    }

    let access = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room");
    gapless_changes(&store, app, room, access.room.last_pos).await;
    let (items, _, _) = store
        .history(app, room, HistoryQuery::Latest, 1000)
        .await
        .expect("history");
    let seqs: Vec<i64> = items.iter().map(|i| i.seq.0).collect();
    assert_eq!(seqs, (1..=access.room.last_seq.0).collect::<Vec<_>>());
    let sends: Vec<&Item> = items
        .iter()
        .filter(|i| i.kind == ItemKind::Message)
        .collect();
    assert_eq!(sends.len(), 4);
    assert!(
        sends.iter().all(|i| i.created_at == sends[0].created_at),
        "the commands ran in one transaction: {sends:?}"
    );

    // The last vote closed poll 1 and moved the meetup; the cancellation closed poll 2.
    let p1 = store
        .poll(app, room, PollNumber(1), &user("u0"))
        .await
        .expect("poll")
        .expect("poll 1");
    let closed = p1.poll.closed.expect("closed");
    assert_eq!(
        (closed.reason, closed.outcome, closed.winner),
        (CloseReason::AllVoted, PollOutcome::Decided, Some(1))
    );
    assert_eq!(p1.poll.tallies, [1, 2]);
    let p2 = store
        .poll(app, room, PollNumber(2), &user("u2"))
        .await
        .expect("poll")
        .expect("poll 2");
    let closed = p2.poll.closed.expect("closed");
    assert_eq!(
        (closed.reason, closed.outcome),
        (CloseReason::MeetupCancelled, PollOutcome::NoVotes)
    );
    assert_eq!(p2.my_vote.as_deref(), Some(&[][..]));
    let m1 = store
        .meetup(app, room, MeetupNumber(1), &user("u1"))
        .await
        .expect("meetup")
        .expect("meetup 1");
    assert_eq!(
        (m1.meetup.location.as_str(), m1.rsvp),
        ("Park", Rsvp::Maybe)
    );
    assert_eq!(
        m1.counts,
        RsvpCounts {
            yes: 1,
            no: 2,
            maybe: 1,
            none: 0
        }
    );
    for who in ["u0", "u1", "u2", "u3"] {
        let alerts = store
            .alerts(app, &user(who), Timestamp::now(), None, 10)
            .await
            .expect("alerts");
        assert!(alerts.rows.is_empty(), "{who}: {:?}", alerts.rows);
    }

    // Rows no event explains are gone after a rebuild; every other row comes back the same.
    let live = dump(&db).await;
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let conn = tokio::spawn(conn);
    client
        .batch_execute(
            "INSERT INTO meetups (app_id, room_no, number, name, location, takes_place_on,
                 organizer, created_at, updated_at) VALUES (1, 99, 1, 'x', 'y', 0, 'u4', 0, 0);
             INSERT INTO rsvps VALUES (1, 99, 1, 'u4', 'yes');
             INSERT INTO polls (app_id, room_no, number, question, kind, choices,
                 max_selections, results, creator, created_at, voters_count, tallies)
                 VALUES (1, 99, 1, 'q', 'generic', '{a,b}', 1, 'disclosed', 'u4', 0, 1, '{0,0}');
             INSERT INTO poll_voters (app_id, room_no, poll_no, user_id) VALUES (1, 99, 1, 'u4');
             INSERT INTO alerts VALUES (1, 'u4', 99, 1);",
        )
        .await
        .expect("stray rows");
    drop(client);
    let _ = conn.await;
    assert_ne!(dump(&db).await, live);
    store.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    assert_eq!(dump(&db).await, live);
}

fn edit(app: AppId, who: &str, room: RoomNumber, seq: i64, text: &str) -> Command {
    Command::Edit(EditMessage {
        app,
        actor: user(who),
        room,
        seq: Seq(seq),
        text: text.into(),
    })
}

fn delete(app: AppId, who: &str, room: RoomNumber, seq: i64) -> Command {
    Command::Delete(DeleteMessage {
        app,
        actor: user(who),
        room,
        seq: Seq(seq),
    })
}

fn mark(app: AppId, who: &str, room: RoomNumber, seq: i64) -> Command {
    Command::MarkRead(MarkRead {
        app,
        actor: user(who),
        room,
        seq: Seq(seq),
    })
}

fn marker(a: &Answer) -> i64 {
    match a {
        Ok(Outcome::ReadMarker(s)) => s.0,
        other => panic!("expected a read marker, got {other:?}"),
    }
}

/// Asserts that `room`'s changes run from 1 to `last` without a gap, each with the item its
/// event names.
async fn gapless_changes(store: &Arc<dyn Store>, app: AppId, room: RoomNumber, last: Pos) {
    let changes = store
        .changes(app, room, Pos(0), 10_000)
        .await
        .expect("changes");
    let positions: Vec<i64> = changes.rows.iter().map(|c| c.pos.0).collect();
    assert_eq!(positions, (1..=last.0).collect::<Vec<_>>());
    for c in &changes.rows {
        if let Some(seq) = c.body.item_seq() {
            assert_eq!(c.item.as_ref().map(|i| i.seq), Some(seq), "{:?}", c.body);
        }
    }
}

/// Asserts that the rows written live equal those a rebuild writes (a replay of the log one
/// event at a time): `app` as the conformance suite sees it, and every row of `tables`.
async fn replay_equals_live(store: &Arc<dyn Store>, db: &common::Db, app: AppId, tables: &[&str]) {
    let live = (
        confab_core::conformance::snapshot(store, app).await,
        rows_of(db, tables).await,
    );
    store.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    let rebuilt = (
        confab_core::conformance::snapshot(store, app).await,
        rows_of(db, tables).await,
    );
    assert_eq!(live, rebuilt);
}

/// Rows of `tables` as text, sorted (`SELECT t::TEXT`), for comparing before and after a
/// rebuild.
async fn rows_of(db: &common::Db, tables: &[&str]) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let conn = tokio::spawn(conn);
    let mut out = Vec::new();
    for table in tables {
        let mut rows: Vec<String> = client
            .query(&format!("SELECT t::TEXT FROM {table} t"), &[])
            .await
            .expect("rows")
            .iter()
            .map(|r| format!("{table}: {}", r.get::<_, String>(0)))
            .collect();
        rows.sort();
        out.extend(rows);
    }
    drop(client);
    let _ = conn.await;
    out
}

/// Read markers, edits, deletions, logins and sightings are buffered like sends and written
/// together at the end: every later command
/// of the batch must see them (an edited text, a deleted parent, a reply count, a marker, a
/// login time), and the rows written must be those a replay writes one event at a time,
/// including the deleted texts emptied from the log and from search.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edits_deletions_and_markers_in_one_batch_read_their_own_writes() {
    let (store, db) = common::fresh().await;
    let app = confab_core::conformance::app_with_users(&store, "m", 4).await;
    let room = group_of_four(&store, app, "room", Visibility::Public).await;
    let run = async |cmd: Command| item(&Ok(store.execute(cmd).await.expect("accepted"))).0;
    let s1 = run(send(app, "u0", room, "first", None, None)).await.seq.0;
    let s2 = run(send(app, "u1", room, "re first", Some(s1), None))
        .await
        .seq
        .0;
    let s3 = run(send(app, "u2", room, "doomed zebra", None, None))
        .await
        .seq
        .0;
    let s4 = run(send(app, "u1", room, "keep", None, Some("k")))
        .await
        .seq
        .0;
    let u3_before = store
        .user(app, &user("u3"))
        .await
        .expect("user")
        .expect("u3");
    let next = s4 + 1;

    let answers = in_one_batch(
        &db,
        &store,
        app,
        vec![
            /* 0 */ send(app, "u1", room, "new", None, Some("n1")),
            /* 1 */ mark(app, "u1", room, next),
            /* 2 */ edit(app, "u0", room, s1, "first, edited"),
            /* 3 */ edit(app, "u1", room, next, "new, edited"),
            /* 4 */ send(app, "u1", room, "new", None, Some("n1")),
            /* 5 */ send(app, "u3", room, "re new", Some(next), None),
            /* 6 */ delete(app, "u1", room, s2),
            /* 7 */ delete(app, "u0", room, s3),
            /* 8 */ delete(app, "u3", room, next + 1),
            /* 9 */ send(app, "u2", room, "re doomed", Some(s3), None),
            /* 10 */ edit(app, "u1", room, s2, "back"),
            /* 11 */ mark(app, "u2", room, next + 1),
            /* 12 */ mark(app, "u2", room, s1),
            /* 13 */ mark(app, "u1", room, next + 1),
            /* 14 */
            Command::RecordSeen {
                app,
                user: user("u3"),
            },
            /* 15 */
            Command::RecordLogin {
                app,
                user: user("u2"),
            },
            /* 16 */ send(app, "u1", room, "keep", None, Some("k")),
            /* 17 */
            Command::Decide(Decide {
                app,
                actor: user("u0"),
                room,
                target: user("u3"),
                decision: Decision::Kick,
            }),
            /* 18 */ mark(app, "u1", room, next),
            /* 19 */ edit(app, "u0", room, s1, "first, again"),
            /* 20 */ send(app, "u0", room, "last", Some(s1), None),
            // The kick is announced at next + 2.
            /* 21 */
            mark(app, "u0", room, next + 3),
        ],
    )
    .await;

    let (new, created) = item(&answers[0]);
    assert!(created);
    assert_eq!(new.seq.0, next);
    assert_eq!(
        marker(&answers[1]),
        next,
        "a marker on a message of the batch"
    );
    let (edited, _) = item(&answers[2]);
    assert_eq!(edited.text.as_deref(), Some("first, edited"));
    assert_eq!(edited.reply_count, 1);
    assert!(edited.edited_at.is_some());
    let (edited_new, _) = item(&answers[3]);
    assert_eq!(edited_new.text.as_deref(), Some("new, edited"));
    assert_eq!(
        refused(&answers[4]),
        ErrorCode::ClientIdReused,
        "the retry sees its item's edit"
    );
    let (reply, created) = item(&answers[5]);
    assert!(created);
    assert_eq!((reply.seq.0, reply.reply_to), (next + 1, Some(Seq(next))));
    for i in [6, 7, 8] {
        let (gone, _) = item(&answers[i]);
        assert!(gone.deleted && gone.text.is_none(), "command {i}: {gone:?}");
    }
    assert_eq!(refused(&answers[9]), ErrorCode::MessageDeleted);
    assert_eq!(refused(&answers[10]), ErrorCode::MessageDeleted);
    assert_eq!(marker(&answers[11]), next + 1);
    assert_eq!(
        marker(&answers[12]),
        next + 1,
        "a marker never moves back, even before it is written"
    );
    assert_eq!(marker(&answers[13]), next + 1);
    assert!(
        matches!(answers[14], Ok(Outcome::Done)),
        "{:?}",
        answers[14]
    );
    let at = new.created_at;
    match &answers[15] {
        Ok(Outcome::User(u)) => {
            assert_eq!((u.last_login_at, u.last_seen_at), (Some(at), Some(at)));
        }
        other => panic!("expected a user, got {other:?}"),
    }
    let (kept, created) = item(&answers[16]);
    assert!(!created);
    assert_eq!(kept.seq.0, s4);
    assert!(
        matches!(answers[17], Ok(Outcome::Member(_))),
        "{:?}",
        answers[17]
    );
    assert_eq!(
        marker(&answers[18]),
        next + 1,
        "the kick leaves the marker owed to the membership as it was"
    );
    let (again, _) = item(&answers[19]);
    assert_eq!(again.text.as_deref(), Some("first, again"));
    assert_eq!(again.reply_count, 0, "its reply was deleted in the batch");
    let (last, created) = item(&answers[20]);
    assert!(created);
    assert_eq!(last.seq.0, next + 3);
    assert_eq!(marker(&answers[21]), next + 3);

    // What was written, read back.
    let (items, _, _) = store
        .history(app, room, HistoryQuery::Latest, 100)
        .await
        .expect("history");
    let find = |seq: i64| items.iter().find(|i| i.seq.0 == seq).expect("item").clone();
    let first = find(s1);
    assert_eq!(
        (first.text.as_deref(), first.reply_count),
        (Some("first, again"), 1)
    );
    assert!(find(s2).deleted && find(s3).deleted && find(next + 1).deleted);
    let new = find(next);
    assert_eq!(
        (new.text.as_deref(), new.reply_count, new.edited_at),
        (Some("new, edited"), 0, Some(at))
    );
    // 4 before; in the batch 3 sent and 3 deleted.
    let a = store
        .access(app, room, Some(&user("u1")))
        .await
        .expect("access")
        .expect("room");
    assert_eq!(a.room.messages_count, 4);
    assert_eq!(store.app_stats(app).await.expect("stats").messages_count, 4);
    assert_eq!(a.member.expect("member").read_seq.0, next + 1);
    for (who, read) in [("u0", next + 3), ("u2", next + 1)] {
        let a = store
            .access(app, room, Some(&user(who)))
            .await
            .expect("access")
            .expect("room");
        assert_eq!(a.member.expect("member").read_seq.0, read, "{who}");
    }
    let u2 = store
        .user(app, &user("u2"))
        .await
        .expect("user")
        .expect("u2");
    assert_eq!((u2.last_login_at, u2.last_seen_at), (Some(at), Some(at)));
    let u3 = store
        .user(app, &user("u3"))
        .await
        .expect("user")
        .expect("u3");
    assert_eq!(
        (u3.last_login_at, u3.last_seen_at),
        (u3_before.last_login_at, Some(at))
    );
    // Deleted texts are gone from search and from the log, whether the message was stored
    // before the batch or sent in it.
    let hits = confab_core::conformance::search_all(&store, app, Scope::Room(room), "zebra").await;
    assert!(hits.is_empty(), "{hits:?}");
    let hits = confab_core::conformance::search_all(&store, app, Scope::Room(room), "again").await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    let log = store.events(app, Offset(0), 1000).await.expect("events");
    let mut redacted = 0;
    for ev in &log.rows {
        if let EventBody::MessagePosted {
            seq,
            text,
            redacted: r,
            ..
        }
        | EventBody::MessageEdited {
            seq,
            text,
            redacted: r,
            ..
        } = &ev.body
            && [s2, s3, next + 1].contains(&seq.0)
        {
            assert!(text.is_empty() && *r, "{:?}", ev.body);
            redacted += 1;
        }
    }
    assert_eq!(redacted, 3);

    // The rows written together equal a replay of the log one event at a time.
    replay_equals_live(
        &store,
        &db,
        app,
        &["rooms", "members", "items", "users", "events"],
    )
    .await;
}
