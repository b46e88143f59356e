//! The write transaction the rules run in: reads see earlier writes of the same transaction.

use crate::cache::WriterCache;
use crate::rows::{self, APP_COLS, ITEM_COLS, direct_key};
use crate::{meetups, polls, projection};
use confab_core::event::{EVENT_VERSION, Event, EventBody};
use confab_core::ids::{
    AppId, MeetupNumber, Offset, PollNumber, RoomNumber, Seq, Timestamp, UserId,
};
use confab_core::meetups::{Meetup, Poll, Rsvp};
use confab_core::model::{App, Item, Member, User};
use confab_core::store::{RoomState, StoreResult, Tx};
use rusqlite::{Connection, OptionalExtension, params};

pub struct SqliteTx<'c> {
    pub conn: &'c Connection,
    pub now: Timestamp,
    /// Events appended so far, in order, for publication after commit.
    pub appended: Vec<Event>,
    /// What the writer knows from earlier commands (see `cache`).
    pub cache: &'c mut WriterCache,
}

use crate::fault::sql as be;

impl SqliteTx<'_> {
    fn rid(&mut self, app: AppId, room: RoomNumber) -> StoreResult<Option<i64>> {
        if let Some(r) = self.cache.room(app, room) {
            return Ok(Some(r.id));
        }
        let id = rows::room_id(self.conn, app, room).map_err(be)?;
        if let Some(id) = id {
            self.cache.put_room(app, room, id, None);
        }
        Ok(id)
    }
}

