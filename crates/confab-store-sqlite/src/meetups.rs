//! Meetups and RSVPs as stored: the row mapping, the lookups of the write transaction, and the
//! reads (a meetup as one member sees it, with the answers of the room's joined members).

use crate::fault::sql as be;
use crate::rows::{self, RoomRow};
use confab_core::ids::{AppId, MeetupNumber, RoomNumber, Timestamp, UserId};
use confab_core::meetups::{Meetup, MeetupQuery, MeetupView, Rsvp, RsvpCounts};
use confab_core::model::Page;
use confab_core::store::StoreResult;
use rusqlite::{Connection, OptionalExtension, Row, params};

pub const MEETUP_COLS: &str = "number, name, location, takes_place_on, image_url, organizer, \
    created_at, updated_at, cancelled";

pub fn meetup_at(r: &Row<'_>, o: usize) -> rusqlite::Result<Meetup> {
    Ok(Meetup {
        number: MeetupNumber(r.get(o)?),
        name: r.get(o + 1)?,
        location: r.get(o + 2)?,
        takes_place_on: Timestamp(r.get(o + 3)?),
        image_url: r.get(o + 4)?,
        organizer: UserId(r.get(o + 5)?),
        created_at: Timestamp(r.get(o + 6)?),
        updated_at: Timestamp(r.get(o + 7)?),
        cancelled: r.get(o + 8)?,
    })
}

pub fn meetup_of(
    conn: &Connection,
    rid: i64,
    number: MeetupNumber,
) -> rusqlite::Result<Option<Meetup>> {
    conn.prepare_cached(&format!(
        "SELECT {MEETUP_COLS} FROM meetups WHERE room_id = ?1 AND number = ?2"
    ))?
    .query_row(params![rid, number.0], |r| meetup_at(r, 0))
    .optional()
}

pub fn last_number(conn: &Connection, rid: i64) -> rusqlite::Result<MeetupNumber> {
    conn.prepare_cached("SELECT IFNULL(MAX(number), 0) FROM meetups WHERE room_id = ?1")?
        .query_row(params![rid], |r| r.get(0))
        .map(MeetupNumber)
}

/// The user's answer (`none` when they have given none).
pub fn rsvp_of(
    conn: &Connection,
    rid: i64,
    meetup: MeetupNumber,
    user: &UserId,
) -> rusqlite::Result<Rsvp> {
    let raw: Option<String> = conn
        .prepare_cached(
            "SELECT rsvp FROM rsvps WHERE room_id = ?1 AND meetup = ?2 AND user_id = ?3",
        )?
        .query_row(params![rid, meetup.0, user.as_str()], |r| r.get(0))
        .optional()?;
    match raw {
        None => Ok(Rsvp::None),
        Some(s) => Rsvp::parse(&s).ok_or_else(|| rows::bad(0, "rsvp")),
    }
}

pub fn declined(
    conn: &Connection,
    rid: i64,
    meetup: MeetupNumber,
) -> rusqlite::Result<Vec<UserId>> {
    conn.prepare_cached(
        "SELECT user_id FROM rsvps WHERE room_id = ?1 AND meetup = ?2 AND rsvp = 'no' ORDER BY user_id",
    )?
    .query_map(params![rid, meetup.0], |r| r.get(0).map(UserId))?
    .collect()
}

/// Answers of the room's joined members; `none` counts the joined members who gave none.
fn counts(
    conn: &Connection,
    rid: i64,
    meetup: MeetupNumber,
    joined: i64,
) -> rusqlite::Result<RsvpCounts> {
    let mut c = RsvpCounts::default();
    let mut stmt = conn.prepare_cached(
        "SELECT a.rsvp, COUNT(*) FROM rsvps a
           JOIN members m ON m.room_id = a.room_id AND m.user_id = a.user_id AND m.state = 'joined'
          WHERE a.room_id = ?1 AND a.meetup = ?2 GROUP BY a.rsvp",
    )?;
    let mut found = stmt.query(params![rid, meetup.0])?;
    while let Some(r) = found.next()? {
        let n: i64 = r.get(1)?;
        match Rsvp::parse(r.get_ref(0)?.as_str()?) {
            Some(Rsvp::Yes) => c.yes = n,
            Some(Rsvp::No) => c.no = n,
            Some(Rsvp::Maybe) => c.maybe = n,
            Some(Rsvp::None) | None => return Err(rows::bad(0, "rsvp")),
        }
    }
    c.none = (joined - c.yes - c.no - c.maybe).max(0);
    Ok(c)
}

