//! Conformance cases for polls: eligible voters fixed at creation, votes (replace, withdraw,
//! refusals that leave no trace), closing (by the last vote, by hand, at the deadline, with the
//! meetup's cancellation) and the meetup moved by a decided poll.

use super::meetups::{
    DAY, all_changes, announced, cancel, events_since, log_len, make_admin, meetup, poll_view,
    refused, run, set_rsvp, timeline, uid, unchanged, view, vote,
};
use super::{app_with_users, group, whole_log};
use crate::command::{ClosePoll, Command, CreatePoll, Outcome};
use crate::error::ErrorCode;
use crate::event::EventBody;
use crate::ids::{AppId, MeetupNumber, PollNumber, RoomNumber, Timestamp};
use crate::meetups::{CloseReason, PollKind, PollOutcome, Results, Rsvp};
use crate::model::Visibility;
use crate::store::Store;
use std::sync::Arc;

/// A poll of one choice each (`max_selections` 1), results disclosed, no deadline.
pub(super) fn new_poll(
    app: AppId,
    actor: &str,
    room: RoomNumber,
    kind: PollKind,
    choices: &[&str],
    meetup: Option<MeetupNumber>,
) -> CreatePoll {
    CreatePoll {
        app,
        actor: uid(actor),
        room,
        question: format!("{} poll?", kind.as_str()),
        kind,
        choices: choices.iter().map(|c| (*c).to_owned()).collect(),
        max_selections: 1,
        results: Results::Disclosed,
        closes_at: None,
        meetup,
    }
}

pub(super) async fn poll(store: &Arc<dyn Store>, cmd: CreatePoll) -> PollNumber {
    match run(store, Command::CreatePoll(cmd)).await {
        Outcome::Poll(p) => p,
        other => panic!("expected a poll, got {other:?}"),
    }
}

pub(super) fn close(app: AppId, actor: &str, room: RoomNumber, p: PollNumber) -> Command {
    Command::ClosePoll(ClosePoll {
        app,
        actor: Some(uid(actor)),
        room,
        poll: p,
    })
}

/// The `PollClosed` events of a poll in the app's log.
pub(super) async fn closings(
    store: &Arc<dyn Store>,
    app: AppId,
    room: RoomNumber,
    p: PollNumber,
) -> Vec<EventBody> {
    whole_log(store, app)
        .await
        .into_iter()
        .map(|e| e.body)
        .filter(|b| matches!(b, EventBody::PollClosed { room: r, poll, .. } if *r == room && *poll == p))
        .collect()
}

const GENERIC3: [&str; 3] = ["tea", "coffee", "juice"];

