//! Meetups, RSVPs, polls, ballots and alerts as a batch leaves them, and the set-based
//! statements that write them (one per table and kind of change, sent with the other pending
//! writes, see `flush`). The rows are those `projection::meetups` and `projection::polls`
//! write one event at a time: a meetup or poll row is written whole as this transaction left
//! it (upserted), an answer or ballot likewise, and an alert is made or removed as its
//! voter's ballot and its poll's closing decide.
//!
//! What the transaction knows of these rows (read under the room's lock, or decided here) is
//! kept for its whole length: a flush writes them exactly as they are known, and nothing
//! else writes them in a write transaction, so later reads are answered from here without a
//! round trip (see `planning`).

use crate::conn::Step;
use confab_core::ids::{AppId, MeetupNumber, PollNumber, RoomNumber, UserId};
use confab_core::meetups::{Meetup, Poll, Rsvp};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tokio_postgres::types::ToSql;

pub type MeetupKey = (AppId, RoomNumber, MeetupNumber);
pub type PollKey = (AppId, RoomNumber, PollNumber);
pub type RsvpKey = (AppId, RoomNumber, MeetupNumber, UserId);
pub type BallotKey = (AppId, RoomNumber, PollNumber, UserId);
type RoomKey = (AppId, RoomNumber);

#[derive(Default)]
pub struct Plans {
    /// Meetups known to this transaction (`None`: there is no such meetup).
    meetups: HashMap<MeetupKey, Option<Meetup>>,
    last_meetup: HashMap<RoomKey, MeetupNumber>,
    /// Answers known (`Rsvp::None`: no row).
    rsvps: HashMap<RsvpKey, Rsvp>,
    /// Meetups all of whose answers are in `rsvps`.
    answered: HashSet<MeetupKey>,
    polls: HashMap<PollKey, Option<Poll>>,
    last_poll: HashMap<RoomKey, PollNumber>,
    /// Ballots known (`None`: not an eligible voter).
    ballots: HashMap<BallotKey, Option<Vec<u32>>>,
    // Owed since the last flush.
    owed_meetups: BTreeSet<MeetupKey>,
    owed_rsvps: BTreeSet<RsvpKey>,
    owed_polls: BTreeSet<PollKey>,
    owed_ballots: BTreeSet<BallotKey>,
    /// Alerts made (`true`) or removed (`false`).
    alerts: BTreeMap<BallotKey, bool>,
    /// Polls closed: every alert of theirs goes.
    closed: BTreeSet<PollKey>,
}

impl Plans {
    /// Nothing owed to the database.
    pub fn is_empty(&self) -> bool {
        self.owed_meetups.is_empty()
            && self.owed_rsvps.is_empty()
            && self.owed_polls.is_empty()
            && self.owed_ballots.is_empty()
            && self.alerts.is_empty()
            && self.closed.is_empty()
    }

    // What is known (`None`: not known here, read it).

    pub fn meetup(&self, key: &MeetupKey) -> Option<Option<Meetup>> {
        self.meetups.get(key).cloned()
    }

    pub fn know_meetup(&mut self, key: MeetupKey, meetup: Option<Meetup>) {
        self.meetups.insert(key, meetup);
    }

    pub fn last_meetup(&self, room: &RoomKey) -> Option<MeetupNumber> {
        self.last_meetup.get(room).copied()
    }

    pub fn know_last_meetup(&mut self, room: RoomKey, n: MeetupNumber) {
        self.last_meetup.insert(room, n);
    }

    pub fn rsvp(&self, key: &RsvpKey) -> Option<Rsvp> {
        let (app, room, meetup, _) = key;
        match self.rsvps.get(key) {
            Some(r) => Some(*r),
            None => self
                .answered
                .contains(&(*app, *room, *meetup))
                .then_some(Rsvp::None),
        }
    }

    pub fn know_rsvp(&mut self, key: RsvpKey, rsvp: Rsvp) {
        self.rsvps.insert(key, rsvp);
    }

    /// Every answer of a stored meetup, as read: what this transaction decided stays.
    pub fn know_answers(&mut self, meetup: MeetupKey, answers: Vec<(UserId, Rsvp)>) {
        let (app, room, number) = meetup;
        for (user, rsvp) in answers {
            self.rsvps.entry((app, room, number, user)).or_insert(rsvp);
        }
        self.answered.insert(meetup);
    }

