//! Conformance cases for alerts (open polls a user may vote on and has not) and for the races
//! that matter to polls: two last votes at once, and a close against a vote.

use super::support::{
    DAY, close, closings, meetup, new_poll, poll, poll_view, run, set_rsvp, uid, vote,
};
use super::{app_with_users, group};
use crate::command::{Command, CreatePoll};
use crate::error::{ErrorCode, StoreError};
use crate::event::EventBody;
use crate::ids::{AppId, PollNumber, RoomNumber, Timestamp};
use crate::meetups::{AlertKind, CloseReason, PollKind};
use crate::model::{MemberState, Visibility};
use crate::store::Store;
use std::sync::Arc;

/// `(room, poll, kind)` of every alert of `who`, following cursors in pages of 2.
async fn alerts_of(
    store: &Arc<dyn Store>,
    app: AppId,
    who: &str,
) -> Vec<(RoomNumber, PollNumber, AlertKind)> {
    let mut out: Vec<crate::meetups::Alert> = Vec::new();
    loop {
        let after = out.last().map(|a| (a.room, a.poll));
        let page = store
            .alerts(app, &uid(who), Timestamp::now(), after, 2)
            .await
            .expect("alerts");
        assert!(page.rows.len() <= 2);
        out.extend(page.rows);
        if !page.has_more {
            return out.into_iter().map(|a| (a.room, a.poll, a.kind)).collect();
        }
    }
}

/// `alerts_count` of each room `who` has joined, by room.
async fn counts_of(store: &Arc<dyn Store>, app: AppId, who: &str) -> Vec<(RoomNumber, i64)> {
    let page = store
        .rooms_of_user(app, &uid(who), MemberState::Joined, None, 100)
        .await
        .expect("rooms");
    let mut out: Vec<_> = page
        .rows
        .iter()
        .map(|s| (s.room.number, s.alerts_count))
        .collect();
    out.sort();
    out
}

