//! Conformance cases for how polls close and what that does: a decided poll moves its
//! meetup, who may close, the deadline, and a meetup's cancellation closing its polls.

use super::support::*;
use super::{app_with_users, group};
use crate::command::{ClosePoll, Command, CreatePoll};
use crate::error::ErrorCode;
use crate::event::EventBody;
use crate::ids::{PollNumber, Timestamp};
use crate::meetups::{CloseReason, PollKind, PollOutcome};
use crate::model::Visibility;
use crate::store::Store;
use std::sync::Arc;

/// A decided reschedule poll moves its meetup's time, a decided relocate poll its place, in
/// the same command as the closing, announced; a tie or no votes move nothing.
pub async fn decided_polls_move_the_meetup(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "pmove", 3).await;
    let room = group(&store, app, "u0", &["u1", "u2"], Visibility::Private).await;
    let now = Timestamp::now();
    let t0 = Timestamp(now.0 + DAY);
    let m = meetup(&store, app, "u1", room, "dinner", t0).await;
    let (t1, t2) = (Timestamp(now.0 + 2 * DAY), Timestamp(now.0 + 3 * DAY));
    let times = [t1.to_rfc3339(), t2.to_rfc3339()];
    let times: Vec<&str> = times.iter().map(String::as_str).collect();
    // Reschedule, decided by the last vote.
    let p = poll(
        &store,
        new_poll(app, "u2", room, PollKind::Reschedule, &times, Some(m)),
    )
    .await;
    run(&store, vote(app, "u0", room, p, &[1])).await;
    run(&store, vote(app, "u1", room, p, &[1])).await;
    let log = log_len(&store, app).await;
    run(&store, vote(app, "u2", room, p, &[0])).await;
    let logged: Vec<EventBody> = events_since(&store, app, log)
        .await
        .into_iter()
        .map(|e| e.body)
        .collect();
    match &logged[..] {
        [
            EventBody::VoteCast { .. },
            EventBody::PollClosed {
                outcome: PollOutcome::Decided,
                winner: Some(1),
                ..
            },
            EventBody::MeetupUpdated {
                meetup,
                poll: Some(by_poll),
                takes_place_on: Some(t),
                location: None,
                seq: Some(_),
                ..
            },
        ] => assert_eq!((*meetup, *by_poll, *t), (m, p, t2)),
        other => panic!("expected vote, closing and move, got {other:?}"),
    }
    let v = view(&store, app, room, m, "u0").await;
    assert_eq!(
        (v.meetup.takes_place_on, v.meetup.location.as_str()),
        (t2, "dinner place")
    );
    let tl = timeline(&store, app, room).await;
    let last_two: Vec<String> = tl[tl.len() - 2..].iter().map(announced).collect();
    assert_eq!(last_two, ["poll_closed", "meetup_moved"]);
    let changes = all_changes(&store, app, room).await;
    assert!(matches!(
        &changes[changes.len() - 1].body,
        EventBody::MeetupUpdated { poll: Some(_), .. }
    ));

    // Relocate, decided when an admin closes it.
    let r = poll(
        &store,
        new_poll(
            app,
            "u1",
            room,
            PollKind::Relocate,
            &["Park", "Pier"],
            Some(m),
        ),
    )
    .await;
    run(&store, vote(app, "u1", room, r, &[1])).await;
    run(&store, vote(app, "u2", room, r, &[1])).await;
    run(&store, close(app, "u0", room, r)).await;
    let changes = all_changes(&store, app, room).await;
    assert!(matches!(
        &changes[changes.len() - 1].body,
        EventBody::MeetupUpdated { poll: Some(by_poll), location: Some(l), takes_place_on: None, .. }
            if *by_poll == r && l == "Pier"
    ));
    let v = view(&store, app, room, m, "u0").await;
    assert_eq!(
        (v.meetup.takes_place_on, v.meetup.location.as_str()),
        (t2, "Pier")
    );
    let closed = poll_view(&store, app, room, r, "u0")
        .await
        .poll
        .closed
        .expect("closed");
    assert_eq!(
        (closed.reason, closed.by, closed.outcome, closed.winner),
        (
            CloseReason::Closed,
            Some(uid("u0")),
            PollOutcome::Decided,
            Some(1)
        )
    );

    // A tie and no votes: closed, announced as such, the meetup stays.
    let tie = poll(
        &store,
        new_poll(app, "u1", room, PollKind::Reschedule, &times, Some(m)),
    )
    .await;
    run(&store, vote(app, "u1", room, tie, &[0])).await;
    run(&store, vote(app, "u2", room, tie, &[1])).await;
    let log = log_len(&store, app).await;
    run(&store, close(app, "u1", room, tie)).await;
    let none = poll(
        &store,
        new_poll(
            app,
            "u1",
            room,
            PollKind::Relocate,
            &["Moon", "Mars"],
            Some(m),
        ),
    )
    .await;
    run(&store, close(app, "u1", room, none)).await;
    let logged: Vec<&'static str> = events_since(&store, app, log)
        .await
        .iter()
        .map(|e| e.body.type_name())
        .collect();
    assert_eq!(logged, ["poll_closed", "poll_created", "poll_closed"]);
    let outcome = |p| {
        let store = store.clone();
        async move {
            poll_view(&store, app, room, p, "u0")
                .await
                .poll
                .closed
                .expect("closed")
        }
    };
    let c = outcome(tie).await;
    assert_eq!((c.outcome, c.winner), (PollOutcome::Tie, None));
    let c = outcome(none).await;
    assert_eq!((c.outcome, c.winner), (PollOutcome::NoVotes, None));
    let v = view(&store, app, room, m, "u0").await;
    assert_eq!(
        (v.meetup.takes_place_on, v.meetup.location.as_str()),
        (t2, "Pier")
    );
    let tl = timeline(&store, app, room).await;
    let a = tl[tl.len() - 1].announcement.as_ref().expect("data");
    assert_eq!(a["outcome"], "no_votes");
}