/// Eligible voters are the joined members when the poll is made (for a meetup poll, those
/// who did not answer `no`); a later joiner is not one. Creation is announced; refused
/// creations take no number and leave no trace.
pub async fn poll_voters_are_fixed_at_creation(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "pvoters", 6).await;
    let room = group(&store, app, "u0", &["u1", "u2", "u3"], Visibility::Public).await;
    let now = Timestamp::now();
    let m = meetup(&store, app, "u0", room, "hike", Timestamp(now.0 + DAY)).await;
    run(&store, set_rsvp(app, "u2", room, m, Rsvp::No)).await;
    run(&store, set_rsvp(app, "u3", room, m, Rsvp::Maybe)).await;
    let log = log_len(&store, app).await;
    let p1 = poll(
        &store,
        new_poll(app, "u1", room, PollKind::Generic, &GENERIC3, None),
    )
    .await;
    assert_eq!(p1, PollNumber(1));
    let times = [Timestamp(now.0 + 2 * DAY), Timestamp(now.0 + 3 * DAY)].map(|t| t.to_rfc3339());
    let times: Vec<&str> = times.iter().map(String::as_str).collect();
    let p2 = poll(
        &store,
        new_poll(app, "u1", room, PollKind::Reschedule, &times, Some(m)),
    )
    .await;
    assert_eq!(p2, PollNumber(2));

    let v = poll_view(&store, app, room, p1, "u0").await;
    assert_eq!(v.voters, ["u0", "u1", "u2", "u3"].map(uid));
    assert_eq!((v.poll.voters_count, v.poll.voted_count), (4, 0));
    assert_eq!(v.poll.tallies, [0, 0, 0]);
    assert_eq!(v.poll.creator, uid("u1"));
    assert_eq!(v.poll.closed, None);
    assert_eq!(v.my_vote, Some(vec![]));
    let v = poll_view(&store, app, room, p2, "u2").await;
    assert_eq!(
        v.voters,
        ["u0", "u1", "u3"].map(uid),
        "u2 declined the meetup"
    );
    assert_eq!(v.my_vote, None);
    assert_eq!(
        (v.poll.kind, v.poll.meetup),
        (PollKind::Reschedule, Some(m))
    );
    assert_eq!(v.poll.choices, times);
    // Announced, a change each, in the log.
    let tl = timeline(&store, app, room).await;
    assert_eq!(announced(&tl[tl.len() - 2]), "poll_created");
    assert_eq!(announced(&tl[tl.len() - 1]), "poll_created");
    let logged = events_since(&store, app, log).await;
    assert!(matches!(
        &logged[1].body,
        EventBody::PollCreated { voters, meetup: Some(_), .. } if *voters == ["u0", "u1", "u3"].map(uid)
    ));
    let changes = all_changes(&store, app, room).await;
    assert!(matches!(
        &changes[changes.len() - 1].body,
        EventBody::PollCreated { .. }
    ));

    // A later joiner is not eligible: no vote, no alert, not among the voters.
    run(
        &store,
        Command::Join {
            app,
            actor: uid("u4"),
            room,
        },
    )
    .await;
    let v = poll_view(&store, app, room, p1, "u4").await;
    assert_eq!((v.my_vote, v.poll.voters_count), (None, 4));
    assert_eq!(v.voters.len(), 4);
    refused(
        &store,
        app,
        room,
        vote(app, "u4", room, p1, &[0]),
        ErrorCode::NotEligible,
    )
    .await;
    refused(
        &store,
        app,
        room,
        vote(app, "u2", room, p2, &[0]),
        ErrorCode::NotEligible,
    )
    .await;
    let alerts = store
        .alerts(app, &uid("u4"), now, None, 10)
        .await
        .expect("alerts");
    assert!(alerts.rows.is_empty(), "{alerts:?}");

    // Refused creations.
    let past = CreatePoll {
        closes_at: Some(Timestamp(Timestamp::now().0 - 1000)),
        ..new_poll(app, "u1", room, PollKind::Generic, &GENERIC3, None)
    };
    refused(
        &store,
        app,
        room,
        Command::CreatePoll(past),
        ErrorCode::InvalidInput,
    )
    .await;
    let no_meetup = new_poll(app, "u1", room, PollKind::Relocate, &["a", "b"], None);
    refused(
        &store,
        app,
        room,
        Command::CreatePoll(no_meetup),
        ErrorCode::InvalidInput,
    )
    .await;
    let unknown = new_poll(
        app,
        "u1",
        room,
        PollKind::Relocate,
        &["a", "b"],
        Some(MeetupNumber(9)),
    );
    refused(
        &store,
        app,
        room,
        Command::CreatePoll(unknown),
        ErrorCode::MeetupNotFound,
    )
    .await;
    let outsider = new_poll(app, "u5", room, PollKind::Generic, &GENERIC3, None);
    refused(
        &store,
        app,
        room,
        Command::CreatePoll(outsider),
        ErrorCode::NotAMember,
    )
    .await;
    let p3 = poll(
        &store,
        new_poll(app, "u4", room, PollKind::Generic, &GENERIC3, None),
    )
    .await;
    assert_eq!(p3, PollNumber(3), "refusals take no number");
    assert_eq!(poll_view(&store, app, room, p3, "u4").await.voters.len(), 5);
}

