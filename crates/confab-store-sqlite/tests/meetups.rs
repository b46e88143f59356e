//! Meetups, polls and alerts where the conformance suite cannot look: the SQLite tables
//! themselves (a rebuild empties them and gives them back row for row) and the writer's cache
//! (a batch mixing votes, answers and sends in one room keeps its positions gapless).

use confab_core::command::{
    CancelMeetup, ClosePoll, Command, CreateGroup, CreateMeetup, CreatePoll, Outcome, SendMessage,
    SetRsvp, Vote,
};
use confab_core::conformance::app_with_users;
use confab_core::error::StoreError;
use confab_core::ids::{AppId, MeetupNumber, PollNumber, Pos, RoomNumber, Timestamp, UserId};
use confab_core::meetups::{
    AlertKind, CloseReason, MeetupQuery, PollKind, PollOutcome, Results, Rsvp, RsvpCounts,
};
use confab_core::model::{HistoryQuery, MemberState, Visibility};
use confab_core::store::Store;
use confab_store_sqlite::{Options, SqliteStore};
use std::path::PathBuf;
use std::sync::Arc;

const DAY: i64 = 86_400_000;

fn user(s: &str) -> UserId {
    UserId(s.to_owned())
}

async fn fresh() -> (Arc<dyn Store>, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path, Options::default()).expect("open store");
    (Arc::new(store), path, dir)
}

async fn run(store: &Arc<dyn Store>, cmd: Command) -> Outcome {
    store.execute(cmd).await.expect("command accepted")
}

async fn group(store: &Arc<dyn Store>, app: AppId, owner: &str, members: &[&str]) -> RoomNumber {
    let out = run(
        store,
        Command::CreateGroup(CreateGroup {
            app,
            actor: Some(user(owner)),
            name: Some("plans".into()),
            image_url: None,
            visibility: Visibility::Private,
            alias: None,
            members: members.iter().map(|m| user(m)).collect(),
        }),
    )
    .await;
    match out {
        Outcome::Room { room, .. } => room.number,
        other => panic!("expected a room, got {other:?}"),
    }
}

fn meetup(app: AppId, actor: &str, room: RoomNumber, name: &str, at: Timestamp) -> Command {
    Command::CreateMeetup(CreateMeetup {
        app,
        actor: user(actor),
        room,
        name: name.into(),
        location: "Cafe".into(),
        takes_place_on: at,
        image_url: None,
    })
}

fn rsvp(app: AppId, actor: &str, room: RoomNumber, m: i64, rsvp: Rsvp) -> Command {
    Command::SetRsvp(SetRsvp {
        app,
        actor: user(actor),
        room,
        meetup: MeetupNumber(m),
        rsvp,
    })
}

#[allow(clippy::too_many_arguments)]
fn poll(
    app: AppId,
    actor: &str,
    room: RoomNumber,
    kind: PollKind,
    choices: &[&str],
    results: Results,
    closes_at: Option<Timestamp>,
    meetup: Option<i64>,
) -> Command {
    Command::CreatePoll(CreatePoll {
        app,
        actor: user(actor),
        room,
        question: format!("{} poll", kind.as_str()),
        kind,
        choices: choices.iter().map(|c| c.to_string()).collect(),
        max_selections: 2,
        results,
        closes_at,
        meetup: meetup.map(MeetupNumber),
    })
}

fn vote(app: AppId, actor: &str, room: RoomNumber, p: i64, choices: &[u32]) -> Command {
    Command::Vote(Vote {
        app,
        actor: user(actor),
        room,
        poll: PollNumber(p),
        choices: choices.to_vec(),
    })
}

fn send(app: AppId, actor: &str, room: RoomNumber, text: &str) -> Command {
    Command::Send(SendMessage {
        app,
        actor: Some(user(actor)),
        room,
        text: text.into(),
        reply_to: None,
        client_id: None,
    })
}