/// A poll's creator, its meetup's organizer and room admins may close it; other members may
/// not, nor non-members; closing a closed poll logs nothing.
pub async fn polls_close_by_creator_organizer_or_admin(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "pclose", 6).await;
    let room = group(
        &store,
        app,
        "u0",
        &["u1", "u2", "u3", "u4"],
        Visibility::Public,
    )
    .await;
    run(&store, make_admin(app, "u0", room, "u1")).await;
    let m = meetup(
        &store,
        app,
        "u2",
        room,
        "gig",
        Timestamp(Timestamp::now().0 + DAY),
    )
    .await;
    let by_meetup = |actor: &str| new_poll(app, actor, room, PollKind::Generic, &GENERIC3, Some(m));
    let plain = |actor: &str| new_poll(app, actor, room, PollKind::Generic, &GENERIC3, None);
    let p1 = poll(&store, by_meetup("u3")).await;
    let p2 = poll(&store, by_meetup("u3")).await;
    let p3 = poll(&store, plain("u3")).await;
    let p4 = poll(&store, plain("u4")).await;
    for p in [p1, p2, p3] {
        refused(
            &store,
            app,
            room,
            close(app, "u4", room, p),
            ErrorCode::NotAllowed,
        )
        .await;
        refused(
            &store,
            app,
            room,
            close(app, "u5", room, p),
            ErrorCode::NotAMember,
        )
        .await;
    }
    // The organizer of no meetup of p3 has no say over it.
    refused(
        &store,
        app,
        room,
        close(app, "u2", room, p3),
        ErrorCode::NotAllowed,
    )
    .await;
    refused(
        &store,
        app,
        room,
        close(app, "u3", room, PollNumber(9)),
        ErrorCode::PollNotFound,
    )
    .await;
    run(&store, close(app, "u3", room, p1)).await;
    run(&store, close(app, "u2", room, p2)).await;
    run(&store, close(app, "u1", room, p3)).await;
    run(&store, close(app, "u0", room, p4)).await;
    for (p, by) in [(p1, "u3"), (p2, "u2"), (p3, "u1"), (p4, "u0")] {
        let c = poll_view(&store, app, room, p, "u4")
            .await
            .poll
            .closed
            .expect("closed");
        assert_eq!(
            (c.reason, c.by),
            (CloseReason::Closed, Some(uid(by))),
            "poll {p}"
        );
        assert_eq!(c.outcome, PollOutcome::NoVotes);
    }
    unchanged(&store, app, room, close(app, "u3", room, p1)).await;
    assert_eq!(closings(&store, app, room, p1).await.len(), 1);
}