/// Each eligible voter who has not voted has one alert per open poll, of the poll's kind;
/// voting removes it, withdrawing brings it back, closing removes everyone's; rooms' counts
/// agree; a user who left a room has no alerts from it.
pub async fn alerts_follow_votes_and_closing(store: Arc<dyn Store>) {
    use AlertKind::{PendingPoll, PendingRelocationPoll, PendingReschedulePoll};
    let app = app_with_users(&store, "alerts", 4).await;
    let a = group(&store, app, "u0", &["u1", "u2"], Visibility::Public).await;
    let b = group(&store, app, "u0", &["u1"], Visibility::Private).await;
    let now = Timestamp::now();
    let ma = meetup(&store, app, "u0", a, "here", Timestamp(now.0 + DAY)).await;
    let mb = meetup(&store, app, "u1", b, "there", Timestamp(now.0 + DAY)).await;
    run(&store, set_rsvp(app, "u2", a, ma, crate::meetups::Rsvp::No)).await;
    let deadline = Timestamp(now.0 + 10 * DAY);
    let pa1 = poll(
        &store,
        CreatePoll {
            closes_at: Some(deadline),
            ..new_poll(app, "u0", a, PollKind::Generic, &["x", "y"], None)
        },
    )
    .await;
    let times = [
        Timestamp(now.0 + 2 * DAY).to_rfc3339(),
        Timestamp(now.0 + 3 * DAY).to_rfc3339(),
    ];
    let times: Vec<&str> = times.iter().map(String::as_str).collect();
    let pa2 = poll(
        &store,
        new_poll(app, "u2", a, PollKind::Reschedule, &times, Some(ma)),
    )
    .await;
    let pb1 = poll(
        &store,
        new_poll(app, "u1", b, PollKind::Relocate, &["Inn", "Bar"], Some(mb)),
    )
    .await;

    assert_eq!(
        alerts_of(&store, app, "u1").await,
        [
            (a, pa1, PendingPoll),
            (a, pa2, PendingReschedulePoll),
            (b, pb1, PendingRelocationPoll)
        ]
    );
    assert_eq!(
        alerts_of(&store, app, "u2").await,
        [(a, pa1, PendingPoll)],
        "u2 declined the meetup"
    );
    assert!(alerts_of(&store, app, "u3").await.is_empty());
    assert_eq!(counts_of(&store, app, "u1").await, [(a, 2), (b, 1)]);
    assert_eq!(counts_of(&store, app, "u2").await, [(a, 1)]);
    // What an alert says.
    let page = store
        .alerts(app, &uid("u1"), now, None, 1)
        .await
        .expect("alerts");
    let first = &page.rows[0];
    let created = poll_view(&store, app, a, pa1, "u1").await.poll.created_at;
    assert_eq!(
        (
            first.meetup,
            first.question.as_str(),
            first.closes_at,
            first.created_at,
            page.has_more
        ),
        (None, "generic poll?", Some(deadline), created, true)
    );
    let page = store
        .alerts(app, &uid("u0"), now, Some((a, pa1)), 10)
        .await
        .expect("alerts");
    assert_eq!(page.rows[0].meetup, Some(ma));

    // A vote removes the voter's alert only; a withdrawal brings it back.
    run(&store, vote(app, "u1", a, pa1, &[0])).await;
    assert_eq!(
        alerts_of(&store, app, "u1").await,
        [
            (a, pa2, PendingReschedulePoll),
            (b, pb1, PendingRelocationPoll)
        ]
    );
    assert_eq!(counts_of(&store, app, "u1").await, [(a, 1), (b, 1)]);
    assert_eq!(alerts_of(&store, app, "u2").await, [(a, pa1, PendingPoll)]);
    run(&store, vote(app, "u1", a, pa1, &[])).await;
    assert_eq!(counts_of(&store, app, "u1").await, [(a, 2), (b, 1)]);
    assert_eq!(alerts_of(&store, app, "u1").await.len(), 3);
    // A newcomer has none for polls made before; closing removes everyone's.
    run(
        &store,
        Command::Join {
            app,
            actor: uid("u3"),
            room: a,
        },
    )
    .await;
    assert!(alerts_of(&store, app, "u3").await.is_empty());
    assert_eq!(counts_of(&store, app, "u3").await, [(a, 0)]);
    run(&store, close(app, "u0", a, pa1)).await;
    for who in ["u0", "u1", "u2"] {
        let left = alerts_of(&store, app, who).await;
        assert!(
            left.iter().all(|(r, p, _)| (*r, *p) != (a, pa1)),
            "{who}: {left:?}"
        );
    }
    assert_eq!(counts_of(&store, app, "u2").await, [(a, 0)]);
    assert_eq!(counts_of(&store, app, "u0").await, [(a, 1), (b, 1)]);
    // Leaving a room takes its alerts away.
    run(
        &store,
        Command::Leave {
            app,
            actor: uid("u1"),
            room: b,
        },
    )
    .await;
    assert_eq!(
        alerts_of(&store, app, "u1").await,
        [(a, pa2, PendingReschedulePoll)]
    );
    assert_eq!(counts_of(&store, app, "u1").await, [(a, 1)]);
}

