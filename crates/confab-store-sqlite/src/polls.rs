//! Polls, their voters and the alerts they raise, as stored: the row mapping, the lookups of
//! the write transaction, and the reads (a poll as one member sees it, a user's alerts, the
//! polls whose deadline has passed).

use crate::fault::sql as be;
use crate::rows::{self, bad};
use confab_core::ids::{AppId, MeetupNumber, PollNumber, RoomNumber, Timestamp, UserId};
use confab_core::meetups::{
    Alert, AlertKind, CloseReason, Poll, PollClose, PollCursor, PollKind, PollOutcome, PollView,
    Results,
};
use confab_core::model::Page;
use confab_core::store::StoreResult;
use rusqlite::{Connection, OptionalExtension, Row, params};

pub const POLL_COLS: &str = "number, question, kind, choices, max_selections, results, closes_at, \
    meetup, creator, created_at, closed_at, close_reason, closed_by, outcome, winner, \
    voters_count, voted_count, tallies";

/// A standing vote as stored: a JSON array of choice indexes, '' for none.
pub fn parse_choices(raw: &str) -> rusqlite::Result<Vec<u32>> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let mut v: Vec<u32> = serde_json::from_str(raw).map_err(|_| bad(0, "vote"))?;
    v.sort_unstable();
    Ok(v)
}

fn parsed<T>(
    r: &Row<'_>,
    col: usize,
    what: &str,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    parse(r.get_ref(col)?.as_str()?).ok_or_else(|| bad(col, what))
}

pub fn poll_at(r: &Row<'_>, o: usize) -> rusqlite::Result<Poll> {
    let choices: Vec<String> =
        serde_json::from_str(r.get_ref(o + 3)?.as_str()?).map_err(|_| bad(o + 3, "choices"))?;
    let tallies: Vec<i64> =
        serde_json::from_str(r.get_ref(o + 17)?.as_str()?).map_err(|_| bad(o + 17, "tallies"))?;
    let closed = match r.get::<_, Option<i64>>(o + 10)? {
        None => None,
        Some(at) => Some(PollClose {
            at: Timestamp(at),
            reason: parsed(r, o + 11, "close reason", CloseReason::parse)?,
            by: r.get::<_, Option<String>>(o + 12)?.map(UserId),
            outcome: parsed(r, o + 13, "outcome", PollOutcome::parse)?,
            winner: r.get(o + 14)?,
        }),
    };
    Ok(Poll {
        number: PollNumber(r.get(o)?),
        question: r.get(o + 1)?,
        kind: parsed(r, o + 2, "poll kind", PollKind::parse)?,
        choices,
        max_selections: r.get(o + 4)?,
        results: parsed(r, o + 5, "results", Results::parse)?,
        closes_at: r.get::<_, Option<i64>>(o + 6)?.map(Timestamp),
        meetup: r.get::<_, Option<i64>>(o + 7)?.map(MeetupNumber),
        creator: UserId(r.get(o + 8)?),
        created_at: Timestamp(r.get(o + 9)?),
        closed,
        voters_count: r.get(o + 15)?,
        voted_count: r.get(o + 16)?,
        tallies,
    })
}

pub fn poll_of(conn: &Connection, rid: i64, number: PollNumber) -> rusqlite::Result<Option<Poll>> {
    conn.prepare_cached(&format!(
        "SELECT {POLL_COLS} FROM polls WHERE room_id = ?1 AND number = ?2"
    ))?
    .query_row(params![rid, number.0], |r| poll_at(r, 0))
    .optional()
}

pub fn last_number(conn: &Connection, rid: i64) -> rusqlite::Result<PollNumber> {
    conn.prepare_cached("SELECT IFNULL(MAX(number), 0) FROM polls WHERE room_id = ?1")?
        .query_row(params![rid], |r| r.get(0))
        .map(PollNumber)
}

/// `None` when `user` is not an eligible voter, else their standing vote (empty if none).
pub fn ballot(
    conn: &Connection,
    rid: i64,
    poll: PollNumber,
    user: &UserId,
) -> rusqlite::Result<Option<Vec<u32>>> {
    let raw: Option<String> = conn
        .prepare_cached(
            "SELECT choices FROM poll_voters WHERE room_id = ?1 AND poll = ?2 AND user_id = ?3",
        )?
        .query_row(params![rid, poll.0, user.as_str()], |r| r.get(0))
        .optional()?;
    raw.map(|s| parse_choices(&s)).transpose()
}

/// The polls of a meetup not closed by an event, ascending.
pub fn open_of_meetup(
    conn: &Connection,
    rid: i64,
    meetup: MeetupNumber,
) -> rusqlite::Result<Vec<PollNumber>> {
    conn.prepare_cached(
        "SELECT number FROM polls WHERE room_id = ?1 AND meetup = ?2 AND closed_at IS NULL
          ORDER BY number",
    )?
    .query_map(params![rid, meetup.0], |r| r.get(0).map(PollNumber))?
    .collect()
}

fn voters(conn: &Connection, rid: i64, poll: PollNumber) -> rusqlite::Result<Vec<UserId>> {
    conn.prepare_cached(
        "SELECT user_id FROM poll_voters WHERE room_id = ?1 AND poll = ?2 ORDER BY user_id",
    )?
    .query_map(params![rid, poll.0], |r| r.get(0).map(UserId))?
    .collect()
}

/// The room's internal id, unless it does not exist or is deleted.
fn live_room(conn: &Connection, app: AppId, room: RoomNumber) -> StoreResult<Option<i64>> {
    Ok(rows::room_by_number(conn, app, room)
        .map_err(be)?
        .filter(|r| !r.room.deleted)
        .map(|r| r.id))
}

