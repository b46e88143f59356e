//! The projections: `apply` turns one event into read-model updates. The live write path and
//! `rebuild` both call it, so a replayed store equals the live one.
//!
//! The app row is not touched here except by the events that are about the app itself
//! (created, renamed): its counters change by deltas that the writer applies in the one
//! statement that also takes the app's log offsets, right before COMMIT (see `writer`), so
//! the app row is locked only across the commit.
//!
//! Each area's events are projected in `projection/<area>.rs`; `apply` only dispatches, with
//! no catch-all arm, so a new event does not compile until some area projects it.

mod apps;
mod meetups;
mod members;
mod messages;
mod polls;
mod rooms;
mod users;

use crate::conn::Conn;
use confab_core::error::StoreError;
use confab_core::event::{Event, EventBody};
use confab_core::ids::{AppId, Seq, UserId};
use confab_core::rules::announcement;
use confab_core::store::StoreResult;
use std::collections::BTreeMap;

/// What a transaction owes to an app row's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    pub events: i64,
    pub messages: i64,
    pub users: i64,
    pub rooms: i64,
}

/// Per app, in app id order (the order the app rows are locked in).
pub type Deltas = BTreeMap<AppId, Delta>;

pub(crate) fn missing(what: &str) -> StoreError {
    StoreError::Internal(format!("projection: {what} missing"))
}

/// Applies `ev` to every projection but the app row's counters, which go to `deltas`.
pub fn apply(c: &mut Conn, ev: &Event, deltas: &mut Deltas) -> StoreResult<()> {
    use EventBody::*;
    let d = deltas.entry(ev.app).or_default();
    d.events += 1;
    match &ev.body {
        AppCreated { .. } | AppRenamed { .. } => apps::apply(c, ev),
        UserUpserted { .. } | UserLoggedIn { .. } | UserSeen { .. } => users::apply(c, ev, d),
        RoomCreated { .. } | RoomUpdated { .. } | RoomDeleted { .. } => rooms::apply(c, ev, d),
        Membership { .. } => members::apply(c, ev),
        MessagePosted { .. }
        | MessageEdited { .. }
        | MessageDeleted { .. }
        | ReadMarkerSet { .. } => messages::apply(c, ev, d),
        MeetupCreated { .. }
        | MeetupUpdated { .. }
        | MeetupCancelled { .. }
        | RsvpChanged { .. } => meetups::apply(c, ev),
        PollCreated { .. } | VoteCast { .. } | VoteWithdrawn { .. } | PollClosed { .. } => {
            polls::apply(c, ev)
        }
    }
}

/// An event handed to an area that does not own it: a slip in `apply`'s dispatch.
fn misrouted(body: &EventBody, area: &str) -> StoreError {
    StoreError::Internal(format!(
        "projection: {} is not an event of {area}",
        body.type_name()
    ))
}

/// Writes the announcement item an event carries at `seq`.
pub(super) fn announce(c: &mut Conn, ev: &Event, seq: Seq, by: Option<&UserId>) -> StoreResult<()> {
    let Some((text, data)) = announcement(&ev.body) else {
        return Err(missing("announcement text"));
    };
    let (room, pos) = ev.body.room_pos().map_or((0, 0), |(r, p)| (r.0, p.0));
    c.exec(
        "WITH item AS (
             INSERT INTO items (app_id, room_no, seq, pos, kind, sender, text, created_at,
                 announcement)
             VALUES ($1, $2, $3, $4, 'announcement', $5, $6, $7, $8)
         )
         UPDATE rooms SET last_seq = $3, activity = $7 WHERE app_id = $1 AND number = $2",
        &[
            &ev.app.0,
            &room,
            &seq.0,
            &pos,
            &by.map(UserId::as_str),
            &text,
            &ev.at.0,
            &data.to_string(),
        ],
    )?;
    Ok(())
}

/// Applies the counters owed to an app's row and takes offsets of its log (app, events,
/// messages, users, rooms); returns the new last offset.
pub const SETTLE_SQL: &str = "UPDATE apps SET last_offset = last_offset + $2,
        messages_count = messages_count + $3, users_count = users_count + $4,
        rooms_count = rooms_count + $5
    WHERE id = $1 RETURNING last_offset";

/// Applies the counters owed to `app`'s row and takes `d.events` offsets of its log, in one
/// statement; returns the first offset taken.
pub fn settle_app(c: &mut Conn, app: AppId, d: Delta) -> StoreResult<i64> {
    let row = c
        .opt(
            SETTLE_SQL,
            &[&app.0, &d.events, &d.messages, &d.users, &d.rooms],
        )?
        .ok_or_else(|| missing("app row"))?;
    let last: i64 = crate::rows::get(&row, 0)?;
    Ok(last - d.events + 1)
}
