//! The gatherings of the random sequence of `rebuild_equals_live`: meetups, RSVPs, polls,
//! votes and closings, and the snapshot lines that read them back.

use super::rebuild::{Rng, USERS};
use super::user;
use crate::command::{
    CancelMeetup, ClosePoll, Command, CreateMeetup, CreatePoll, SetRsvp, UpdateMeetup, Vote,
};
use crate::ids::{AppId, MeetupNumber, PollNumber, RoomNumber, Timestamp, UserId};
use crate::meetups::{MeetupQuery, PollKind, Results, Rsvp};
use crate::model::MemberState;
use crate::store::Store;
use std::sync::Arc;

/// The `now` of every time-dependent read of a snapshot, so that the live and the rebuilt
/// snapshots ask the same questions. Random meetups take place around it; random poll
/// deadlines are far after it (and after the real clock, so polls are created).
pub(super) const SNAPSHOT_NOW: Timestamp = Timestamp(1_893_456_000_000);
pub(super) const FAR_DEADLINE: Timestamp = Timestamp(4_102_444_800_000);

/// The room where most random gatherings happen: the first room that exists, with its
/// joined members and how many meetups and polls it has.
pub(super) struct Gathered {
    room: RoomNumber,
    members: Vec<UserId>,
    meetups: i64,
    polls: i64,
}

pub(super) async fn gathered(store: &Arc<dyn Store>, app: AppId) -> Gathered {
    let viewer = user("u0");
    for n in 1..=200 {
        let room = RoomNumber(n);
        if store
            .access(app, room, None)
            .await
            .expect("access")
            .is_none()
        {
            continue;
        }
        let members = store
            .members(app, room, Some(MemberState::Joined), None, 100)
            .await
            .expect("members");
        let query = MeetupQuery {
            upcoming: false,
            now: SNAPSHOT_NOW,
            after: None,
        };
        let meetups = store.meetups(app, room, &viewer, query, 1000).await;
        let polls = store.polls(app, room, &viewer, None, 1000).await;
        return Gathered {
            room,
            members: members.rows.into_iter().map(|m| m.user).collect(),
            meetups: meetups.expect("meetups").rows.len() as i64,
            polls: polls.expect("polls").rows.len() as i64,
        };
    }
    Gathered {
        room: RoomNumber(1),
        members: Vec::new(),
        meetups: 0,
        polls: 0,
    }
}

/// A random meetup, RSVP, poll, vote or closing. Most go to the [`Gathered`] room by one of
/// its members, and name one of its newest meetups and polls: by a random user in a random
/// room, or naming any number, nearly all would be refused, and polls would seldom get votes.
pub(super) fn random_gathering(
    rng: &mut Rng,
    app: AppId,
    (room, actor): (RoomNumber, UserId),
    gathered: &Gathered,
) -> Command {
    const DAY: i64 = 86_400_000;
    let (meetups, polls) = (gathered.meetups, gathered.polls);
    let (room, actor) = match rng.below(4) {
        0 => (room, actor),
        _ if gathered.members.is_empty() => (gathered.room, actor),
        _ => {
            let i = rng.below(gathered.members.len() as u64) as usize;
            (gathered.room, gathered.members[i].clone())
        }
    };
    let recent = |rng: &mut Rng, last: i64| {
        if rng.below(4) == 0 {
            1 + rng.below(last as u64 + 1) as i64
        } else {
            (last - rng.below(3) as i64).max(1)
        }
    };
    let meetup = |rng: &mut Rng| MeetupNumber(recent(rng, meetups));
    let poll = PollNumber(recent(rng, polls));
    let when = |rng: &mut Rng| Timestamp(SNAPSHOT_NOW.0 + (rng.below(20) as i64 - 5) * DAY);
    match rng.below(10) {
        0 => Command::CreateMeetup(CreateMeetup {
            app,
            actor,
            room,
            name: format!("meet {}", rng.below(50)),
            location: format!("place {}", rng.below(5)),
            takes_place_on: when(rng),
            image_url: None,
        }),
        1 => Command::UpdateMeetup(UpdateMeetup {
            app,
            actor,
            room,
            meetup: meetup(rng),
            name: (rng.below(2) == 0).then(|| format!("meet {}", rng.below(50))),
            location: (rng.below(2) == 0).then(|| format!("place {}", rng.below(5))),
            takes_place_on: (rng.below(2) == 0).then(|| when(rng)),
            image_url: None,
        }),
        2 if rng.below(2) == 0 => Command::CancelMeetup(CancelMeetup {
            app,
            actor,
            room,
            meetup: meetup(rng),
        }),
        2 | 3 => Command::SetRsvp(SetRsvp {
            app,
            actor,
            room,
            meetup: meetup(rng),
            rsvp: [Rsvp::None, Rsvp::Yes, Rsvp::No, Rsvp::Maybe][rng.below(4) as usize],
        }),
        4 => {
            let kind = [PollKind::Generic, PollKind::Reschedule, PollKind::Relocate]
                [rng.below(3) as usize];
            let n = 2 + rng.below(3) as usize;
            let choices = (0..n)
                .map(|i| match kind {
                    PollKind::Reschedule => Timestamp(SNAPSHOT_NOW.0 + i as i64 * DAY).to_rfc3339(),
                    _ => format!("choice {i}"),
                })
                .collect();
            Command::CreatePoll(CreatePoll {
                app,
                actor,
                room,
                question: format!("question {}", rng.below(9)),
                kind,
                choices,
                max_selections: 1 + rng.below(n as u64) as u32,
                results: if rng.below(2) == 0 {
                    Results::Disclosed
                } else {
                    Results::Undisclosed
                },
                closes_at: (rng.below(2) == 0).then_some(FAR_DEADLINE),
                meetup: (kind != PollKind::Generic || rng.below(2) == 0).then(|| meetup(rng)),
            })
        }
        5..=8 => Command::Vote(Vote {
            app,
            actor,
            room,
            poll,
            // Mostly one choice (every poll has two at least); sometimes none (a withdrawal),
            // sometimes any, which may be out of range, repeated or too many (refused).
            choices: match rng.below(8) {
                0 | 1 => vec![],
                2 => (0..rng.below(4)).map(|_| rng.below(5) as u32).collect(),
                _ => vec![rng.below(2) as u32],
            },
        }),
        _ => Command::ClosePoll(ClosePoll {
            app,
            actor: (rng.below(5) != 0).then_some(actor),
            room,
            poll,
        }),
    }
}

/// A room's meetups and polls as each user sees them, and every poll with its voters.
pub(super) async fn gatherings(
    store: &Arc<dyn Store>,
    app: AppId,
    room: RoomNumber,
) -> Vec<String> {
    let mut out = Vec::new();
    let n = room.0;
    for i in 0..USERS {
        let u = user(&format!("u{i}"));
        for upcoming in [false, true] {
            let query = MeetupQuery {
                upcoming,
                now: SNAPSHOT_NOW,
                after: None,
            };
            let page = store
                .meetups(app, room, &u, query, 500)
                .await
                .expect("meetups");
            assert!(!page.has_more);
            out.push(format!("meetups {n} {u} {upcoming} {:?}", page.rows));
        }
        let page = store.polls(app, room, &u, None, 500).await.expect("polls");
        assert!(!page.has_more);
        out.push(format!("polls {n} {u} {:?}", page.rows));
        if i == 0 {
            for v in &page.rows {
                let one = store
                    .poll(app, room, v.poll.number, &u)
                    .await
                    .expect("poll");
                out.push(format!("poll {n} {one:?}"));
            }
        }
    }
    out
}