/// A vote replaces the voter's earlier one, an empty vote withdraws it; the same vote or
/// withdrawal twice logs nothing. A secret ballot's change says so.
pub async fn votes_replace_and_withdraw(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "pvote", 3).await;
    let room = group(&store, app, "u0", &["u1", "u2"], Visibility::Private).await;
    let p = poll(
        &store,
        CreatePoll {
            max_selections: 2,
            ..new_poll(app, "u0", room, PollKind::Generic, &GENERIC3, None)
        },
    )
    .await;
    let state = |who: &'static str| {
        let store = store.clone();
        async move {
            let v = poll_view(&store, app, room, p, who).await;
            (v.poll.tallies, v.poll.voted_count, v.my_vote)
        }
    };
    let log = log_len(&store, app).await;
    run(&store, vote(app, "u1", room, p, &[2, 0])).await;
    assert_eq!(state("u1").await, (vec![1, 0, 1], 1, Some(vec![0, 2])));
    let logged = events_since(&store, app, log).await;
    assert!(
        matches!(
            &logged[..],
            [crate::event::Event { body: EventBody::VoteCast { choices, secret: false, .. }, .. }]
                if *choices == [0, 2]
        ),
        "{logged:?}"
    );
    run(&store, vote(app, "u1", room, p, &[1])).await;
    assert_eq!(state("u1").await, (vec![0, 1, 0], 1, Some(vec![1])));
    unchanged(&store, app, room, vote(app, "u1", room, p, &[1])).await;
    run(&store, vote(app, "u2", room, p, &[1, 2])).await;
    assert_eq!(state("u2").await, (vec![0, 2, 1], 2, Some(vec![1, 2])));
    run(&store, vote(app, "u1", room, p, &[])).await;
    assert_eq!(state("u1").await, (vec![0, 1, 1], 1, Some(vec![])));
    let changes = all_changes(&store, app, room).await;
    assert!(
        matches!(&changes[changes.len() - 1].body, EventBody::VoteWithdrawn { user, .. } if *user == uid("u1"))
    );
    unchanged(&store, app, room, vote(app, "u1", room, p, &[])).await;
    unchanged(&store, app, room, vote(app, "u0", room, p, &[])).await;
    assert_eq!(
        poll_view(&store, app, room, p, "u0").await.poll.closed,
        None
    );
    // Undisclosed results: the change tells a secret vote.
    let secret = poll(
        &store,
        CreatePoll {
            results: Results::Undisclosed,
            ..new_poll(app, "u0", room, PollKind::Generic, &GENERIC3, None)
        },
    )
    .await;
    run(&store, vote(app, "u2", room, secret, &[0])).await;
    let changes = all_changes(&store, app, room).await;
    assert!(matches!(
        &changes[changes.len() - 1].body,
        EventBody::VoteCast { secret: true, .. }
    ));
    let v = poll_view(&store, app, room, secret, "u2").await;
    assert_eq!(
        (v.poll.results, v.my_vote),
        (Results::Undisclosed, Some(vec![0]))
    );
}

/// Every refused vote leaves the log, the changes, the tallies and the voter's standing vote
/// as they were.
pub async fn refused_votes_leave_no_trace(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "prefuse", 6).await;
    let room = group(&store, app, "u0", &["u1", "u2", "u3"], Visibility::Public).await;
    let p = poll(
        &store,
        CreatePoll {
            max_selections: 2,
            ..new_poll(app, "u0", room, PollKind::Generic, &GENERIC3, None)
        },
    )
    .await;
    let done = poll(
        &store,
        new_poll(app, "u0", room, PollKind::Generic, &GENERIC3, None),
    )
    .await;
    run(&store, close(app, "u0", room, done)).await;
    run(&store, vote(app, "u1", room, p, &[0])).await;
    run(
        &store,
        Command::Join {
            app,
            actor: uid("u4"),
            room,
        },
    )
    .await;
    let before = poll_view(&store, app, room, p, "u1").await;
    for (actor, poll, choices, code) in [
        ("u4", p, vec![0], ErrorCode::NotEligible),
        ("u5", p, vec![0], ErrorCode::NotAMember),
        ("u1", done, vec![0], ErrorCode::PollClosed),
        ("u1", p, vec![3], ErrorCode::ChoiceOutOfRange),
        ("u1", p, vec![0, 1, 2], ErrorCode::TooManyChoices),
        ("u1", p, vec![1, 1], ErrorCode::InvalidInput),
        ("u2", p, vec![2, 2], ErrorCode::InvalidInput),
        ("u2", PollNumber(9), vec![0], ErrorCode::PollNotFound),
    ] {
        refused(
            &store,
            app,
            room,
            vote(app, actor, room, poll, &choices),
            code,
        )
        .await;
    }
    let after = poll_view(&store, app, room, p, "u1").await;
    assert_eq!(after, before);
    assert_eq!(after.my_vote, Some(vec![0]));
    let closed = poll_view(&store, app, room, done, "u1").await;
    assert_eq!(
        (closed.poll.tallies, closed.my_vote),
        (vec![0, 0, 0], Some(vec![]))
    );
}