impl Tx for SqliteTx<'_> {
    fn now(&self) -> Timestamp {
        self.now
    }

    fn app(&mut self, app: AppId) -> StoreResult<Option<App>> {
        self.conn
            .prepare_cached(&format!("SELECT {APP_COLS} FROM apps WHERE id = ?1"))
            .and_then(|mut s| s.query_row(params![app.0], rows::app).optional())
            .map_err(be)
    }

    fn next_app_id(&mut self) -> StoreResult<AppId> {
        // From the log, not the projection: an app id is never reused.
        self.conn
            .query_row("SELECT IFNULL(MAX(app_id), 0) + 1 FROM events", [], |r| {
                r.get(0)
            })
            .map(AppId)
            .map_err(be)
    }

    fn app_token_taken(&mut self, token: &str) -> StoreResult<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM apps WHERE token = ?1")
            .and_then(|mut s| s.exists(params![token]))
            .map_err(be)
    }

    fn last_room_number(&mut self, app: AppId) -> StoreResult<RoomNumber> {
        self.conn
            .prepare_cached("SELECT last_room FROM apps WHERE id = ?1")
            .and_then(|mut s| s.query_row(params![app.0], |r| r.get(0)))
            .map(RoomNumber)
            .map_err(be)
    }

    fn user(&mut self, app: AppId, user: &UserId) -> StoreResult<Option<User>> {
        rows::user_by_id(self.conn, app, user).map_err(be)
    }

    fn room(&mut self, app: AppId, room: RoomNumber) -> StoreResult<Option<RoomState>> {
        if let Some(state) = self.cache.room(app, room).and_then(|r| r.state.clone()) {
            return Ok(Some(state));
        }
        let Some(row) = rows::room_by_number(self.conn, app, room).map_err(be)? else {
            return Ok(None);
        };
        let state = RoomState {
            room: row.room,
            direct: row.direct,
        };
        self.cache.put_room(app, room, row.id, Some(state.clone()));
        Ok(Some(state))
    }

    fn room_by_alias(&mut self, app: AppId, alias: &str) -> StoreResult<Option<RoomNumber>> {
        self.conn
            .prepare_cached("SELECT number FROM rooms WHERE app_id = ?1 AND alias = ?2")
            .and_then(|mut s| s.query_row(params![app.0, alias], |r| r.get(0)).optional())
            .map(|n| n.map(RoomNumber))
            .map_err(be)
    }

    fn direct_room(
        &mut self,
        app: AppId,
        a: &UserId,
        b: &UserId,
    ) -> StoreResult<Option<RoomNumber>> {
        self.conn
            .prepare_cached("SELECT number FROM rooms WHERE app_id = ?1 AND direct_key = ?2")
            .and_then(|mut s| {
                s.query_row(params![app.0, direct_key(a, b)], |r| r.get(0))
                    .optional()
            })
            .map(|n| n.map(RoomNumber))
            .map_err(be)
    }

    fn member(
        &mut self,
        app: AppId,
        room: RoomNumber,
        user: &UserId,
    ) -> StoreResult<Option<Member>> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(None);
        };
        if let Some(m) = self.cache.room(app, room).and_then(|r| r.members.get(user)) {
            return Ok(m.clone());
        }
        let member = rows::member_of(self.conn, rid, user).map_err(be)?;
        if let Some(r) = self.cache.room(app, room) {
            r.members.insert(user.clone(), member.clone());
        }
        Ok(member)
    }

    fn successor(
        &mut self,
        app: AppId,
        room: RoomNumber,
        except: &UserId,
    ) -> StoreResult<Option<UserId>> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(None);
        };
        self.conn
            .prepare_cached(
                "SELECT user_id FROM members WHERE room_id = ?1 AND state = 'joined' AND user_id <> ?2
                 ORDER BY role = 'admin' DESC, since ASC LIMIT 1",
            )
            .and_then(|mut s| s.query_row(params![rid, except.as_str()], |r| r.get(0)).optional())
            .map(|u| u.map(UserId))
            .map_err(be)
    }

    fn item(&mut self, app: AppId, room: RoomNumber, seq: Seq) -> StoreResult<Option<Item>> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(None);
        };
        rows::item_by_seq(self.conn, rid, seq).map_err(be)
    }

    fn item_by_client_id(
        &mut self,
        app: AppId,
        room: RoomNumber,
        sender: Option<&UserId>,
        client_id: &str,
    ) -> StoreResult<Option<Item>> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(None);
        };
        self.conn
            .prepare_cached(&format!(
                "SELECT {ITEM_COLS} FROM items WHERE room_id = ?1 AND client_id = ?2 AND sender IS ?3"
            ))
            .and_then(|mut s| {
                s.query_row(params![rid, client_id, sender.map(UserId::as_str)], rows::item).optional()
            })
            .map_err(be)
    }

    fn meetup(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
    ) -> StoreResult<Option<Meetup>> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(None);
        };
        meetups::meetup_of(self.conn, rid, meetup).map_err(be)
    }

    fn last_meetup_number(&mut self, app: AppId, room: RoomNumber) -> StoreResult<MeetupNumber> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(MeetupNumber(0));
        };
        meetups::last_number(self.conn, rid).map_err(be)
    }

    fn rsvp(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
        user: &UserId,
    ) -> StoreResult<Rsvp> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(Rsvp::None);
        };
        meetups::rsvp_of(self.conn, rid, meetup, user).map_err(be)
    }

    fn declined(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
    ) -> StoreResult<Vec<UserId>> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(Vec::new());
        };
        meetups::declined(self.conn, rid, meetup).map_err(be)
    }

    fn joined_members(&mut self, app: AppId, room: RoomNumber) -> StoreResult<Vec<UserId>> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(Vec::new());
        };
        self.conn
            .prepare_cached(
                "SELECT user_id FROM members WHERE room_id = ?1 AND state = 'joined' ORDER BY user_id",
            )
            .and_then(|mut s| {
                s.query_map(params![rid], |r| r.get(0).map(UserId))?
                    .collect()
            })
            .map_err(be)
    }

    fn poll(
        &mut self,
        app: AppId,
        room: RoomNumber,
        poll: PollNumber,
    ) -> StoreResult<Option<Poll>> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(None);
        };
        polls::poll_of(self.conn, rid, poll).map_err(be)
    }

    fn last_poll_number(&mut self, app: AppId, room: RoomNumber) -> StoreResult<PollNumber> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(PollNumber(0));
        };
        polls::last_number(self.conn, rid).map_err(be)
    }

    fn ballot(
        &mut self,
        app: AppId,
        room: RoomNumber,
        poll: PollNumber,
        user: &UserId,
    ) -> StoreResult<Option<Vec<u32>>> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(None);
        };
        polls::ballot(self.conn, rid, poll, user).map_err(be)
    }

    fn open_polls(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
    ) -> StoreResult<Vec<PollNumber>> {
        let Some(rid) = self.rid(app, room)? else {
            return Ok(Vec::new());
        };
        polls::open_of_meetup(self.conn, rid, meetup).map_err(be)
    }

    fn append(&mut self, app: AppId, body: EventBody) -> StoreResult<Event> {
        let offset = match self.cache.next_offset(app) {
            Some(o) => o,
            None => {
                let last: Option<i64> = self
                    .conn
                    .prepare_cached("SELECT last_offset FROM apps WHERE id = ?1")
                    .and_then(|mut s| s.query_row(params![app.0], |r| r.get(0)).optional())
                    .map_err(be)?;
                last.unwrap_or(0) + 1
            }
        };
        let event = Event {
            app,
            offset: Offset(offset),
            at: self.now,
            body,
        };
        insert_event(self.conn, &event).map_err(be)?;
        let rid = event
            .body
            .room()
            .and_then(|r| self.cache.room(app, r))
            .map(|r| r.id);
        projection::apply_rows(self.conn, &event, rid).map_err(be)?;
        if let EventBody::MessageDeleted { room, seq, .. } = &event.body {
            redact(self.conn, app, *room, rid, *seq).map_err(be)?;
        }
        self.cache.after_event(&event);
        self.appended.push(event.clone());
        Ok(event)
    }
}