/// A poll past its deadline refuses votes at once and gives no alert; `due_polls` lists it
/// until the server's close (no actor) records it with reason `deadline`. The server's close
/// of a poll not yet due does nothing.
pub async fn poll_deadline_closes_at_once(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "pdue", 3).await;
    let room = group(&store, app, "u0", &["u1", "u2"], Visibility::Private).await;
    // Long enough for the vote and the read that follow on a busy machine.
    let deadline = Timestamp(Timestamp::now().0 + 2500);
    let p = poll(
        &store,
        CreatePoll {
            closes_at: Some(deadline),
            ..new_poll(app, "u0", room, PollKind::Generic, &GENERIC3, None)
        },
    )
    .await;
    run(&store, vote(app, "u0", room, p, &[2])).await;
    let before = store
        .alerts(app, &uid("u1"), Timestamp::now(), None, 10)
        .await
        .expect("alerts");
    assert!(before.rows.iter().any(|a| a.poll == p), "{before:?}");
    let later = Timestamp(Timestamp::now().0 + 3_600_000);
    let soon = Timestamp(Timestamp::now().0 + 1_800_000);
    let p_later = poll(
        &store,
        CreatePoll {
            closes_at: Some(later),
            ..new_poll(app, "u0", room, PollKind::Generic, &GENERIC3, None)
        },
    )
    .await;
    let p_soon = poll(
        &store,
        CreatePoll {
            closes_at: Some(soon),
            ..new_poll(app, "u0", room, PollKind::Generic, &GENERIC3, None)
        },
    )
    .await;
    // The server's close before the deadline changes nothing.
    let server_close = |poll| {
        Command::ClosePoll(ClosePoll {
            app,
            actor: None,
            room,
            poll,
        })
    };
    unchanged(&store, app, room, server_close(p_later)).await;

    // Wait for the deadline to pass on the clock (not for an event: there is none).
    let wait = deadline.0 + 50 - Timestamp::now().0;
    if wait > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
    }
    let now = Timestamp::now();
    refused(
        &store,
        app,
        room,
        vote(app, "u1", room, p, &[0]),
        ErrorCode::PollClosed,
    )
    .await;
    refused(
        &store,
        app,
        room,
        vote(app, "u0", room, p, &[]),
        ErrorCode::PollClosed,
    )
    .await;
    let alerts = store
        .alerts(app, &uid("u1"), now, None, 10)
        .await
        .expect("alerts");
    assert!(alerts.rows.iter().all(|a| a.poll != p), "{alerts:?}");
    let rooms = store
        .rooms_of_user(app, &uid("u1"), crate::model::MemberState::Joined, None, 10)
        .await
        .expect("rooms");
    assert_eq!(rooms.rows[0].alerts_count, 2, "the two polls still open");
    let due = store.due_polls(now, 100).await.expect("due polls");
    assert_eq!(due, [(app, room, p)]);
    // Listed by deadline, oldest first; a deadline equal to `now` is due.
    let due = store.due_polls(later, 100).await.expect("due polls");
    assert_eq!(
        due,
        [(app, room, p), (app, room, p_soon), (app, room, p_later)]
    );
    assert_eq!(store.due_polls(later, 2).await.expect("due polls").len(), 2);
    let v = poll_view(&store, app, room, p, "u0").await;
    assert_eq!(v.poll.closed, None, "no closing event yet");

    let log = log_len(&store, app).await;
    run(&store, server_close(p)).await;
    let logged: Vec<EventBody> = events_since(&store, app, log)
        .await
        .into_iter()
        .map(|e| e.body)
        .collect();
    assert!(
        matches!(
            &logged[..],
            [EventBody::PollClosed {
                by: None,
                reason: CloseReason::Deadline,
                outcome: PollOutcome::Decided,
                winner: Some(2),
                ..
            }]
        ),
        "{logged:?}"
    );
    let c = poll_view(&store, app, room, p, "u0")
        .await
        .poll
        .closed
        .expect("closed");
    assert_eq!(
        (c.reason, c.by, c.winner),
        (CloseReason::Deadline, None, Some(2))
    );
    assert!(
        store
            .due_polls(Timestamp::now(), 100)
            .await
            .expect("due polls")
            .is_empty()
    );
    unchanged(&store, app, room, server_close(p)).await;
    // Closed for good: later deadlines are still due in their turn, this one no more.
    assert_eq!(
        store.due_polls(later, 100).await.expect("due polls"),
        [(app, room, p_soon), (app, room, p_later)]
    );
}