/// The vote that completes the poll closes it in the same command: one `PollClosed` after
/// it, reason `all_voted`, with the tallies, outcome and winner, announced; the poll then
/// refuses votes and withdrawals.
pub async fn last_vote_closes_the_poll(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "plast", 3).await;
    let room = group(&store, app, "u0", &["u1", "u2"], Visibility::Private).await;
    let p = poll(
        &store,
        new_poll(app, "u0", room, PollKind::Generic, &GENERIC3, None),
    )
    .await;
    run(&store, vote(app, "u0", room, p, &[1])).await;
    run(&store, vote(app, "u1", room, p, &[1])).await;
    assert_eq!(
        poll_view(&store, app, room, p, "u0").await.poll.closed,
        None
    );
    let log = log_len(&store, app).await;
    run(&store, vote(app, "u2", room, p, &[0])).await;
    let logged: Vec<EventBody> = events_since(&store, app, log)
        .await
        .into_iter()
        .map(|e| e.body)
        .collect();
    match &logged[..] {
        [
            EventBody::VoteCast { user, .. },
            EventBody::PollClosed {
                by: None,
                reason: CloseReason::AllVoted,
                tallies,
                outcome: PollOutcome::Decided,
                winner: Some(1),
                winning_choice: Some(w),
                ..
            },
        ] => {
            assert_eq!(
                (user, tallies.as_slice(), w.as_str()),
                (&uid("u2"), &[1, 2, 0][..], "coffee")
            );
        }
        other => panic!("expected the vote and the closing, got {other:?}"),
    }
    let v = poll_view(&store, app, room, p, "u1").await;
    let closed = v.poll.closed.expect("closed");
    assert_eq!(
        (closed.reason, closed.by, closed.outcome, closed.winner),
        (CloseReason::AllVoted, None, PollOutcome::Decided, Some(1))
    );
    assert_eq!((v.poll.tallies, v.poll.voted_count), (vec![1, 2, 0], 3));
    let tl = timeline(&store, app, room).await;
    assert_eq!(announced(&tl[tl.len() - 1]), "poll_closed");
    let changes = all_changes(&store, app, room).await;
    assert!(matches!(
        &changes[changes.len() - 1].body,
        EventBody::PollClosed { .. }
    ));
    refused(
        &store,
        app,
        room,
        vote(app, "u2", room, p, &[1]),
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
    assert_eq!(closings(&store, app, room, p).await.len(), 1);
    // Open polls list first.
    let first_open = poll(
        &store,
        new_poll(app, "u1", room, PollKind::Generic, &GENERIC3, None),
    )
    .await;
    let newest = poll(
        &store,
        new_poll(app, "u1", room, PollKind::Generic, &GENERIC3, None),
    )
    .await;
    let listed = store
        .polls(app, room, &uid("u1"), None, 10)
        .await
        .expect("polls");
    let order: Vec<_> = listed
        .rows
        .iter()
        .map(|v| (v.poll.number, v.poll.closed.is_some()))
        .collect();
    assert_eq!(order, [(newest, false), (first_open, false), (p, true)]);
    assert!(listed.rows.iter().all(|v| v.voters.is_empty()));
    // Paged by cursor.
    let first = store
        .polls(app, room, &uid("u1"), None, 2)
        .await
        .expect("polls");
    assert!(first.has_more);
    let last = first.rows.last().expect("a poll");
    let cursor = (last.poll.closed.is_some(), last.poll.number);
    let rest = store
        .polls(app, room, &uid("u1"), Some(cursor), 2)
        .await
        .expect("polls");
    let numbers: Vec<_> = rest.rows.iter().map(|v| v.poll.number).collect();
    assert_eq!((numbers, rest.has_more), (vec![p], false));
}

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
    let deadline = Timestamp(Timestamp::now().0 + 1500);
    let p = poll(
        &store,
        CreatePoll {
            closes_at: Some(deadline),
            ..new_poll(app, "u0", room, PollKind::Generic, &GENERIC3, None)
        },
    )
    .await;
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
    run(&store, vote(app, "u0", room, p, &[2])).await;
    let before = store
        .alerts(app, &uid("u1"), Timestamp::now(), None, 10)
        .await
        .expect("alerts");
    assert!(before.rows.iter().any(|a| a.poll == p), "{before:?}");
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