/// Empties the text the log holds for a deleted message (see `EventBody::MessagePosted`).
/// Live only: on replay the events read are already redacted.
///
/// The posting event is found by the room position it took (kept on the item), the edits by an
/// index of edit events alone: nothing indexes the log by seq, so a send writes no such entry.
fn redact(
    conn: &Connection,
    app: AppId,
    room: RoomNumber,
    rid: Option<i64>,
    seq: Seq,
) -> rusqlite::Result<()> {
    let Some(rid) = rid.map_or_else(|| rows::room_id(conn, app, room), |id| Ok(Some(id)))? else {
        return Ok(());
    };
    let posted: Option<i64> = conn
        .prepare_cached("SELECT posted_pos FROM items WHERE id = ?1")?
        .query_row(params![rows::item_key(rid, seq.0)], |r| r.get(0))
        .optional()?
        .flatten();
    conn.prepare_cached(
        "UPDATE events SET body = json_set(body, '$.text', '', '$.redacted', json('true'))
          WHERE app_id = ?1 AND room_no = ?2 AND pos = ?3 AND type = 'message_posted'",
    )?
    .execute(params![app.0, room.0, posted])?;
    conn.prepare_cached(
        "UPDATE events SET body = json_set(body, '$.text', '', '$.redacted', json('true'))
          WHERE app_id = ?1 AND room_no = ?2 AND seq = ?3 AND type = 'message_edited'",
    )?
    .execute(params![app.0, room.0, seq.0])?;
    Ok(())
}

pub(crate) fn insert_event(conn: &Connection, ev: &Event) -> rusqlite::Result<()> {
    let (room, pos) = ev
        .body
        .room_pos()
        .map_or((None, None), |(r, p)| (Some(r.0), Some(p.0)));
    let room = room.or(ev.body.room().map(|r| r.0));
    conn.prepare_cached(
        "INSERT INTO events (app_id, \"offset\", room_no, pos, seq, type, v, at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        ev.app.0,
        ev.offset.0,
        room,
        pos,
        ev.body.item_seq().map(|s| s.0),
        ev.body.type_name(),
        EVENT_VERSION,
        ev.at.0,
        ev.body.encode()
    ])?;
    Ok(())
}
