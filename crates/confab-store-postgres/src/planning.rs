//! Meetup and poll events projected in memory (`plans`), as `projection::meetups` and
//! `projection::polls` write them one event at a time, and the rules' reads of these rows:
//! answered from what the transaction knows, else read once (under the room's lock) and
//! then known. A poll's voters are the room's stored joined members with the memberships
//! this transaction owes laid over them, so choosing them writes nothing out either.

use crate::conn::Conn;
use crate::meetups::{tx_answers, tx_last_number as last_meetup, tx_meetup, tx_rsvp};
use crate::plans::Plans;
use crate::polls::{tx_ballot, tx_last_number as last_poll, tx_open_polls, tx_poll};
use crate::projection::missing;
use crate::rows;
use crate::tx::PgTx;
use confab_core::error::StoreError;
use confab_core::event::{Event, EventBody};
use confab_core::ids::{AppId, MeetupNumber, PollNumber, RoomNumber, UserId};
use confab_core::meetups::{Meetup, Poll, PollClose, Rsvp};
use confab_core::model::MemberState;
use confab_core::store::StoreResult;
use std::collections::BTreeSet;

impl PgTx<'_> {
    /// What the transaction knows (`known`), else what `read` finds, then remembered
    /// (`learn`).
    fn recall<V: Clone>(
        &mut self,
        known: impl FnOnce(&Plans) -> Option<V>,
        read: impl FnOnce(&mut Conn) -> StoreResult<V>,
        learn: impl FnOnce(&mut Plans, V),
    ) -> StoreResult<V> {
        if let Some(v) = known(&self.batch.pending.plans) {
            return Ok(v);
        }
        let v = read(self.c)?;
        learn(&mut self.batch.pending.plans, v.clone());
        Ok(v)
    }

    pub(crate) fn plan_meetup(
        &mut self,
        app: AppId,
        room: RoomNumber,
        number: MeetupNumber,
    ) -> StoreResult<Option<Meetup>> {
        let key = (app, room, number);
        self.recall(
            |p| p.meetup(&key),
            |c| tx_meetup(c, app, room, number),
            |p, m| p.know_meetup(key, m),
        )
    }

    pub(crate) fn plan_last_meetup(
        &mut self,
        app: AppId,
        room: RoomNumber,
    ) -> StoreResult<MeetupNumber> {
        self.recall(
            |p| p.last_meetup(&(app, room)),
            |c| last_meetup(c, app, room),
            |p, n| p.know_last_meetup((app, room), n),
        )
    }

    pub(crate) fn plan_rsvp(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
        user: &UserId,
    ) -> StoreResult<Rsvp> {
        let key = (app, room, meetup, user.clone());
        self.recall(
            |p| p.rsvp(&key),
            |c| tx_rsvp(c, app, room, meetup, user),
            |p, r| p.know_rsvp(key.clone(), r),
        )
    }

    pub(crate) fn plan_declined(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
    ) -> StoreResult<Vec<UserId>> {
        let key = (app, room, meetup);
        if let Some(d) = self.batch.pending.plans.declined(&key) {
            return Ok(d);
        }
        let answers = tx_answers(self.c, app, room, meetup)?;
        let plans = &mut self.batch.pending.plans;
        plans.know_answers(key, answers);
        plans
            .declined(&key)
            .ok_or_else(|| missing("a meetup's answers"))
    }

    /// The room's joined members: those stored, as this transaction's owed memberships
    /// leave them.
    pub(crate) fn plan_joined_members(
        &mut self,
        app: AppId,
        room: RoomNumber,
    ) -> StoreResult<Vec<UserId>> {
        let mut joined: BTreeSet<UserId> = self
            .c
            .query(
                "SELECT user_id FROM members
                 WHERE app_id = $1 AND room_no = $2 AND state = 'joined'",
                &[&app.0, &room.0],
            )?
            .iter()
            .map(|r| rows::get(r, 0).map(UserId))
            .collect::<StoreResult<_>>()?;
        for ((a, r, user), m) in &self.batch.pending.members {
            if *a == app && *r == room {
                if m.state == MemberState::Joined {
                    joined.insert(user.clone());
                } else {
                    joined.remove(user);
                }
            }
        }
        // Sorted as Rust sorts strings (bytes), whatever the database's collation.
        Ok(joined.into_iter().collect())
    }

    pub(crate) fn plan_poll(
        &mut self,
        app: AppId,
        room: RoomNumber,
        number: PollNumber,
    ) -> StoreResult<Option<Poll>> {
        let key = (app, room, number);
        self.recall(
            |p| p.poll(&key),
            |c| tx_poll(c, app, room, number),
            |p, v| p.know_poll(key, v),
        )
    }

    pub(crate) fn plan_last_poll(
        &mut self,
        app: AppId,
        room: RoomNumber,
    ) -> StoreResult<PollNumber> {
        self.recall(
            |p| p.last_poll(&(app, room)),
            |c| last_poll(c, app, room),
            |p, n| p.know_last_poll((app, room), n),
        )
    }

    pub(crate) fn plan_ballot(
        &mut self,
        app: AppId,
        room: RoomNumber,
        poll: PollNumber,
        user: &UserId,
    ) -> StoreResult<Option<Vec<u32>>> {
        let key = (app, room, poll, user.clone());
        self.recall(
            |p| p.ballot(&key),
            |c| tx_ballot(c, app, room, poll, user),
            |p, b| p.know_ballot(key.clone(), b),
        )
    }

    pub(crate) fn plan_open_polls(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
    ) -> StoreResult<Vec<PollNumber>> {
        // Every poll of a room created here is known.
        let stored = if self.batch.created.contains(&(app, room)) {
            Vec::new()
        } else {
            tx_open_polls(self.c, app, room, meetup)?
        };
        Ok(self
            .batch
            .pending
            .plans
            .open_polls(&(app, room, meetup), stored))
    }

    /// Projects `ev`, a meetup or poll event, in memory: its rows, its room's position and
    /// its announcement.
    pub(crate) fn buffer_plan(&mut self, ev: &Event) -> StoreResult<()> {
        use EventBody::*;
        let (app, at) = (ev.app, ev.at);
        let (room, pos) = ev.body.room_pos().ok_or_else(|| missing("room position"))?;
        let (seq, by) = match &ev.body {
            MeetupCreated {
                meetup,
                organizer,
                name,
                location,
                takes_place_on,
                image_url,
                seq,
                ..
            } => {
                let m = Meetup {
                    number: *meetup,
                    name: name.clone(),
                    location: location.clone(),
                    takes_place_on: *takes_place_on,
                    image_url: image_url.clone(),
                    organizer: organizer.clone(),
                    created_at: at,
                    updated_at: at,
                    cancelled: false,
                };
                self.batch
                    .pending
                    .plans
                    .create_meetup((app, room, *meetup), m);
                (Some(*seq), Some(organizer))
            }
            MeetupUpdated {
                meetup,
                by,
                name,
                location,
                takes_place_on,
                image_url,
                seq,
                ..
            } => {
                let mut m = self.known_meetup(app, room, *meetup)?;
                m.name = name.clone().unwrap_or(m.name);
                m.location = location.clone().unwrap_or(m.location);
                m.takes_place_on = takes_place_on.unwrap_or(m.takes_place_on);
                m.image_url = image_url.clone().or(m.image_url);
                m.updated_at = at;
                self.batch.pending.plans.set_meetup((app, room, *meetup), m);
                (*seq, Some(by))
            }
            MeetupCancelled {
                meetup, by, seq, ..
            } => {
                let mut m = self.known_meetup(app, room, *meetup)?;
                m.cancelled = true;
                m.updated_at = at;
                self.batch.pending.plans.set_meetup((app, room, *meetup), m);
                (Some(*seq), Some(by))
            }
            RsvpChanged {
                meetup, user, rsvp, ..
            } => {
                self.batch
                    .pending
                    .plans
                    .set_rsvp((app, room, *meetup, user.clone()), *rsvp);
                (None, None)
            }
            PollCreated {
                poll,
                creator,
                question,
                kind,
                choices,
                max_selections,
                results,
                closes_at,
                meetup,
                voters,
                seq,
                ..
            } => {
                let p = Poll {
                    number: *poll,
                    question: question.clone(),
                    kind: *kind,
                    choices: choices.clone(),
                    max_selections: *max_selections,
                    results: *results,
                    closes_at: *closes_at,
                    meetup: *meetup,
                    creator: creator.clone(),
                    created_at: at,
                    closed: None,
                    voters_count: voters.len() as i64,
                    voted_count: 0,
                    tallies: vec![0; choices.len()],
                };
                self.batch
                    .pending
                    .plans
                    .create_poll((app, room, *poll), p, voters);
                (Some(*seq), Some(creator))
            }
            VoteCast {
                poll,
                user,
                choices,
                ..
            } => {
                self.cast(app, room, *poll, user, choices)?;
                (None, None)
            }
            VoteWithdrawn { poll, user, .. } => {
                self.cast(app, room, *poll, user, &[])?;
                (None, None)
            }
            PollClosed {
                poll,
                by,
                reason,
                tallies,
                outcome,
                winner,
                seq,
                ..
            } => {
                // The tallies as the event recorded them.
                let mut p = self.known_poll(app, room, *poll)?;
                p.tallies.clone_from(tallies);
                p.closed = Some(PollClose {
                    at,
                    reason: *reason,
                    by: by.clone(),
                    outcome: *outcome,
                    winner: *winner,
                });
                let plans = &mut self.batch.pending.plans;
                plans.set_poll((app, room, *poll), p);
                plans.close_poll((app, room, *poll));
                (Some(*seq), by.as_ref())
            }
            other => {
                return Err(StoreError::internal(format!(
                    "planning: {} is not a meetup or poll event",
                    other.type_name()
                )));
            }
        };
        self.batch.pending.moved(app, room, pos, 0);
        if let Some(seq) = seq {
            self.announce(ev, seq, by)?;
        }
        Ok(())
    }

    /// A voter's standing vote replaced by `choices` (sorted; empty: withdrawn): the poll's
    /// tallies (each choice less the old ballot, plus the new) and voted count follow.
    fn cast(
        &mut self,
        app: AppId,
        room: RoomNumber,
        poll: PollNumber,
        user: &UserId,
        choices: &[u32],
    ) -> StoreResult<()> {
        let old = self
            .plan_ballot(app, room, poll, user)?
            .ok_or_else(|| missing("voter row"))?;
        let mut p = self.known_poll(app, room, poll)?;
        for (i, t) in p.tallies.iter_mut().enumerate() {
            let i = i as u32;
            *t += i64::from(choices.contains(&i)) - i64::from(old.contains(&i));
        }
        p.voted_count += i64::from(!choices.is_empty()) - i64::from(!old.is_empty());
        let plans = &mut self.batch.pending.plans;
        plans.set_poll((app, room, poll), p);
        plans.set_ballot((app, room, poll, user.clone()), choices.to_vec());
        Ok(())
    }

    fn known_meetup(
        &mut self,
        app: AppId,
        room: RoomNumber,
        number: MeetupNumber,
    ) -> StoreResult<Meetup> {
        self.plan_meetup(app, room, number)?
            .ok_or_else(|| missing("meetup row"))
    }

    fn known_poll(
        &mut self,
        app: AppId,
        room: RoomNumber,
        number: PollNumber,
    ) -> StoreResult<Poll> {
        self.plan_poll(app, room, number)?
            .ok_or_else(|| missing("poll row"))
    }
}