    /// Who answered `no`, if every answer is known.
    pub fn declined(&self, meetup: &MeetupKey) -> Option<Vec<UserId>> {
        if !self.answered.contains(meetup) {
            return None;
        }
        let (app, room, number) = meetup;
        Some(
            self.rsvps
                .iter()
                .filter(|((a, r, m, _), v)| a == app && r == room && m == number && **v == Rsvp::No)
                .map(|((_, _, _, u), _)| u.clone())
                .collect(),
        )
    }

    pub fn poll(&self, key: &PollKey) -> Option<Option<Poll>> {
        self.polls.get(key).cloned()
    }

    pub fn know_poll(&mut self, key: PollKey, poll: Option<Poll>) {
        self.polls.insert(key, poll);
    }

    pub fn last_poll(&self, room: &RoomKey) -> Option<PollNumber> {
        self.last_poll.get(room).copied()
    }

    pub fn know_last_poll(&mut self, room: RoomKey, n: PollNumber) {
        self.last_poll.insert(room, n);
    }

    pub fn ballot(&self, key: &BallotKey) -> Option<Option<Vec<u32>>> {
        self.ballots.get(key).cloned()
    }

    pub fn know_ballot(&mut self, key: BallotKey, ballot: Option<Vec<u32>>) {
        self.ballots.insert(key, ballot);
    }

    /// The open polls of a meetup: those `stored` open, as this transaction knows them now,
    /// and those it made.
    pub fn open_polls(&self, meetup: &MeetupKey, stored: Vec<PollNumber>) -> Vec<PollNumber> {
        let (app, room, number) = *meetup;
        let open = |n: &PollNumber| match self.polls.get(&(app, room, *n)) {
            Some(Some(p)) => p.closed.is_none(),
            Some(None) => false,
            None => true,
        };
        let mut found: BTreeSet<PollNumber> = stored.into_iter().filter(open).collect();
        for ((a, r, n), p) in &self.polls {
            if let Some(p) = p
                && *a == app
                && *r == room
                && p.meetup == Some(number)
                && p.closed.is_none()
            {
                found.insert(*n);
            }
        }
        found.into_iter().collect()
    }

    // What the events decide.

    /// A new meetup: its organizer answers `yes`.
    pub fn create_meetup(&mut self, key: MeetupKey, meetup: Meetup) {
        let (app, room, number) = key;
        let organizer = meetup.organizer.clone();
        self.set_meetup(key, meetup);
        self.last_meetup.insert((app, room), number);
        self.set_rsvp((app, room, number, organizer), Rsvp::Yes);
        self.answered.insert(key);
    }

    pub fn set_meetup(&mut self, key: MeetupKey, meetup: Meetup) {
        self.meetups.insert(key, Some(meetup));
        self.owed_meetups.insert(key);
    }

    pub fn set_rsvp(&mut self, key: RsvpKey, rsvp: Rsvp) {
        self.rsvps.insert(key.clone(), rsvp);
        self.owed_rsvps.insert(key);
    }

    /// A new poll: each voter starts with an empty ballot and an alert.
    pub fn create_poll(&mut self, key: PollKey, poll: Poll, voters: &[UserId]) {
        let (app, room, number) = key;
        self.set_poll(key, poll);
        self.last_poll.insert((app, room), number);
        for u in voters {
            self.set_ballot((app, room, number, u.clone()), Vec::new());
        }
    }

    pub fn set_poll(&mut self, key: PollKey, poll: Poll) {
        self.polls.insert(key, Some(poll));
        self.owed_polls.insert(key);
    }

    /// A voter's standing vote (empty: none), and so their alert.
    pub fn set_ballot(&mut self, key: BallotKey, choices: Vec<u32>) {
        self.alerts.insert(key.clone(), choices.is_empty());
        self.ballots.insert(key.clone(), Some(choices));
        self.owed_ballots.insert(key);
    }

    /// A poll closed (its row is set apart): nobody is waited on any more.
    pub fn close_poll(&mut self, key: PollKey) {
        self.alerts.retain(|(a, r, p, _), _| (*a, *r, *p) != key);
        self.closed.insert(key);
    }

