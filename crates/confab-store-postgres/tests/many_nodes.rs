//! Two store instances (two nodes) on one database, with races split between them: what the
//! PostgreSQL store exists for. Each case gets its own database.

mod common;

use confab_core::command::{ClosePoll, CreateGroup, CreatePoll, Decide, SendMessage, Vote};
use confab_core::command::{Command, Decision, Outcome};
use confab_core::error::{ErrorCode, StoreError};
use confab_core::event::EventBody;
use confab_core::ids::{AppId, Offset, PollNumber, Pos, RoomNumber, Seq, Timestamp, UserId};
use confab_core::meetups::{PollKind, Results};
use confab_core::model::{HistoryQuery, Visibility};
use confab_core::store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn user(s: &str) -> UserId {
    UserId(s.to_owned())
}

async fn two_nodes() -> (Arc<dyn Store>, Arc<dyn Store>, common::Db) {
    let db = common::database().await;
    // Both open (and migrate) at once, as nodes starting together would.
    let (a, b) = tokio::join!(common::open(&db), common::open(&db));
    (a, b, db)
}

async fn group(store: &Arc<dyn Store>, app: AppId, owner: &str, members: &[&str]) -> RoomNumber {
    let out = store
        .execute(Command::CreateGroup(CreateGroup {
            app,
            actor: Some(user(owner)),
            name: Some("room".into()),
            image_url: None,
            visibility: Visibility::Public,
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

fn send(
    app: AppId,
    actor: &str,
    room: RoomNumber,
    text: &str,
    client_id: Option<String>,
) -> Command {
    Command::Send(SendMessage {
        app,
        actor: Some(user(actor)),
        room,
        text: text.into(),
        reply_to: None,
        client_id,
    })
}

fn domain_code(r: &Result<Outcome, StoreError>) -> Option<ErrorCode> {
    match r {
        Err(StoreError::Domain(d)) => Some(d.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sends_split_between_nodes_are_gapless_and_once_per_client_id() {
    let (a, b, _db) = two_nodes().await;
    let app = confab_core::conformance::app_with_users(&a, "x", 4).await;
    let room = group(&b, app, "u0", &["u1", "u2", "u3"]).await;
    let mut tasks = Vec::new();
    // 300 sends over 100 client ids: each id is sent three times, on both nodes.
    for i in 0..300 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let who = format!("u{}", i % 4 % 2);
        let cid = format!("c{}", i % 100);
        tasks.push(tokio::spawn(async move {
            let who = if cid.ends_with(['0', '2', '4', '6', '8']) {
                "u0".to_owned()
            } else {
                who
            };
            let r = store
                .execute(send(
                    app,
                    &who,
                    room,
                    &format!("m {cid}"),
                    Some(cid.clone()),
                ))
                .await;
            (cid, r)
        }));
    }
    let mut by_cid: HashMap<String, Vec<Seq>> = HashMap::new();
    for t in tasks {
        let (cid, r) = t.await.expect("task");
        match r {
            Ok(Outcome::Item { item, .. }) => by_cid.entry(cid).or_default().push(item.seq),
            // The same client id by another sender is refused; nothing else may fail.
            other if domain_code(&other) == Some(ErrorCode::ClientIdReused) => {}
            other => panic!("send failed: {other:?}"),
        }
    }
    let access = a
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room");
    let (items, _, _) = b
        .history(
            app,
            room,
            HistoryQuery::Range(Seq(1), access.room.last_seq),
            2000,
        )
        .await
        .expect("history");
    let seqs: Vec<i64> = items.iter().map(|i| i.seq.0).collect();
    assert_eq!(
        seqs,
        (1..=access.room.last_seq.0).collect::<Vec<_>>(),
        "gapless seqs"
    );
    let mut per_cid: HashMap<&str, usize> = HashMap::new();
    for it in &items {
        if let Some(c) = it.client_id.as_deref() {
            *per_cid.entry(c).or_default() += 1;
        }
    }
    assert_eq!(per_cid.len(), 100, "every client id got an item");
    assert!(
        per_cid.values().all(|n| *n == 1),
        "one item per client id: {per_cid:?}"
    );
    for (cid, seqs) in by_cid {
        assert!(
            seqs.windows(2).all(|w| w[0] == w[1]),
            "{cid}: every answer names one item"
        );
    }
    let changes = a.changes(app, room, Pos(0), 5000).await.expect("changes");
    let pos: Vec<i64> = changes.rows.iter().map(|c| c.pos.0).collect();
    assert_eq!(
        pos,
        (1..=pos.len() as i64).collect::<Vec<_>>(),
        "gapless positions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_racing_for_a_direct_pair_or_an_alias_make_one_room() {
    let (a, b, _db) = two_nodes().await;
    let app = confab_core::conformance::app_with_users(&a, "x", 4).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (me, other) = if i % 3 == 0 {
            ("u0", "u1")
        } else {
            ("u1", "u0")
        };
        tasks.push(tokio::spawn(async move {
            store
                .execute(Command::CreateDirect {
                    app,
                    actor: user(me),
                    with: user(other),
                })
                .await
        }));
    }
    let mut rooms = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(Outcome::Room { room, .. }) => rooms.push(room.number),
            other => panic!("direct create failed: {other:?}"),
        }
    }
    rooms.dedup();
    assert_eq!(rooms.len(), 1, "one direct room for the pair: {rooms:?}");

    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .execute(Command::CreateGroup(CreateGroup {
                    app,
                    actor: Some(user(&format!("u{}", i % 4))),
                    name: None,
                    image_url: None,
                    visibility: Visibility::Public,
                    alias: Some("lobby".into()),
                    members: vec![],
                }))
                .await
        }));
    }
    let (mut made, mut taken) = (Vec::new(), 0);
    for t in tasks {
        let r = t.await.expect("task");
        match r {
            Ok(Outcome::Room { room, .. }) => made.push(room.number),
            other if domain_code(&other) == Some(ErrorCode::RoomAliasTaken) => taken += 1,
            other => panic!("group create failed: {other:?}"),
        }
    }
    assert_eq!((made.len(), taken), (1, 39), "one room holds the alias");
    assert_eq!(
        a.room_by_alias(app, "lobby").await.expect("alias"),
        Some(made[0])
    );
    // Room numbers stayed gapless across the nodes: the direct room, then the lobby.
    assert_eq!(made[0], RoomNumber(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_of_the_app_log_never_skips_with_writers_on_both_nodes() {
    let (a, b, _db) = two_nodes().await;
    let app = confab_core::conformance::app_with_users(&a, "x", 4).await;
    let mut rooms = Vec::new();
    for i in 0..4 {
        rooms.push(group(&a, app, &format!("u{i}"), &[]).await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        let room = rooms[w % 4];
        let who = format!("u{}", w % 4);
        writers.push(tokio::spawn(async move {
            for i in 0..60 {
                store
                    .execute(send(app, &who, room, &format!("w{w} {i}"), None))
                    .await
                    .expect("send");
            }
        }));
    }
    // Readers on both nodes follow the log: each page must continue exactly where the last
    // one ended. A hole (a smaller offset committed later) would show as a jump.
    let mut readers = Vec::new();
    for store in [a.clone(), b.clone()] {
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut after = Offset(0);
            let mut checks = 0u64;
            loop {
                let done = stop.load(Ordering::Acquire);
                let page = store.events(app, after, 50).await.expect("events");
                for e in &page.rows {
                    assert_eq!(e.offset.0, after.0 + 1, "the log skipped past {after:?}");
                    after = e.offset;
                }
                checks += 1;
                if done && !page.has_more {
                    return (after, checks);
                }
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    stop.store(true, Ordering::Release);
    for r in readers {
        let (last, checks) = r.await.expect("reader");
        assert_eq!(
            last.0,
            1 + 4 + 4 * 2 + 8 * 60,
            "saw the whole log ({checks} reads)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kick_on_one_node_and_a_send_on_the_other_are_ordered() {
    let (a, b, _db) = two_nodes().await;
    let app = confab_core::conformance::app_with_users(&a, "x", 2).await;
    for round in 0..10 {
        let room = group(&a, app, "u0", &["u1"]).await;
        let kick = {
            let a = a.clone();
            tokio::spawn(async move {
                a.execute(Command::Decide(Decide {
                    app,
                    actor: user("u0"),
                    room,
                    target: user("u1"),
                    decision: Decision::Kick,
                }))
                .await
            })
        };
        let sends: Vec<_> = (0..5)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move {
                    b.execute(send(app, "u1", room, &format!("r{round} {i}"), None))
                        .await
                })
            })
            .collect();
        kick.await.expect("kick").expect("kick accepted");
        for s in sends {
            let r = s.await.expect("send");
            assert!(
                matches!(r, Ok(Outcome::Item { .. }))
                    || domain_code(&r) == Some(ErrorCode::NotAMember),
                "{r:?}"
            );
        }
        // In the room's order, no message of u1 comes after the kick.
        let changes = b.changes(app, room, Pos(0), 100).await.expect("changes");
        let kicked_at = changes
            .rows
            .iter()
            .find(|c| matches!(&c.body, EventBody::Membership { user, .. } if user.0 == "u1" && c.pos.0 > 3))
            .map(|c| c.pos)
            .expect("the kick is in the room's changes");
        for c in &changes.rows {
            if let EventBody::MessagePosted {
                sender: Some(s),
                pos,
                ..
            } = &c.body
            {
                assert!(
                    s.0 != "u1" || *pos < kicked_at,
                    "a send was ordered after the kick"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_on_one_node_never_interleaves_with_writes_of_the_other() {
    let (a, b, _db) = two_nodes().await;
    let app = confab_core::conformance::app_with_users(&a, "x", 2).await;
    let room = group(&a, app, "u0", &["u1"]).await;
    let writer = {
        let b = b.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                b.execute(send(app, "u1", room, &format!("m{i}"), None))
                    .await
                    .expect("send during rebuild");
            }
        })
    };
    for _ in 0..3 {
        a.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    }
    writer.await.expect("writer");
    let before = confab_core::conformance::snapshot(&a, app).await;
    let access = b
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room");
    assert_eq!(access.room.messages_count, 200);
    assert_eq!(
        access.room.last_seq,
        Seq(202),
        "two announcements (created, u1 added), then the 200 sends"
    );
    a.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    assert_eq!(
        confab_core::conformance::snapshot(&b, app).await,
        before,
        "replay equals live"
    );
}

/// The poll races of issue 13 split between nodes: the last two votes on different nodes,
/// and every other round a close by hand on the second node too. The room lock orders them:
/// the poll closes exactly once, with the tallies it holds, and a vote that comes after the
/// closing is refused without a trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn last_votes_and_a_close_on_two_nodes_close_a_poll_once() {
    let (a, b, _db) = two_nodes().await;
    let app = confab_core::conformance::app_with_users(&a, "x", 4).await;
    let room = group(&a, app, "u0", &["u1", "u2", "u3"]).await;
    let vote = |who: &str, poll: PollNumber, choice: u32| {
        Command::Vote(Vote {
            app,
            actor: user(who),
            room,
            poll,
            choices: vec![choice],
        })
    };
    for round in 0..10u32 {
        let poll = match a
            .execute(Command::CreatePoll(CreatePoll {
                app,
                actor: user("u0"),
                room,
                question: format!("round {round}?"),
                kind: PollKind::Generic,
                choices: vec!["a".into(), "b".into()],
                max_selections: 1,
                results: Results::Disclosed,
                closes_at: None,
                meetup: None,
            }))
            .await
            .expect("poll")
        {
            Outcome::Poll(p) => p,
            other => panic!("expected a poll, got {other:?}"),
        };
        for who in ["u0", "u1"] {
            b.execute(vote(who, poll, 0)).await.expect("vote");
        }
        let mut racers = vec![
            (a.clone(), vote("u2", poll, round % 2)),
            (b.clone(), vote("u3", poll, 1)),
        ];
        if round % 2 == 1 {
            racers.push((
                b.clone(),
                Command::ClosePoll(ClosePoll {
                    app,
                    actor: Some(user("u0")),
                    room,
                    poll,
                }),
            ));
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(racers.len()));
        let tasks: Vec<_> = racers
            .into_iter()
            .map(|(store, cmd)| {
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.execute(cmd).await
                })
            })
            .collect();
        for t in tasks {
            let r = t.await.expect("task");
            assert!(
                matches!(r, Ok(Outcome::Poll(_))) || domain_code(&r) == Some(ErrorCode::PollClosed),
                "round {round}: {r:?}"
            );
        }
        let changes = a.changes(app, room, Pos(0), 10_000).await.expect("changes");
        let positions: Vec<i64> = changes.rows.iter().map(|c| c.pos.0).collect();
        assert_eq!(positions, (1..=positions.len() as i64).collect::<Vec<_>>());
        let closings: Vec<&Vec<i64>> = changes
            .rows
            .iter()
            .filter_map(|c| match &c.body {
                EventBody::PollClosed {
                    poll: p, tallies, ..
                } if *p == poll => Some(tallies),
                _ => None,
            })
            .collect();
        assert_eq!(closings.len(), 1, "round {round}: closed once");
        let view = b
            .poll(app, room, poll, &user("u0"))
            .await
            .expect("read")
            .expect("the poll");
        assert!(view.poll.closed.is_some());
        assert_eq!(&view.poll.tallies, closings[0], "round {round}");
        assert_eq!(
            view.poll.tallies.iter().sum::<i64>(),
            view.poll.voted_count,
            "round {round}: one choice per standing vote"
        );
        if round % 2 == 0 {
            assert_eq!(
                view.poll.voted_count, 4,
                "round {round}: both last votes count"
            );
        }
        for who in ["u0", "u1", "u2", "u3"] {
            let alerts = a
                .alerts(app, &user(who), Timestamp::now(), None, 10)
                .await
                .expect("alerts");
            assert!(alerts.rows.is_empty(), "round {round}, {who}");
        }
    }
}
