//! Meetups and polls made, answered, voted on, closed and cancelled in one batch, mixed with
//! sends and a room deletion: they are decided in memory and written together at the end, so
//! each later command must read what the earlier ones did (a meetup just made, an answer
//! given before a poll chooses its voters, a ballot replaced, a poll closed by its last
//! vote), and the rows written must be those a replay writes one event at a time.

use super::*;
use confab_core::ids::MeetupNumber;

fn poll_for(
    app: AppId,
    who: &str,
    room: RoomNumber,
    meetup: i64,
    kind: PollKind,
    choices: &[&str],
) -> Command {
    match poll(app, who, room, kind, choices) {
        Command::CreatePoll(p) => Command::CreatePoll(CreatePoll {
            meetup: Some(MeetupNumber(meetup)),
            ..p
        }),
        _ => unreachable!("a poll"),
    }
}

fn numbered(a: &Answer) -> i64 {
    match a {
        Ok(Outcome::Meetup(m)) => m.0,
        Ok(Outcome::Poll(p)) => p.0,
        other => panic!("expected a meetup or a poll, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn meetups_and_polls_in_one_batch_read_their_own_writes() {
    let (store, db) = common::fresh().await;
    let app = confab_core::conformance::app_with_users(&store, "m", 4).await;
    let room = group_of_four(&store, app, "plans", Visibility::Private).await;
    let other = group_of_four(&store, app, "gone", Visibility::Private).await;
    let soon = Timestamp(Timestamp::now().0 + 10 * 86_400_000);
    // A meetup stored before the batch, so its poll is the room's second.
    store
        .execute(meetup(app, "u1", room, "Lunch", soon))
        .await
        .expect("meetup 1");
    store
        .execute(poll_for(app, "u1", room, 1, PollKind::Generic, &["x", "y"]))
        .await
        .expect("poll 1");
    let t1 = Timestamp(soon.0 + 86_400_000).to_rfc3339();
    let t2 = Timestamp(soon.0 + 2 * 86_400_000).to_rfc3339();

    let answers = in_one_batch(
        &db,
        &store,
        app,
        vec![
            /* 0 */ send(app, "u1", room, "a", None, None),
            /* 1 */ meetup(app, "u0", room, "Dinner", soon),
            /* 2 */ rsvp(app, "u1", room, 2, Rsvp::Maybe),
            /* 3 */ rsvp(app, "u2", room, 2, Rsvp::No),
            // Voters: the joined members but u2, who declined just before.
            /* 4 */
            poll_for(app, "u0", room, 2, PollKind::Relocate, &["Cafe", "Park"]),
            /* 5 */ vote(app, "u0", room, 2, &[1]),
            /* 6 */ vote(app, "u3", room, 2, &[0]),
            /* 7 */ vote(app, "u3", room, 2, &[]),
            /* 8 */ vote(app, "u1", room, 2, &[0]),
            /* 9 */ vote(app, "u1", room, 2, &[1]),
            /* 10 */ vote(app, "u2", room, 2, &[1]),
            /* 11 */ send(app, "u3", room, "b", None, None),
            // The last vote closes poll 2 and moves meetup 2 to the park.
            /* 12 */
            vote(app, "u3", room, 2, &[1]),
            /* 13 */ vote(app, "u0", room, 2, &[0]),
            /* 14 */ meetup(app, "u1", room, "Walk", soon),
            /* 15 */ poll_for(app, "u1", room, 3, PollKind::Reschedule, &[&t1, &t2]),
            /* 16 */ vote(app, "u2", room, 3, &[0]),
            // Cancelling meetup 3 closes poll 3; meetup 1's poll stays open.
            /* 17 */
            Command::CancelMeetup(CancelMeetup {
                app,
                actor: user("u1"),
                room,
                meetup: MeetupNumber(3),
            }),
            /* 18 */ vote(app, "u2", room, 1, &[0]),
            /* 19 */ meetup(app, "u0", other, "Gone", soon),
            /* 20 */ poll_for(app, "u0", other, 1, PollKind::Generic, &["p", "q"]),
            /* 21 */
            Command::DeleteRoom {
                app,
                actor: user("u0"),
                room: other,
            },
            /* 22 */ rsvp(app, "u1", other, 1, Rsvp::Yes),
            /* 23 */ send(app, "u2", room, "c", None, None),
            /* 24 */ rsvp(app, "u3", room, 2, Rsvp::No),
        ],
    )
    .await;
    for (i, a) in answers.iter().enumerate() {
        match i {
            10 => assert_eq!(refused(a), ErrorCode::NotEligible, "u2 declined first"),
            13 => assert_eq!(refused(a), ErrorCode::PollClosed, "the last vote closed it"),
            22 => assert_eq!(refused(a), ErrorCode::RoomNotFound, "deleted just before"),
            _ => assert!(a.is_ok(), "command {i}: {a:?}"),
        }
    }
    let numbers: Vec<i64> = [1, 4, 14, 15, 19, 20]
        .iter()
        .map(|i| numbered(&answers[*i]))
        .collect();
    assert_eq!(numbers, [2, 2, 3, 3, 1, 1], "meetup and poll numbers");

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
    let at = item(&answers[0]).0.created_at;
    let announced: Vec<&str> = items
        .iter()
        .filter(|i| i.kind == ItemKind::Announcement && i.created_at == at)
        .filter_map(|i| i.announcement.as_ref()?.get("type")?.as_str())
        .collect();
    assert_eq!(
        announced,
        [
            "meetup_created",
            "poll_created",
            "poll_closed",
            "meetup_moved",
            "meetup_created",
            "poll_created",
            "meetup_cancelled",
            "poll_closed",
        ],
        "{items:?}"
    );

    let p2 = store
        .poll(app, room, PollNumber(2), &user("u1"))
        .await
        .expect("poll")
        .expect("poll 2");
    let closed = p2.poll.closed.clone().expect("closed");
    assert_eq!(
        (closed.reason, closed.outcome, closed.winner),
        (CloseReason::AllVoted, PollOutcome::Decided, Some(1))
    );
    assert_eq!(p2.poll.tallies, [0, 3]);
    assert_eq!((p2.poll.voters_count, p2.poll.voted_count), (3, 3));
    assert_eq!(p2.voters, [user("u0"), user("u1"), user("u3")]);
    assert_eq!(p2.my_vote.as_deref(), Some(&[1][..]));
    let m2 = store
        .meetup(app, room, MeetupNumber(2), &user("u1"))
        .await
        .expect("meetup")
        .expect("meetup 2");
    assert_eq!(
        (m2.meetup.location.as_str(), m2.rsvp),
        ("Park", Rsvp::Maybe)
    );
    assert_eq!(
        m2.counts,
        RsvpCounts {
            yes: 1,
            no: 2,
            maybe: 1,
            none: 0
        }
    );
    let p3 = store
        .poll(app, room, PollNumber(3), &user("u2"))
        .await
        .expect("poll")
        .expect("poll 3");
    let closed = p3.poll.closed.clone().expect("closed");
    assert_eq!(
        (closed.reason, closed.by, closed.outcome),
        (
            CloseReason::MeetupCancelled,
            Some(user("u1")),
            PollOutcome::Decided
        )
    );
    assert_eq!(p3.poll.tallies, [1, 0]);
    let m3 = store
        .meetup(app, room, MeetupNumber(3), &user("u1"))
        .await
        .expect("meetup")
        .expect("meetup 3");
    assert!(m3.meetup.cancelled);
    assert_eq!(
        m3.meetup.takes_place_on, soon,
        "a cancelled meetup is not moved"
    );
    // Poll 1 (stored before) is still open: u0, u1 and u3 have still to vote on it.
    let p1 = store
        .poll(app, room, PollNumber(1), &user("u2"))
        .await
        .expect("poll")
        .expect("poll 1");
    assert!(p1.poll.closed.is_none());
    assert_eq!(p1.my_vote.as_deref(), Some(&[0][..]));
    for (who, waiting) in [("u0", 1), ("u1", 1), ("u2", 0), ("u3", 1)] {
        let alerts = store
            .alerts(app, &user(who), Timestamp::now(), None, 10)
            .await
            .expect("alerts");
        let polls: Vec<(RoomNumber, PollNumber)> =
            alerts.rows.iter().map(|a| (a.room, a.poll)).collect();
        assert_eq!(polls.len(), waiting, "{who}: {polls:?}");
        assert!(polls.iter().all(|p| *p == (room, PollNumber(1))), "{who}");
    }
    assert!(
        store
            .access(app, other, None)
            .await
            .expect("access")
            .is_none(),
        "the other room is deleted"
    );

    replay_equals_live(
        &store,
        &db,
        app,
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
    .await;
}