    /// Empties what is owed into the statements' parameters.
    pub fn take(&mut self) -> PlanRows {
        use std::mem::take;
        let mut f = PlanRows::default();
        for key in take(&mut self.owed_meetups) {
            let Some(Some(m)) = self.meetups.get(&key) else {
                continue;
            };
            f.e_app.push(key.0.0);
            f.e_room.push(key.1.0);
            f.e_number.push(key.2.0);
            f.e_name.push(m.name.clone());
            f.e_location.push(m.location.clone());
            f.e_when.push(m.takes_place_on.0);
            f.e_image.push(m.image_url.clone());
            f.e_organizer.push(m.organizer.0.clone());
            f.e_created.push(m.created_at.0);
            f.e_updated.push(m.updated_at.0);
            f.e_cancelled.push(m.cancelled);
        }
        for key in take(&mut self.owed_rsvps) {
            let rsvp = self.rsvps.get(&key).copied().unwrap_or_default();
            let (app, room, meetup, user) = key;
            // `none` is the absence of a row.
            let rows = if rsvp == Rsvp::None {
                &mut f.gone
            } else {
                f.v_rsvp.push(rsvp.as_str());
                &mut f.answers
            };
            rows.0.push(app.0);
            rows.1.push(room.0);
            rows.2.push(meetup.0);
            rows.3.push(user.0);
        }
        for key in take(&mut self.owed_polls) {
            let Some(Some(p)) = self.polls.get(&key) else {
                continue;
            };
            f.p_app.push(key.0.0);
            f.p_room.push(key.1.0);
            f.p_number.push(key.2.0);
            f.p_question.push(p.question.clone());
            f.p_kind.push(p.kind.as_str());
            // Arrays of different lengths cannot be one array parameter: each goes as text
            // (JSON; a list of strings always serializes).
            f.p_choices
                .push(serde_json::to_string(&p.choices).unwrap_or_default());
            f.p_max.push(i64::from(p.max_selections));
            f.p_results.push(p.results.as_str());
            f.p_closes.push(p.closes_at.map(|t| t.0));
            f.p_meetup.push(p.meetup.map(|m| m.0));
            f.p_creator.push(p.creator.0.clone());
            f.p_created.push(p.created_at.0);
            f.p_voters.push(p.voters_count);
            f.p_voted.push(p.voted_count);
            f.p_tallies.push(list(&p.tallies));
            let c = p.closed.as_ref();
            f.p_closed.push(c.is_some());
            f.p_closed_at.push(c.map(|c| c.at.0));
            f.p_reason.push(c.map(|c| c.reason.as_str()));
            f.p_by
                .push(c.and_then(|c| c.by.as_ref()).map(|u| u.0.clone()));
            f.p_outcome.push(c.map(|c| c.outcome.as_str()));
            f.p_winner.push(c.and_then(|c| c.winner).map(i64::from));
        }
        for key in take(&mut self.owed_ballots) {
            let Some(Some(choices)) = self.ballots.get(&key) else {
                continue;
            };
            f.b_choices.push(list(choices));
            let (app, room, poll, user) = key;
            f.b_app.push(app.0);
            f.b_room.push(room.0);
            f.b_poll.push(poll.0);
            f.b_user.push(user.0);
        }
        for ((app, room, poll, user), made) in take(&mut self.alerts) {
            let rows = if made { &mut f.alerts } else { &mut f.cleared };
            rows.0.push(app.0);
            rows.1.push(room.0);
            rows.2.push(poll.0);
            rows.3.push(user.0);
        }
        for (app, room, poll) in take(&mut self.closed) {
            f.c_app.push(app.0);
            f.c_room.push(room.0);
            f.c_poll.push(poll.0);
        }
        f
    }
}

/// Numbers as `1,2,3` (`string_to_array` reads them back; empty: an empty array).
fn list<T: ToString>(xs: &[T]) -> String {
    xs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Meetups written whole; organizer and creation never change.
pub const MEETUPS_SQL: &str = "INSERT INTO meetups (app_id, room_no, number, name, location,
        takes_place_on, image_url, organizer, created_at, updated_at, cancelled)
    SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[],
        $6::BIGINT[], $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[], $11::BOOL[])
    ON CONFLICT (app_id, room_no, number) DO UPDATE SET name = EXCLUDED.name,
        location = EXCLUDED.location, takes_place_on = EXCLUDED.takes_place_on,
        image_url = EXCLUDED.image_url, updated_at = EXCLUDED.updated_at,
        cancelled = EXCLUDED.cancelled";