/// Every row of the gathering tables and of the rooms and timeline they touch, sorted.
fn dump(path: &PathBuf) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("open the file");
    let mut out = Vec::new();
    for table in [
        "meetups",
        "rsvps",
        "polls",
        "poll_voters",
        "alerts",
        "rooms",
        "items",
    ] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table}"))
            .expect("prepare");
        let n = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let cols = (0..n)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(format!("{table}: {}", cols.join(" | ")))
            })
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        rows.sort();
        out.extend(rows);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_empties_the_gathering_tables_and_gives_them_back_row_for_row() {
    let (store, path, _dir) = fresh().await;
    let app = app_with_users(&store, "g", 5).await;
    let room = group(&store, app, "u0", &["u1", "u2", "u3"]).await;
    let soon = Timestamp(Timestamp::now().0 + 10 * DAY);

    run(&store, meetup(app, "u0", room, "Dinner", soon)).await;
    run(&store, rsvp(app, "u1", room, 1, Rsvp::Yes)).await;
    run(&store, rsvp(app, "u2", room, 1, Rsvp::No)).await;
    run(&store, rsvp(app, "u3", room, 1, Rsvp::Maybe)).await;
    let seen = store
        .meetup(app, room, MeetupNumber(1), &user("u1"))
        .await
        .expect("read")
        .expect("the meetup");
    assert_eq!(seen.rsvp, Rsvp::Yes);
    let counts = RsvpCounts {
        yes: 2,
        no: 1,
        maybe: 1,
        none: 0,
    };
    assert_eq!(seen.counts, counts);
    // Answers count for joined members only.
    run(
        &store,
        Command::Leave {
            app,
            actor: user("u3"),
            room,
        },
    )
    .await;
    let seen = store
        .meetup(app, room, MeetupNumber(1), &user("u0"))
        .await
        .expect("read")
        .expect("the meetup");
    assert_eq!((seen.counts.maybe, seen.counts.none), (0, 0));

    // A relocation poll: u2 declined the meetup and u3 left, so u0 and u1 vote.
    let relocate = poll(
        app,
        "u1",
        room,
        PollKind::Relocate,
        &["Cafe", "Park", "Pier"],
        Results::Disclosed,
        None,
        Some(1),
    );
    run(&store, relocate).await;
    let alerts = store
        .alerts(app, &user("u0"), Timestamp::now(), None, 10)
        .await
        .expect("alerts");
    assert_eq!(alerts.rows.len(), 1);
    assert_eq!(alerts.rows[0].kind, AlertKind::PendingRelocationPoll);
    let none = store
        .alerts(app, &user("u2"), Timestamp::now(), None, 10)
        .await
        .expect("alerts");
    assert!(none.rows.is_empty());
    let rooms = store
        .rooms_of_user(app, &user("u0"), MemberState::Joined, None, 10)
        .await
        .expect("rooms");
    assert_eq!(rooms.rows[0].alerts_count, 1);

    // A vote replaces the standing one; withdrawing it gives the alert back.
    run(&store, vote(app, "u0", room, 1, &[1])).await;
    run(&store, vote(app, "u0", room, 1, &[0, 2])).await;
    let p = store
        .poll(app, room, PollNumber(1), &user("u0"))
        .await
        .expect("read")
        .expect("the poll");
    assert_eq!(p.poll.tallies, [1, 0, 1]);
    assert_eq!((p.poll.voted_count, p.poll.voters_count), (1, 2));
    assert_eq!(p.my_vote.as_deref(), Some(&[0, 2][..]));
    assert_eq!(p.voters, [user("u0"), user("u1")]);
    run(&store, vote(app, "u0", room, 1, &[])).await;
    let back = store
        .alerts(app, &user("u0"), Timestamp::now(), None, 10)
        .await
        .expect("alerts");
    assert_eq!(back.rows.len(), 1);

    // The last vote closes it and moves the meetup.
    run(&store, vote(app, "u0", room, 1, &[1])).await;
    run(&store, vote(app, "u1", room, 1, &[1, 2])).await;
    let p = store
        .poll(app, room, PollNumber(1), &user("u2"))
        .await
        .expect("read")
        .expect("the poll");
    let closed = p.poll.closed.expect("closed by the last vote");
    assert_eq!(closed.reason, CloseReason::AllVoted);
    assert_eq!(
        (closed.outcome, closed.winner),
        (PollOutcome::Decided, Some(1))
    );
    assert_eq!(p.poll.tallies, [0, 2, 1]);
    assert_eq!(p.my_vote, None);
    let m = store
        .meetup(app, room, MeetupNumber(1), &user("u0"))
        .await
        .expect("read")
        .expect("the meetup");
    assert_eq!(m.meetup.location, "Park");

    // An undisclosed poll with a deadline, left open: due once its deadline has passed, and
    // its alerts gone for readers then.
    let deadline = Timestamp(Timestamp::now().0 + DAY);
    run(
        &store,
        poll(
            app,
            "u2",
            room,
            PollKind::Generic,
            &["yes", "no"],
            Results::Undisclosed,
            Some(deadline),
            None,
        ),
    )
    .await;
    run(&store, vote(app, "u2", room, 2, &[0])).await;
    let later = Timestamp(deadline.0 + 1);
    let due = store.due_polls(later, 10).await.expect("due");
    assert_eq!(due, [(app, room, PollNumber(2))]);
    assert!(
        store
            .due_polls(Timestamp::now(), 10)
            .await
            .expect("due")
            .is_empty()
    );
    let now_alerts = store
        .alerts(app, &user("u1"), Timestamp::now(), None, 10)
        .await
        .expect("alerts");
    assert_eq!(now_alerts.rows.len(), 1);
    let late_alerts = store
        .alerts(app, &user("u1"), later, None, 10)
        .await
        .expect("alerts");
    assert!(late_alerts.rows.is_empty());

    // A reschedule poll closed by the meetup's cancellation; a second meetup stays upcoming.
    let t1 = Timestamp(soon.0 + DAY).to_rfc3339();
    let t2 = Timestamp(soon.0 + 2 * DAY).to_rfc3339();
    let reschedule = poll(
        app,
        "u0",
        room,
        PollKind::Reschedule,
        &[&t1, &t2],
        Results::Disclosed,
        None,
        Some(1),
    );
    run(&store, reschedule).await;
    run(
        &store,
        meetup(app, "u1", room, "Walk", Timestamp(soon.0 + 3 * DAY)),
    )
    .await;
    run(
        &store,
        Command::CancelMeetup(CancelMeetup {
            app,
            actor: user("u0"),
            room,
            meetup: MeetupNumber(1),
        }),
    )
    .await;
    let p3 = store
        .poll(app, room, PollNumber(3), &user("u0"))
        .await
        .expect("read")
        .expect("the poll");
    let closed = p3.poll.closed.expect("closed with its meetup");
    assert_eq!(closed.reason, CloseReason::MeetupCancelled);
    let mine = store
        .my_meetups(app, &user("u0"), Timestamp::now(), None, 10)
        .await
        .expect("mine");
    let names: Vec<&str> = mine.rows.iter().map(|v| v.meetup.name.as_str()).collect();
    assert_eq!(names, ["Walk"]);
    let all = store
        .meetups(
            app,
            room,
            &user("u0"),
            MeetupQuery {
                upcoming: false,
                now: Timestamp::now(),
                after: None,
            },
            10,
        )
        .await
        .expect("meetups");
    assert_eq!(all.rows.len(), 2);
    // Open first, then closed, each newest first.
    let listed = store
        .polls(app, room, &user("u0"), None, 10)
        .await
        .expect("polls");
    let order: Vec<i64> = listed.rows.iter().map(|p| p.poll.number.0).collect();
    assert_eq!(order, [2, 3, 1]);

    // A row no event explains is gone after the rebuild; every other row comes back the same.
    let live = dump(&path);
    let conn = rusqlite::Connection::open(&path).expect("open the file");
    conn.execute(
        "INSERT INTO alerts (app_id, user_id, room_no, poll, room_id, kind, question, created_at)
         VALUES (?1, 'u4', 99, 1, 99, 'pending_poll', 'stray', 0)",
        [app.0],
    )
    .expect("a stray alert");
    conn.execute(
        "INSERT INTO rsvps (room_id, meetup, user_id, rsvp) VALUES (99, 1, 'u4', 'yes')",
        [],
    )
    .expect("a stray answer");
    drop(conn);
    assert_ne!(dump(&path), live);
    store.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    let rebuilt = dump(&path);
    for (i, (a, b)) in live.iter().zip(rebuilt.iter()).enumerate() {
        assert_eq!(a, b, "row {i} differs after the rebuild");
    }
    assert_eq!(live.len(), rebuilt.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_answers_and_sends_in_one_batch_keep_the_room_gapless() {
    let (store, path, _dir) = fresh().await;
    let app = app_with_users(&store, "b", 4).await;
    let room = group(&store, app, "u0", &["u1", "u2", "u3"]).await;
    let soon = Timestamp(Timestamp::now().0 + 10 * DAY);
    run(&store, meetup(app, "u0", room, "Dinner", soon)).await;
    let generic = poll(
        app,
        "u0",
        room,
        PollKind::Generic,
        &["a", "b", "c"],
        Results::Disclosed,
        None,
        None,
    );
    run(&store, generic).await;

    // Submitted together, so the writer takes many of them into one transaction. Every kind
    // of gathering event sits between sends, some of them announcing (a meetup, a poll).
    let answers = [Rsvp::Yes, Rsvp::Maybe, Rsvp::No, Rsvp::None];
    let mut tasks = Vec::new();
    for i in 0..120usize {
        let who = ["u1", "u2", "u3"][i % 3];
        let cmd = match i % 6 {
            0 | 3 => send(app, who, room, &format!("m{i}")),
            1 => rsvp(app, who, room, 1, answers[(i / 6) % 4]),
            2 => vote(app, who, room, 1, &[(i % 3) as u32]),
            4 if i % 24 == 4 => meetup(app, who, room, &format!("x{i}"), soon),
            4 => vote(app, who, room, 1, &[]),
            _ => poll(
                app,
                who,
                room,
                PollKind::Generic,
                &["p", "q"],
                Results::Undisclosed,
                None,
                None,
            ),
        };
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.execute(cmd).await }));
    }
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) | Err(StoreError::Domain(_)) => {}
            Err(e) => panic!("backend failure: {e}"),
        }
    }

    let access = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("the room");
    let last_pos = access.room.last_pos.0;
    let changes = store
        .changes(app, room, Pos(0), 10_000)
        .await
        .expect("changes");
    let positions: Vec<i64> = changes.rows.iter().map(|c| c.pos.0).collect();
    assert_eq!(positions, (1..=last_pos).collect::<Vec<_>>());
    let (items, _, _) = store
        .history(app, room, HistoryQuery::Latest, 10_000)
        .await
        .expect("history");
    let seqs: Vec<i64> = items.iter().map(|i| i.seq.0).collect();
    assert_eq!(seqs, (1..=access.room.last_seq.0).collect::<Vec<_>>());
    // Every announcing change points at its item.
    for c in &changes.rows {
        if let Some(seq) = c.body.item_seq() {
            assert_eq!(c.item.as_ref().map(|i| i.seq), Some(seq), "{:?}", c.body);
        }
    }

    // Once more after closing the first poll by hand: the cache followed every event.
    run(
        &store,
        Command::ClosePoll(ClosePoll {
            app,
            actor: Some(user("u0")),
            room,
            poll: PollNumber(1),
        }),
    )
    .await;
    run(&store, send(app, "u0", room, "after")).await;
    let after = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("the room");
    assert_eq!(after.room.last_pos.0, last_pos + 2);
    assert_eq!(after.room.last_seq.0, access.room.last_seq.0 + 2);

    let live = dump(&path);
    store.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    assert_eq!(dump(&path), live);
}