/// Over several rounds, the two last voters vote at once: both votes count and exactly one
/// `PollClosed` records them all. Then the last voter sends two different votes at once:
/// one is taken (and closes the poll), the other is refused and not counted.
pub async fn two_last_votes_close_once(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "race", 4).await;
    let room = group(&store, app, "u0", &["u1", "u2", "u3"], Visibility::Private).await;
    for round in 0..8u32 {
        let p = poll(
            &store,
            new_poll(app, "u0", room, PollKind::Generic, &["a", "b"], None),
        )
        .await;
        run(&store, vote(app, "u0", room, p, &[0])).await;
        run(&store, vote(app, "u1", room, p, &[1])).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let mut tasks = Vec::new();
        for (who, choice) in [("u2", round % 2), ("u3", 1)] {
            let (store, barrier) = (store.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.execute(vote(app, who, room, p, &[choice])).await
            }));
        }
        for t in tasks {
            t.await.expect("task").expect("both last votes are taken");
        }
        let want = vec![1 + i64::from(round % 2 == 0), 2 + i64::from(round % 2)];
        let closed = closings(&store, app, room, p).await;
        match &closed[..] {
            [
                EventBody::PollClosed {
                    reason: CloseReason::AllVoted,
                    tallies,
                    ..
                },
            ] => {
                assert_eq!(*tallies, want, "round {round}")
            }
            other => panic!("round {round}: expected one closing, got {other:?}"),
        }
        let v = poll_view(&store, app, room, p, "u0").await;
        assert_eq!(
            (v.poll.tallies, v.poll.voted_count),
            (want, 4),
            "round {round}"
        );
    }
    // One last voter, two votes at once.
    for round in 0..8 {
        let p = poll(
            &store,
            new_poll(app, "u0", room, PollKind::Generic, &["a", "b"], None),
        )
        .await;
        for who in ["u0", "u1", "u2"] {
            run(&store, vote(app, who, room, p, &[0])).await;
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let mut tasks = Vec::new();
        for choice in [0u32, 1] {
            let (store, barrier) = (store.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                (
                    choice,
                    store.execute(vote(app, "u3", room, p, &[choice])).await,
                )
            }));
        }
        let mut taken = Vec::new();
        for t in tasks {
            match t.await.expect("task") {
                (choice, Ok(_)) => taken.push(choice),
                (_, Err(StoreError::Domain(e))) if e.code == ErrorCode::PollClosed => {}
                (_, other) => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!(
            taken.len(),
            1,
            "round {round}: exactly one of the two votes is taken"
        );
        let want = if taken[0] == 0 {
            vec![4, 0]
        } else {
            vec![3, 1]
        };
        let v = poll_view(&store, app, room, p, "u3").await;
        assert_eq!(
            (v.poll.tallies, v.my_vote),
            (want.clone(), Some(taken.clone())),
            "round {round}"
        );
        match &closings(&store, app, room, p).await[..] {
            [EventBody::PollClosed { tallies, .. }] => assert_eq!(*tallies, want, "round {round}"),
            other => panic!("round {round}: expected one closing, got {other:?}"),
        }
    }
}

/// Over several rounds, the creator closes a poll while its last voter votes: either the vote
/// came first (it counts and closes the poll, the close then does nothing) or the close did
/// (the vote is refused and not counted). Exactly one closing either way.
pub async fn close_versus_vote(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "racec", 3).await;
    let room = group(&store, app, "u0", &["u1", "u2"], Visibility::Private).await;
    let mut seen = (0, 0);
    for round in 0..12 {
        let p = poll(
            &store,
            new_poll(app, "u0", room, PollKind::Generic, &["a", "b"], None),
        )
        .await;
        run(&store, vote(app, "u0", room, p, &[0])).await;
        run(&store, vote(app, "u1", room, p, &[1])).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let closer = {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.execute(close(app, "u0", room, p)).await
            })
        };
        let voter = {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.execute(vote(app, "u2", room, p, &[1])).await
            })
        };
        closer
            .await
            .expect("task")
            .expect("the close is taken either way");
        let voted = match voter.await.expect("task") {
            Ok(_) => true,
            Err(StoreError::Domain(e)) if e.code == ErrorCode::PollClosed => false,
            Err(e) => panic!("round {round}: unexpected {e:?}"),
        };
        let v = poll_view(&store, app, room, p, "u2").await;
        let c = v.poll.closed.clone().expect("closed");
        let closed = closings(&store, app, room, p).await;
        let [
            EventBody::PollClosed {
                reason, tallies, ..
            },
        ] = &closed[..]
        else {
            panic!("round {round}: expected one closing, got {closed:?}")
        };
        assert_eq!(
            (*reason, tallies),
            (c.reason, &v.poll.tallies),
            "round {round}"
        );
        if voted {
            seen.0 += 1;
            assert_eq!(c.reason, CloseReason::AllVoted, "round {round}");
            assert_eq!(
                (v.poll.tallies, v.my_vote),
                (vec![1, 2], Some(vec![1])),
                "round {round}"
            );
        } else {
            seen.1 += 1;
            assert_eq!(
                (c.reason, c.by),
                (CloseReason::Closed, Some(uid("u0"))),
                "round {round}"
            );
            assert_eq!(
                (v.poll.tallies, v.my_vote),
                (vec![1, 1], Some(vec![])),
                "round {round}"
            );
        }
    }
    assert_eq!(seen.0 + seen.1, 12, "{seen:?}");
}