pub fn polls(
    conn: &Connection,
    app: AppId,
    room: RoomNumber,
    viewer: &UserId,
    after: Option<PollCursor>,
    limit: usize,
) -> StoreResult<Page<PollView>> {
    let Some(rid) = live_room(conn, app, room)? else {
        return Ok(Page {
            rows: Vec::new(),
            has_more: false,
        });
    };
    let (closed, below) = after.map_or((false, i64::MAX), |(c, n)| (c, n.0));
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {POLL_COLS} FROM polls
              WHERE room_id = ?1 AND ((closed_at IS NOT NULL) > ?2
                    OR ((closed_at IS NOT NULL) = ?2 AND number < ?3))
              ORDER BY closed_at IS NOT NULL, number DESC LIMIT {}",
            limit + 1
        ))
        .map_err(be)?;
    let found = stmt
        .query_map(params![rid, closed, below], |r| poll_at(r, 0))
        .map_err(be)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(be)?;
    let has_more = found.len() > limit;
    let mut rows = Vec::with_capacity(found.len().min(limit));
    for poll in found.into_iter().take(limit) {
        rows.push(PollView {
            room,
            my_vote: ballot(conn, rid, poll.number, viewer).map_err(be)?,
            voters: Vec::new(),
            poll,
        });
    }
    Ok(Page { rows, has_more })
}

pub fn poll(
    conn: &Connection,
    app: AppId,
    room: RoomNumber,
    number: PollNumber,
    viewer: &UserId,
) -> StoreResult<Option<PollView>> {
    let Some(rid) = live_room(conn, app, room)? else {
        return Ok(None);
    };
    let Some(poll) = poll_of(conn, rid, number).map_err(be)? else {
        return Ok(None);
    };
    Ok(Some(PollView {
        room,
        my_vote: ballot(conn, rid, number, viewer).map_err(be)?,
        voters: voters(conn, rid, number).map_err(be)?,
        poll,
    }))
}

fn alert_kind(s: &str) -> Option<AlertKind> {
    [
        AlertKind::PendingPoll,
        AlertKind::PendingReschedulePoll,
        AlertKind::PendingRelocationPoll,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
}

/// An alert stands while its poll is open at `now` (the deadline closes it for readers before
/// the server logs the closing) and its user is still joined to its room (not deleted).
const ALERT_STANDS: &str = "(a.closes_at IS NULL OR a.closes_at > ?3)
    AND EXISTS (SELECT 1 FROM members m WHERE m.room_id = a.room_id AND m.user_id = a.user_id
                   AND m.state = 'joined')
    AND EXISTS (SELECT 1 FROM rooms r WHERE r.id = a.room_id AND r.deleted = 0)";

pub fn alerts(
    conn: &Connection,
    app: AppId,
    user: &UserId,
    now: Timestamp,
    after: Option<(RoomNumber, PollNumber)>,
    limit: usize,
) -> StoreResult<Page<Alert>> {
    let (room_no, poll) = after.map_or((i64::MIN, i64::MIN), |(r, p)| (r.0, p.0));
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT a.kind, a.room_no, a.poll, a.meetup, a.question, a.closes_at, a.created_at
               FROM alerts a
              WHERE a.app_id = ?1 AND a.user_id = ?2 AND (a.room_no, a.poll) > (?4, ?5)
                AND {ALERT_STANDS}
              ORDER BY a.room_no, a.poll LIMIT {}",
            limit + 1
        ))
        .map_err(be)?;
    let mut rows = stmt
        .query_map(params![app.0, user.as_str(), now.0, room_no, poll], |r| {
            Ok(Alert {
                kind: parsed(r, 0, "alert kind", alert_kind)?,
                room: RoomNumber(r.get(1)?),
                poll: PollNumber(r.get(2)?),
                meetup: r.get::<_, Option<i64>>(3)?.map(MeetupNumber),
                question: r.get(4)?,
                closes_at: r.get::<_, Option<i64>>(5)?.map(Timestamp),
                created_at: Timestamp(r.get(6)?),
            })
        })
        .map_err(be)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(be)?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    Ok(Page { rows, has_more })
}

/// `user`'s alerts standing at `now` in one room (see [`alerts`]).
pub fn alerts_count(
    conn: &Connection,
    app: AppId,
    user: &UserId,
    room: RoomNumber,
    now: Timestamp,
) -> StoreResult<i64> {
    conn.prepare_cached(&format!(
        "SELECT COUNT(*) FROM alerts a
          WHERE a.app_id = ?1 AND a.user_id = ?2 AND a.room_no = ?4 AND {ALERT_STANDS}"
    ))
    .and_then(|mut s| s.query_row(params![app.0, user.as_str(), now.0, room.0], |r| r.get(0)))
    .map_err(be)
}

pub fn due_polls(
    conn: &Connection,
    now: Timestamp,
    limit: usize,
) -> StoreResult<Vec<(AppId, RoomNumber, PollNumber)>> {
    conn.prepare_cached(
        "SELECT r.app_id, r.number, p.number FROM polls p JOIN rooms r ON r.id = p.room_id
          WHERE p.closed_at IS NULL AND p.closes_at IS NOT NULL AND p.closes_at <= ?1
            AND r.deleted = 0
          ORDER BY p.closes_at, r.app_id, r.number, p.number LIMIT ?2",
    )
    .and_then(|mut s| {
        s.query_map(params![now.0, limit as i64], |r| {
            Ok((
                AppId(r.get(0)?),
                RoomNumber(r.get(1)?),
                PollNumber(r.get(2)?),
            ))
        })?
        .collect()
    })
    .map_err(be)
}
