//! The projections: `apply` turns one event into read-model updates. The live write path and
//! `rebuild` both call it, so a replayed store equals the live one.
//!
//! The dispatch below names every event and only delegates to the module of its area, so a new
//! event does not compile until it is given a place; each area matches its own events and
//! refuses any other (a misrouted event fails loudly instead of being skipped).

mod apps;
mod meetups;
mod members;
mod messages;
mod polls;
mod rooms;
mod users;

use crate::cache::messages_delta;
use crate::rows::{self, item_key};
use confab_core::event::{Event, EventBody};
use confab_core::ids::{Pos, RoomNumber, Seq, UserId};
use confab_core::rules::announcement;
use rusqlite::{Connection, params};

type R = rusqlite::Result<()>;

fn missing(what: &str) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(format!("projection: {what} missing").into())
}

/// An area was handed an event of another area: a bug of the dispatch, never skipped.
fn misrouted(body: &EventBody) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(
        format!("projection: {} sent to the wrong area", body.type_name()).into(),
    )
}

/// One event being applied, with what every area needs to apply it.
struct Cx<'a> {
    conn: &'a Connection,
    ev: &'a Event,
    /// The internal id of the event's room, when the caller knows it.
    rid: Option<i64>,
}

impl Cx<'_> {
    fn app(&self) -> i64 {
        self.ev.app.0
    }

    fn at(&self) -> i64 {
        self.ev.at.0
    }

    /// The internal id of `room` (of this event's app), which must exist.
    fn rid(&self, room: RoomNumber) -> rusqlite::Result<i64> {
        match self.rid {
            Some(id) => Ok(id),
            None => rows::room_id(self.conn, self.ev.app, room)?.ok_or_else(|| missing("room")),
        }
    }

    /// Makes `pos` the room's last position (every event of a room takes one).
    fn advance(&self, rid: i64, pos: Pos) -> R {
        self.conn
            .prepare_cached("UPDATE rooms SET last_pos = ?2 WHERE id = ?1")?
            .execute(params![rid, pos.0])?;
        Ok(())
    }

    /// Writes the announcement item the event carries at `seq`, and makes it the room's last
    /// item.
    fn announce(&self, rid: i64, seq: Seq, by: Option<&UserId>) -> R {
        let Some((text, data)) = announcement(&self.ev.body) else {
            return Err(missing("announcement text"));
        };
        let pos = self.ev.body.room_pos().map_or(0, |(_, p)| p.0);
        self.conn
            .prepare_cached(
                "INSERT INTO items (id, room_id, seq, pos, kind, sender, text, created_at, announcement)
                 VALUES (?1, ?2, ?3, ?4, 'announcement', ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                item_key(rid, seq.0),
                rid,
                seq.0,
                pos,
                by.map(UserId::as_str),
                text,
                self.at(),
                data.to_string()
            ])?;
        self.conn
            .prepare_cached("UPDATE rooms SET last_seq = ?2, activity = ?3 WHERE id = ?1")?
            .execute(params![rid, seq.0, self.at()])?;
        Ok(())
    }
}

/// Applies `ev` to every projection.
pub fn apply(conn: &Connection, ev: &Event) -> R {
    apply_rows(conn, ev, None)?;
    conn.prepare_cached(
        "UPDATE apps SET last_offset = ?2, messages_count = messages_count + ?3 WHERE id = ?1",
    )?
    .execute(params![ev.app.0, ev.offset.0, messages_delta(&ev.body)])?;
    Ok(())
}

/// Applies `ev` to every projection except the app row's `last_offset` and `messages_count`,
/// which the caller owes (the writer updates them once per batch). `rid` is the id of the
/// event's room when the caller knows it.
pub fn apply_rows(conn: &Connection, ev: &Event, rid: Option<i64>) -> R {
    let cx = Cx { conn, ev, rid };
    use EventBody::*;
    match &ev.body {
        AppCreated { .. } | AppRenamed { .. } => apps::apply(&cx),
        UserUpserted { .. } | UserLoggedIn { .. } | UserSeen { .. } => users::apply(&cx),
        RoomCreated { .. } | RoomUpdated { .. } | RoomDeleted { .. } => rooms::apply(&cx),
        Membership { .. } | ReadMarkerSet { .. } => members::apply(&cx),
        MessagePosted { .. } | MessageEdited { .. } | MessageDeleted { .. } => messages::apply(&cx),
        MeetupCreated { .. }
        | MeetupUpdated { .. }
        | MeetupCancelled { .. }
        | RsvpChanged { .. } => meetups::apply(&cx),
        PollCreated { .. } | VoteCast { .. } | VoteWithdrawn { .. } | PollClosed { .. } => {
            polls::apply(&cx)
        }
    }
}
