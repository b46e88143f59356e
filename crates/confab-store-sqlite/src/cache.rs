//! What the writer thread remembers between commands, so that a send costs its writes and
//! little else: each room's id, row and memberships as the rules last read them, and each app's
//! last log offset with the counter update still owed to its row.
//!
//! Only the writer changes the database, so an entry stays right as long as every event the
//! writer applies is also applied here (`after_event`). The rule for that is deliberately
//! coarse: the message, meetup and poll events change a cached room in a way that is known exactly
//! (the same columns the projection updates: position, last seq, message count); any other event
//! of a room drops the room with all its memberships, to be read again. Entries a command read are only trusted beyond the command if it
//! succeeded or wrote nothing: when a command that appended fails, its savepoint is rolled back
//! and so is everything here (`forget`).
//!
//! The app row's `last_offset` and `messages_count` are written once per app per batch
//! (`flush`, just before the commit) instead of once per event; nothing inside a write
//! transaction reads those two columns, and readers only see committed state.

use confab_core::event::{Event, EventBody};
use confab_core::ids::{AppId, RoomNumber, UserId};
use confab_core::model::Member;
use confab_core::store::RoomState;
use rusqlite::{Connection, params};
use std::collections::HashMap;

/// Past this many rooms (or memberships in one room) the cache starts over.
const MAX_ROOMS: usize = 10_000;
const MAX_MEMBERS: usize = 100_000;

pub struct Room {
    pub id: i64,
    /// The row as the rules see it; `None` until read.
    pub state: Option<RoomState>,
    /// Memberships read so far; `None` inside means "no membership row".
    pub members: HashMap<UserId, Option<Member>>,
}

/// An app's log position: the last offset taken, and how far the row lags behind.
#[derive(Clone, Copy)]
struct AppLog {
    /// Last offset taken (committed or in the open transaction).
    last_offset: i64,
    /// Whether `apps.last_offset` is behind `last_offset` in the open transaction.
    dirty: bool,
    /// `messages_count` change not yet written to the row.
    messages_delta: i64,
}

#[derive(Default)]
pub struct WriterCache {
    rooms: HashMap<(AppId, RoomNumber), Room>,
    apps: HashMap<AppId, AppLog>,
    /// The apps' state before the running command first changed it, to undo on failure.
    undo_apps: Vec<(AppId, Option<AppLog>)>,
}

impl WriterCache {
    pub fn room(&mut self, app: AppId, room: RoomNumber) -> Option<&mut Room> {
        self.rooms.get_mut(&(app, room))
    }

    /// Remembers a room's id (and row, when read), replacing what was known.
    pub fn put_room(
        &mut self,
        app: AppId,
        number: RoomNumber,
        id: i64,
        state: Option<RoomState>,
    ) -> &mut Room {
        if self.rooms.len() >= MAX_ROOMS && !self.rooms.contains_key(&(app, number)) {
            self.rooms.clear();
        }
        let entry = self.rooms.entry((app, number)).or_insert_with(|| Room {
            id,
            state: None,
            members: HashMap::new(),
        });
        entry.id = id;
        if state.is_some() {
            entry.state = state;
        }
        if entry.members.len() >= MAX_MEMBERS {
            entry.members.clear();
        }
        entry
    }

    /// The next offset of `app`'s log, when known without reading the row.
    pub fn next_offset(&self, app: AppId) -> Option<i64> {
        self.apps.get(&app).map(|a| a.last_offset + 1)
    }