/// Cancelling a meetup closes its open polls (reason `meetup_cancelled`, nothing moved),
/// leaves other polls open, and a cancelled meetup takes no new poll.
pub async fn cancelling_a_meetup_closes_its_polls(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "pcancel", 3).await;
    let room = group(&store, app, "u0", &["u1", "u2"], Visibility::Private).await;
    let now = Timestamp::now();
    let m = meetup(&store, app, "u0", room, "trip", Timestamp(now.0 + DAY)).await;
    let other = meetup(&store, app, "u0", room, "other", Timestamp(now.0 + DAY)).await;
    let times = [
        Timestamp(now.0 + 2 * DAY).to_rfc3339(),
        Timestamp(now.0 + 3 * DAY).to_rfc3339(),
    ];
    let times: Vec<&str> = times.iter().map(String::as_str).collect();
    let resched = poll(
        &store,
        new_poll(app, "u1", room, PollKind::Reschedule, &times, Some(m)),
    )
    .await;
    let reloc = poll(
        &store,
        new_poll(
            app,
            "u1",
            room,
            PollKind::Relocate,
            &["Lake", "Sea"],
            Some(m),
        ),
    )
    .await;
    let done = poll(
        &store,
        new_poll(app, "u1", room, PollKind::Generic, &GENERIC3, Some(m)),
    )
    .await;
    let free = poll(
        &store,
        new_poll(app, "u1", room, PollKind::Generic, &GENERIC3, None),
    )
    .await;
    let theirs = poll(
        &store,
        new_poll(app, "u1", room, PollKind::Generic, &GENERIC3, Some(other)),
    )
    .await;
    run(&store, close(app, "u1", room, done)).await;
    run(&store, vote(app, "u1", room, reloc, &[1])).await;
    run(&store, vote(app, "u2", room, resched, &[0])).await;
    let log = log_len(&store, app).await;
    run(&store, cancel(app, "u0", room, m)).await;
    let logged: Vec<EventBody> = events_since(&store, app, log)
        .await
        .into_iter()
        .map(|e| e.body)
        .collect();
    let kinds: Vec<&str> = logged.iter().map(|b| b.type_name()).collect();
    assert_eq!(kinds, ["meetup_cancelled", "poll_closed", "poll_closed"]);
    for p in [resched, reloc] {
        let c = poll_view(&store, app, room, p, "u0")
            .await
            .poll
            .closed
            .expect("closed");
        assert_eq!(c.reason, CloseReason::MeetupCancelled, "poll {p}");
    }
    let v = view(&store, app, room, m, "u0").await;
    assert!(v.meetup.cancelled);
    assert_eq!(
        (v.meetup.location.as_str(), v.meetup.takes_place_on),
        ("trip place", Timestamp(now.0 + DAY))
    );
    for p in [free, theirs] {
        assert_eq!(
            poll_view(&store, app, room, p, "u0").await.poll.closed,
            None,
            "poll {p}"
        );
    }
    assert_eq!(closings(&store, app, room, done).await.len(), 1);
    let alerts = store
        .alerts(app, &uid("u2"), Timestamp::now(), None, 10)
        .await
        .expect("alerts");
    let polls: Vec<_> = alerts.rows.iter().map(|a| a.poll).collect();
    assert_eq!(polls, [free, theirs]);
    let late = new_poll(app, "u1", room, PollKind::Relocate, &["a", "b"], Some(m));
    refused(
        &store,
        app,
        room,
        Command::CreatePoll(late),
        ErrorCode::MeetupCancelled,
    )
    .await;
}
