//! Conformance cases for polls: eligible voters fixed at creation, votes (replace, withdraw,
//! refusals that leave no trace), the last vote closing the poll, and the listing.

use super::support::*;
use super::{app_with_users, group};
use crate::command::{Command, CreatePoll};
use crate::error::ErrorCode;
use crate::event::EventBody;
use crate::ids::{MeetupNumber, PollNumber, Timestamp};
use crate::meetups::{CloseReason, PollKind, PollOutcome, Results, Rsvp};
use crate::model::Visibility;
use crate::store::Store;
use std::sync::Arc;

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