pub const RSVPS_SQL: &str = "INSERT INTO rsvps (app_id, room_no, meetup_no, user_id, rsvp)
    SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[])
    ON CONFLICT (app_id, room_no, meetup_no, user_id) DO UPDATE SET rsvp = EXCLUDED.rsvp";

pub const RSVPS_GONE_SQL: &str = "DELETE FROM rsvps v
    USING UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[]) AS u(a, r, m, id)
    WHERE v.app_id = u.a AND v.room_no = u.r AND v.meetup_no = u.m AND v.user_id = u.id";

/// Polls written whole; what a vote or the closing cannot change is left as inserted.
pub const POLLS_SQL: &str = "INSERT INTO polls (app_id, room_no, number, question, kind,
        choices, max_selections, results, closes_at, meetup_no, creator, created_at,
        voters_count, voted_count, tallies, closed, closed_at, close_reason, closed_by,
        outcome, winner)
    SELECT a, r, n, q, k,
        ARRAY(SELECT x FROM jsonb_array_elements_text(ch::jsonb) WITH ORDINALITY AS e(x, i)
            ORDER BY i),
        mx, res, cl, m, cr, at, vs, vd, string_to_array(t, ',')::BIGINT[], c, cat, rsn, by,
        o, w
    FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
        $7::BIGINT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[], $11::TEXT[], $12::BIGINT[],
        $13::BIGINT[], $14::BIGINT[], $15::TEXT[], $16::BOOL[], $17::BIGINT[], $18::TEXT[],
        $19::TEXT[], $20::TEXT[], $21::BIGINT[])
        AS u(a, r, n, q, k, ch, mx, res, cl, m, cr, at, vs, vd, t, c, cat, rsn, by, o, w)
    ON CONFLICT (app_id, room_no, number) DO UPDATE SET voted_count = EXCLUDED.voted_count,
        tallies = EXCLUDED.tallies, closed = EXCLUDED.closed, closed_at = EXCLUDED.closed_at,
        close_reason = EXCLUDED.close_reason, closed_by = EXCLUDED.closed_by,
        outcome = EXCLUDED.outcome, winner = EXCLUDED.winner";

pub const BALLOTS_SQL: &str = "INSERT INTO poll_voters (app_id, room_no, poll_no, user_id,
        choices)
    SELECT a, r, p, id, string_to_array(c, ',')::BIGINT[]
    FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[])
        AS u(a, r, p, id, c)
    ON CONFLICT (app_id, room_no, poll_no, user_id) DO UPDATE SET choices = EXCLUDED.choices";

pub const ALERTS_SQL: &str = "INSERT INTO alerts (app_id, user_id, room_no, poll_no)
    SELECT a, id, r, p FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[])
        AS u(a, r, p, id)
    ON CONFLICT DO NOTHING";

pub const ALERTS_GONE_SQL: &str = "DELETE FROM alerts x
    USING UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[]) AS u(a, r, p, id)
    WHERE x.app_id = u.a AND x.user_id = u.id AND x.room_no = u.r AND x.poll_no = u.p";

pub const CLOSED_ALERTS_SQL: &str = "DELETE FROM alerts x
    USING UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[]) AS u(a, r, p)
    WHERE x.app_id = u.a AND x.room_no = u.r AND x.poll_no = u.p";

/// Keys of a room's child row: app, room, number, user.
type Keys = (Vec<i64>, Vec<i64>, Vec<i64>, Vec<String>);

/// The statements' parameters, owned.
#[derive(Default)]
pub struct PlanRows {
    e_app: Vec<i64>,
    e_room: Vec<i64>,
    e_number: Vec<i64>,
    e_name: Vec<String>,
    e_location: Vec<String>,
    e_when: Vec<i64>,
    e_image: Vec<Option<String>>,
    e_organizer: Vec<String>,
    e_created: Vec<i64>,
    e_updated: Vec<i64>,
    e_cancelled: Vec<bool>,
    answers: Keys,
    v_rsvp: Vec<&'static str>,
    gone: Keys,
    p_app: Vec<i64>,
    p_room: Vec<i64>,
    p_number: Vec<i64>,
    p_question: Vec<String>,
    p_kind: Vec<&'static str>,
    p_choices: Vec<String>,
    p_max: Vec<i64>,
    p_results: Vec<&'static str>,
    p_closes: Vec<Option<i64>>,
    p_meetup: Vec<Option<i64>>,
    p_creator: Vec<String>,
    p_created: Vec<i64>,
    p_voters: Vec<i64>,
    p_voted: Vec<i64>,
    p_tallies: Vec<String>,
    p_closed: Vec<bool>,
    p_closed_at: Vec<Option<i64>>,
    p_reason: Vec<Option<&'static str>>,
    p_by: Vec<Option<String>>,
    p_outcome: Vec<Option<&'static str>>,
    p_winner: Vec<Option<i64>>,
    b_app: Vec<i64>,
    b_room: Vec<i64>,
    b_poll: Vec<i64>,
    b_user: Vec<String>,
    b_choices: Vec<String>,
    alerts: Keys,
    cleared: Keys,
    c_app: Vec<i64>,
    c_room: Vec<i64>,
    c_poll: Vec<i64>,
}