fn view(
    conn: &Connection,
    room: &RoomRow,
    meetup: Meetup,
    viewer: &UserId,
) -> rusqlite::Result<MeetupView> {
    Ok(MeetupView {
        room: room.room.number,
        rsvp: rsvp_of(conn, room.id, meetup.number, viewer)?,
        counts: counts(conn, room.id, meetup.number, room.room.member_count)?,
        meetup,
    })
}

/// The room, unless it does not exist or is deleted.
fn live_room(conn: &Connection, app: AppId, room: RoomNumber) -> StoreResult<Option<RoomRow>> {
    Ok(rows::room_by_number(conn, app, room)
        .map_err(be)?
        .filter(|r| !r.room.deleted))
}

fn empty<T>() -> Page<T> {
    Page {
        rows: Vec::new(),
        has_more: false,
    }
}

pub fn meetups(
    conn: &Connection,
    app: AppId,
    room: RoomNumber,
    viewer: &UserId,
    query: MeetupQuery,
    limit: usize,
) -> StoreResult<Page<MeetupView>> {
    let Some(row) = live_room(conn, app, room)? else {
        return Ok(empty());
    };
    let (at, num) = query
        .after
        .map_or((i64::MIN, i64::MIN), |(t, n)| (t.0, n.0));
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MEETUP_COLS} FROM meetups
              WHERE room_id = ?1 AND (?2 = 0 OR (cancelled = 0 AND takes_place_on >= ?3))
                AND (takes_place_on, number) > (?4, ?5)
              ORDER BY takes_place_on, number LIMIT {}",
            limit + 1
        ))
        .map_err(be)?;
    let found = stmt
        .query_map(params![row.id, query.upcoming, query.now.0, at, num], |r| {
            meetup_at(r, 0)
        })
        .map_err(be)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(be)?;
    let has_more = found.len() > limit;
    let rows = found
        .into_iter()
        .take(limit)
        .map(|m| view(conn, &row, m, viewer))
        .collect::<Result<Vec<_>, _>>()
        .map_err(be)?;
    Ok(Page { rows, has_more })
}

pub fn meetup(
    conn: &Connection,
    app: AppId,
    room: RoomNumber,
    number: MeetupNumber,
    viewer: &UserId,
) -> StoreResult<Option<MeetupView>> {
    let Some(row) = live_room(conn, app, room)? else {
        return Ok(None);
    };
    let Some(m) = meetup_of(conn, row.id, number).map_err(be)? else {
        return Ok(None);
    };
    view(conn, &row, m, viewer).map(Some).map_err(be)
}

pub fn my_meetups(
    conn: &Connection,
    app: AppId,
    user: &UserId,
    now: Timestamp,
    after: Option<(Timestamp, RoomNumber, MeetupNumber)>,
    limit: usize,
) -> StoreResult<Page<MeetupView>> {
    let (at, room_no, num) =
        after.map_or((i64::MIN, i64::MIN, i64::MIN), |(t, r, n)| (t.0, r.0, n.0));
    let cols = MEETUP_COLS
        .split(", ")
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT r.number, r.id, r.member_count, {cols}
               FROM members m
               JOIN rooms r ON r.id = m.room_id AND r.deleted = 0
               JOIN meetups t ON t.room_id = m.room_id
              WHERE m.app_id = ?1 AND m.user_id = ?2 AND m.state = 'joined'
                AND t.cancelled = 0 AND t.takes_place_on >= ?3
                AND (t.takes_place_on, r.number, t.number) > (?4, ?5, ?6)
              ORDER BY t.takes_place_on, r.number, t.number LIMIT {}",
            limit + 1
        ))
        .map_err(be)?;
    let found = stmt
        .query_map(
            params![app.0, user.as_str(), now.0, at, room_no, num],
            |r| {
                Ok((
                    RoomNumber(r.get(0)?),
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    meetup_at(r, 3)?,
                ))
            },
        )
        .map_err(be)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(be)?;
    let has_more = found.len() > limit;
    let mut rows = Vec::with_capacity(found.len().min(limit));
    for (room, rid, joined, meetup) in found.into_iter().take(limit) {
        rows.push(MeetupView {
            room,
            rsvp: rsvp_of(conn, rid, meetup.number, user).map_err(be)?,
            counts: counts(conn, rid, meetup.number, joined).map_err(be)?,
            meetup,
        });
    }
    Ok(Page { rows, has_more })
}