    /// Keeps what the rows and the log now say after `ev` was appended and applied (except
    /// the app row, which `flush` writes).
    pub fn after_event(&mut self, ev: &Event) {
        let prev = self.apps.get(&ev.app).copied();
        if !self.undo_apps.iter().any(|(a, _)| *a == ev.app) {
            self.undo_apps.push((ev.app, prev));
        }
        let log = self.apps.entry(ev.app).or_insert(AppLog {
            last_offset: 0,
            dirty: false,
            messages_delta: 0,
        });
        log.last_offset = ev.offset.0;
        log.dirty = true;
        log.messages_delta += messages_delta(&ev.body);

        use EventBody::*;
        match &ev.body {
            MessagePosted { room, seq, pos, .. } => {
                self.with_state(ev.app, *room, |r| {
                    r.last_seq = *seq;
                    r.last_pos = *pos;
                    r.messages_count += 1;
                });
            }
            MessageEdited { room, pos, .. } => {
                self.with_state(ev.app, *room, |r| r.last_pos = *pos);
            }
            MessageDeleted { room, pos, .. } => {
                self.with_state(ev.app, *room, |r| {
                    r.last_pos = *pos;
                    r.messages_count -= 1;
                });
            }
            ReadMarkerSet { room, user, .. } => {
                if let Some(r) = self.rooms.get_mut(&(ev.app, *room)) {
                    r.members.remove(user);
                }
            }
            // A room's gatherings move its position, and its last seq when they announce;
            // nothing else of the row or of its memberships.
            MeetupCreated { room, pos, seq, .. }
            | MeetupCancelled { room, pos, seq, .. }
            | PollCreated { room, pos, seq, .. }
            | PollClosed { room, pos, seq, .. } => {
                self.with_state(ev.app, *room, |r| {
                    r.last_seq = *seq;
                    r.last_pos = *pos;
                });
            }
            MeetupUpdated { room, pos, seq, .. } => {
                self.with_state(ev.app, *room, |r| {
                    if let Some(seq) = seq {
                        r.last_seq = *seq;
                    }
                    r.last_pos = *pos;
                });
            }
            RsvpChanged { room, pos, .. }
            | VoteCast { room, pos, .. }
            | VoteWithdrawn { room, pos, .. } => {
                self.with_state(ev.app, *room, |r| r.last_pos = *pos);
            }
            RoomCreated { room, .. }
            | RoomUpdated { room, .. }
            | RoomDeleted { room, .. }
            | Membership { room, .. } => {
                self.rooms.remove(&(ev.app, *room));
            }
            AppCreated { .. }
            | AppRenamed { .. }
            | UserUpserted { .. }
            | UserLoggedIn { .. }
            | UserSeen { .. } => {}
        }
    }

    fn with_state(
        &mut self,
        app: AppId,
        room: RoomNumber,
        f: impl FnOnce(&mut confab_core::model::Room),
    ) {
        if let Some(state) = self
            .rooms
            .get_mut(&(app, room))
            .and_then(|r| r.state.as_mut())
        {
            f(&mut state.room);
        }
    }

    /// The running command succeeded: what it changed stays.
    pub fn command_done(&mut self) {
        self.undo_apps.clear();
    }

    /// The running command was rolled back after it appended: rooms are read again, and the
    /// apps' log positions go back to where they were before it.
    pub fn command_undone(&mut self) {
        self.rooms.clear();
        for (app, prev) in self.undo_apps.drain(..) {
            match prev {
                Some(p) => self.apps.insert(app, p),
                None => self.apps.remove(&app),
            };
        }
    }

    /// The whole transaction was rolled back (or the log replayed): nothing known holds.
    pub fn forget(&mut self) {
        self.rooms.clear();
        self.apps.clear();
        self.undo_apps.clear();
    }

    /// Writes the app rows' log offset and message count owed by this transaction.
    pub fn flush(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let mut stmt = conn.prepare_cached(
            "UPDATE apps SET last_offset = ?2, messages_count = messages_count + ?3 WHERE id = ?1",
        )?;
        for (app, log) in self.apps.iter_mut() {
            if log.dirty {
                stmt.execute(params![app.0, log.last_offset, log.messages_delta])?;
                log.dirty = false;
                log.messages_delta = 0;
            }
        }
        Ok(())
    }
}

/// How an event changes its app's message count.
pub fn messages_delta(body: &EventBody) -> i64 {
    match body {
        EventBody::MessagePosted { .. } => 1,
        EventBody::MessageDeleted { .. } => -1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::WriterCache;
    use confab_core::event::{Event, EventBody};
    use confab_core::ids::{AppId, Offset, Timestamp, UserId};

    fn seen(app: i64, offset: i64) -> Event {
        Event {
            app: AppId(app),
            offset: Offset(offset),
            at: Timestamp(0),
            body: EventBody::UserSeen {
                user: UserId("u".into()),
            },
        }
    }

    #[test]
    fn a_rolled_back_command_gives_its_offsets_back() {
        let mut c = WriterCache::default();
        c.after_event(&seen(1, 7));
        c.command_done();
        c.after_event(&seen(1, 8));
        c.after_event(&seen(2, 1));
        c.command_undone();
        // The next command must reuse offset 8 of app 1, and read app 2's from its row.
        assert_eq!(c.next_offset(AppId(1)), Some(8));
        assert_eq!(c.next_offset(AppId(2)), None);
        c.forget();
        assert_eq!(c.next_offset(AppId(1)), None);
    }
}