type P<'a> = &'a (dyn ToSql + Sync);

/// The parameters of a `PlanRows`, borrowed as the statements take them.
pub struct PlanParams<'a> {
    meetups: Option<[P<'a>; 11]>,
    rsvps: Option<[P<'a>; 5]>,
    gone: Option<[P<'a>; 4]>,
    polls: Option<[P<'a>; 21]>,
    ballots: Option<[P<'a>; 5]>,
    alerts: Option<[P<'a>; 4]>,
    cleared: Option<[P<'a>; 4]>,
    closed: Option<[P<'a>; 3]>,
}

impl PlanParams<'_> {
    /// The statements with rows to write, in a fixed order.
    pub fn steps<'s>(&'s self, steps: &mut Vec<Step<'s>>) {
        let all: [(&str, Option<&[P<'_>]>); 8] = [
            (MEETUPS_SQL, self.meetups.as_ref().map(|p| &p[..])),
            (RSVPS_SQL, self.rsvps.as_ref().map(|p| &p[..])),
            (RSVPS_GONE_SQL, self.gone.as_ref().map(|p| &p[..])),
            (POLLS_SQL, self.polls.as_ref().map(|p| &p[..])),
            (BALLOTS_SQL, self.ballots.as_ref().map(|p| &p[..])),
            (ALERTS_SQL, self.alerts.as_ref().map(|p| &p[..])),
            (ALERTS_GONE_SQL, self.cleared.as_ref().map(|p| &p[..])),
            (CLOSED_ALERTS_SQL, self.closed.as_ref().map(|p| &p[..])),
        ];
        for (sql, p) in all {
            if let Some(p) = p {
                steps.push(Step::Query(sql, p));
            }
        }
    }
}

fn keys(k: &Keys) -> [P<'_>; 4] {
    [&k.0, &k.1, &k.2, &k.3]
}

impl PlanRows {
    pub fn params(&self) -> PlanParams<'_> {
        PlanParams {
            meetups: (!self.e_app.is_empty()).then_some([
                &self.e_app,
                &self.e_room,
                &self.e_number,
                &self.e_name,
                &self.e_location,
                &self.e_when,
                &self.e_image,
                &self.e_organizer,
                &self.e_created,
                &self.e_updated,
                &self.e_cancelled,
            ]),
            rsvps: (!self.answers.0.is_empty()).then(|| {
                let [a, r, m, u] = keys(&self.answers);
                [a, r, m, u, &self.v_rsvp as P<'_>]
            }),
            gone: (!self.gone.0.is_empty()).then(|| keys(&self.gone)),
            polls: (!self.p_app.is_empty()).then_some([
                &self.p_app,
                &self.p_room,
                &self.p_number,
                &self.p_question,
                &self.p_kind,
                &self.p_choices,
                &self.p_max,
                &self.p_results,
                &self.p_closes,
                &self.p_meetup,
                &self.p_creator,
                &self.p_created,
                &self.p_voters,
                &self.p_voted,
                &self.p_tallies,
                &self.p_closed,
                &self.p_closed_at,
                &self.p_reason,
                &self.p_by,
                &self.p_outcome,
                &self.p_winner,
            ]),
            ballots: (!self.b_app.is_empty()).then_some([
                &self.b_app,
                &self.b_room,
                &self.b_poll,
                &self.b_user,
                &self.b_choices,
            ]),
            alerts: (!self.alerts.0.is_empty()).then(|| keys(&self.alerts)),
            cleared: (!self.cleared.0.is_empty()).then(|| keys(&self.cleared)),
            closed: (!self.c_app.is_empty()).then_some([&self.c_app, &self.c_room, &self.c_poll]),
        }
    }
}
