//! The write transaction the rules run in. Reads see the transaction's own writes: the
//! frequent events (sends, edits, deletions, read markers, memberships, room creations and
//! settings, logins and sightings) and the meetup and poll events (see `planning`) are
//! projected in memory (`pending`) and written together, before anything that could read or
//! change their rows and is not answered from memory; the others (room deletions, apps, user
//! upserts) are projected row by row as they are appended. Events are buffered without
//! offsets and inserted by the writer at the end, once it has taken the app's offsets (see
//! `writer`).

use crate::conn::Conn;
use crate::pending::Pending;
use crate::projection::{self, Deltas};
use crate::rows::{self, APP_COLS, ITEM_COLS, MEMBER_COLS, ROOM_COLS, USER_COLS, direct_key};
use crate::schema::ROOMS_CLASS;
use confab_core::event::{Event, EventBody};
use confab_core::ids::{
    AppId, MeetupNumber, Offset, PollNumber, RoomNumber, Seq, Timestamp, UserId,
};
use confab_core::meetups::{Meetup, Poll, Rsvp};
use confab_core::model::{App, Item, Member, User};
use confab_core::store::{RoomState, StoreResult, Tx};
use std::collections::{HashMap, HashSet};

/// What one transaction has learnt and owes. Everything here is about rows this transaction
/// has locked (rooms, their memberships) or written, so no other node can change it meanwhile.
#[derive(Default)]
pub struct Batch {
    /// Appended events in order, offsets still 0.
    pub events: Vec<Event>,
    pub deltas: Deltas,
    /// Rooms read under their row lock (or created here), as the rules last saw them.
    pub rooms: HashMap<(AppId, RoomNumber), RoomState>,
    /// Memberships read in locked rooms, as this transaction has left them; `None`: no row.
    pub members: HashMap<(AppId, RoomNumber, UserId), Option<Member>>,
    /// Rooms created in this transaction: no membership of theirs is stored elsewhere.
    pub created: HashSet<(AppId, RoomNumber)>,
    /// Apps whose room-creation lock this transaction holds.
    pub creating: HashSet<AppId>,
    /// Users read in this transaction, as stored (`None`: no row); what `pending` owes them
    /// is applied on reading. Dropped when this transaction upserts them.
    pub users: HashMap<(AppId, UserId), Option<User>>,
    /// Writes decided but not yet made, and items known by client id or read.
    pub pending: Pending,
}

pub struct PgTx<'a> {
    pub c: &'a mut Conn,
    pub now: Timestamp,
    pub batch: &'a mut Batch,
}

impl PgTx<'_> {
    /// Writes what is buffered so far, so the database holds everything this transaction
    /// did. Called before any read or write that the buffered rows could change.
    pub fn flush(&mut self) -> StoreResult<()> {
        flush(self.c, self.batch)
    }

    /// Room numbers, aliases and direct pairs of `app` are decided only under this lock; the
    /// writer normally takes it up front (see `writer`), this is the safety net.
    fn creating(&mut self, app: AppId) -> StoreResult<()> {
        if self.batch.creating.insert(app) {
            self.c.exec(
                "SELECT pg_advisory_xact_lock($1, $2)",
                &[&ROOMS_CLASS, &(app.0 as i32)],
            )?;
        }
        Ok(())
    }

    /// Keeps the cache right after `ev`: the message events change a room exactly as the
    /// projection did, a read marker its membership (membership and room events projected in
    /// memory keep it themselves, see `memberships` and `rooms`); a deletion drops the room
    /// and its memberships, to be read again (from this transaction's own writes, made
    /// before it).
    fn after_event(&mut self, ev: &Event) {
        use EventBody::*;
        let app = ev.app;
        let mut with = |room: RoomNumber, f: &dyn Fn(&mut confab_core::model::Room)| {
            if let Some(s) = self.batch.rooms.get_mut(&(app, room)) {
                f(&mut s.room);
            }
        };
        match &ev.body {
            MessagePosted { room, seq, pos, .. } => with(*room, &|r| {
                r.last_seq = *seq;
                r.last_pos = *pos;
                r.messages_count += 1;
            }),
            MessageEdited { room, pos, .. } => with(*room, &|r| r.last_pos = *pos),
            MessageDeleted { room, pos, .. } => with(*room, &|r| {
                r.last_pos = *pos;
                r.messages_count -= 1;
            }),
            // Meetup and poll events move the room's position, and an announcement its seq,
            // exactly as their projections did.
            MeetupCreated { room, pos, seq, .. }
            | MeetupCancelled { room, pos, seq, .. }
            | PollCreated { room, pos, seq, .. }
            | PollClosed { room, pos, seq, .. } => with(*room, &|r| {
                r.last_pos = *pos;
                r.last_seq = *seq;
            }),
            MeetupUpdated { room, pos, seq, .. } => with(*room, &|r| {
                r.last_pos = *pos;
                if let Some(seq) = seq {
                    r.last_seq = *seq;
                }
            }),
            RsvpChanged { room, pos, .. }
            | VoteCast { room, pos, .. }
            | VoteWithdrawn { room, pos, .. } => with(*room, &|r| r.last_pos = *pos),
            ReadMarkerSet { room, user, seq } => {
                if let Some(Some(m)) = self.batch.members.get_mut(&(app, *room, user.clone())) {
                    m.read_seq = m.read_seq.max(*seq);
                }
            }
            UserUpserted { user, .. } => {
                self.batch.users.remove(&(app, user.clone()));
            }
            RoomDeleted { room, .. } => self.forget_room(app, *room),
            RoomCreated { .. }
            | RoomUpdated { .. }
            | Membership { .. }
            | AppCreated { .. }
            | AppRenamed { .. }
            | UserLoggedIn { .. }
            | UserSeen { .. } => {}
        }
    }

    /// Drops `room` and its memberships from the cache (written out before: they are read
    /// again from the database, even for a room created here).
    fn forget_room(&mut self, app: AppId, room: RoomNumber) {
        self.batch.created.remove(&(app, room));
        self.batch.rooms.remove(&(app, room));
        self.batch
            .members
            .retain(|(a, r, _), _| !(*a == app && *r == room));
    }
}

impl Tx for PgTx<'_> {
    fn now(&self) -> Timestamp {
        self.now
    }

    fn app(&mut self, app: AppId) -> StoreResult<Option<App>> {
        self.c
            .opt(
                &format!("SELECT {APP_COLS} FROM apps WHERE id = $1"),
                &[&app.0],
            )?
            .map(|r| rows::app(&r))
            .transpose()
    }

    fn next_app_id(&mut self) -> StoreResult<AppId> {
        // Under the app-creation lock (taken by the writer). From the log as well as the
        // projection: an app id is never reused, and this transaction's new apps have rows
        // but no logged events yet.
        let r = self.c.one(
            "SELECT GREATEST((SELECT MAX(app_id) FROM events), (SELECT MAX(id) FROM apps), 0) + 1",
            &[],
        )?;
        Ok(AppId(rows::get(&r, 0)?))
    }

    fn app_token_taken(&mut self, token: &str) -> StoreResult<bool> {
        Ok(self
            .c
            .opt("SELECT 1 FROM apps WHERE token = $1", &[&token])?
            .is_some())
    }

    fn last_room_number(&mut self, app: AppId) -> StoreResult<RoomNumber> {
        self.creating(app)?;
        // Rooms not yet written were numbered after every stored one.
        if let Some(n) = self.batch.pending.last_new_room(app) {
            return Ok(n);
        }
        let r = self.c.one(
            "SELECT COALESCE(MAX(number), 0) FROM rooms WHERE app_id = $1",
            &[&app.0],
        )?;
        Ok(RoomNumber(rows::get(&r, 0)?))
    }

    fn user(&mut self, app: AppId, user: &UserId) -> StoreResult<Option<User>> {
        let key = (app, user.clone());
        let stored = match self.batch.users.get(&key) {
            Some(u) => u.clone(),
            None => {
                let u = self
                    .c
                    .opt(
                        &format!(
                            "SELECT {USER_COLS} FROM users WHERE app_id = $1 AND user_id = $2"
                        ),
                        &[&app.0, &user.as_str()],
                    )?
                    .map(|r| rows::user(&r))
                    .transpose()?;
                self.batch.users.insert(key, u.clone());
                u
            }
        };
        Ok(stored.map(|mut u| {
            self.batch.pending.settle_user(app, &mut u);
            u
        }))
    }

    fn room(&mut self, app: AppId, room: RoomNumber) -> StoreResult<Option<RoomState>> {
        if let Some(state) = self.batch.rooms.get(&(app, room)) {
            return Ok(Some(state.clone()));
        }
        // Normally locked up front with the batch's other rooms; a room reached otherwise is
        // locked now, so its counters are never read unlocked. (A room with buffered sends is
        // still in the cache: only events that flush first drop rooms from it.)
        let Some(r) = self.c.opt(
            &format!("SELECT {ROOM_COLS} FROM rooms WHERE app_id = $1 AND number = $2 FOR UPDATE"),
            &[&app.0, &room.0],
        )?
        else {
            return Ok(None);
        };
        let row = rows::room_at(&r, 0)?;
        let state = RoomState {
            room: row.room,
            direct: row.direct,
        };
        self.batch.rooms.insert((app, room), state.clone());
        Ok(Some(state))
    }

    fn room_by_alias(&mut self, app: AppId, alias: &str) -> StoreResult<Option<RoomNumber>> {
        self.creating(app)?;
        if let Some(n) = self.batch.pending.new_room_by_alias(app, alias) {
            return Ok(Some(n));
        }
        self.c
            .opt(
                "SELECT number FROM rooms WHERE app_id = $1 AND alias = $2",
                &[&app.0, &alias],
            )?
            .map(|r| rows::get(&r, 0).map(RoomNumber))
            .transpose()
    }

    fn direct_room(
        &mut self,
        app: AppId,
        a: &UserId,
        b: &UserId,
    ) -> StoreResult<Option<RoomNumber>> {
        self.creating(app)?;
        let key = direct_key(a, b);
        if let Some(n) = self.batch.pending.new_direct_room(app, &key) {
            return Ok(Some(n));
        }
        self.c
            .opt(
                "SELECT number FROM rooms WHERE app_id = $1 AND direct_key = $2",
                &[&app.0, &key],
            )?
            .map(|r| rows::get(&r, 0).map(RoomNumber))
            .transpose()
    }

    fn member(
        &mut self,
        app: AppId,
        room: RoomNumber,
        user: &UserId,
    ) -> StoreResult<Option<Member>> {
        let key = (app, room, user.clone());
        if let Some(m) = self.batch.members.get(&key) {
            return Ok(m.clone());
        }
        if let Some(m) = self.batch.pending.member(&key) {
            return Ok(Some(m.clone()));
        }
        if self.batch.created.contains(&(app, room)) {
            self.batch.members.insert(key, None);
            return Ok(None);
        }
        let mut member = self
            .c
            .opt(
                &format!(
                    "SELECT {MEMBER_COLS} FROM members
                     WHERE app_id = $1 AND room_no = $2 AND user_id = $3"
                ),
                &[&app.0, &room.0, &user.as_str()],
            )?
            .map(|r| rows::member_at(&r, 0))
            .transpose()?;
        if let (Some(m), Some(seq)) = (&mut member, self.batch.pending.marked(&key)) {
            m.read_seq = m.read_seq.max(seq);
        }
        self.batch.members.insert(key, member.clone());
        Ok(member)
    }

    fn successor(
        &mut self,
        app: AppId,
        room: RoomNumber,
        except: &UserId,
    ) -> StoreResult<Option<UserId>> {
        // Rare (an owner leaving): all the room's joined members are wanted, so the buffered
        // memberships are written out first rather than merged in.
        self.flush()?;
        self.c
            .opt(
                "SELECT user_id FROM members
                 WHERE app_id = $1 AND room_no = $2 AND state = 'joined' AND user_id <> $3
                 ORDER BY role = 'admin' DESC, since ASC LIMIT 1",
                &[&app.0, &room.0, &except.as_str()],
            )?
            .map(|r| rows::get(&r, 0).map(UserId))
            .transpose()
    }

    fn item(&mut self, app: AppId, room: RoomNumber, seq: Seq) -> StoreResult<Option<Item>> {
        let key = (app, room, seq);
        if let Some(item) = self.batch.pending.item(&key) {
            return Ok(Some(item));
        }
        // What a stored item owes (replies, an edit, its deletion) is applied to the row
        // rather than written out first.
        let Some(r) = self.c.opt(
            &format!(
                "SELECT {ITEM_COLS} FROM items WHERE app_id = $1 AND room_no = $2 AND seq = $3"
            ),
            &[&app.0, &room.0, &seq.0],
        )?
        else {
            return Ok(None);
        };
        let mut item = rows::item(&r)?;
        self.batch.pending.remember(key, item.clone());
        self.batch.pending.settle(&key, &mut item);
        Ok(Some(item))
    }

    fn item_by_client_id(
        &mut self,
        app: AppId,
        room: RoomNumber,
        sender: Option<&UserId>,
        client_id: &str,
    ) -> StoreResult<Option<Item>> {
        let key = (app, room, sender.cloned(), client_id.to_owned());
        if let Some(known) = self.batch.pending.by_client_id(&key) {
            return Ok(known);
        }
        self.flush()?;
        self.c
            .opt(
                &format!(
                    "SELECT {ITEM_COLS} FROM items WHERE app_id = $1 AND room_no = $2
                       AND client_id = $3 AND sender IS NOT DISTINCT FROM $4 LIMIT 1"
                ),
                &[&app.0, &room.0, &client_id, &sender.map(UserId::as_str)],
            )?
            .map(|r| rows::item(&r))
            .transpose()
    }

    fn meetup(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
    ) -> StoreResult<Option<Meetup>> {
        self.plan_meetup(app, room, meetup)
    }

    fn last_meetup_number(&mut self, app: AppId, room: RoomNumber) -> StoreResult<MeetupNumber> {
        self.plan_last_meetup(app, room)
    }

    fn rsvp(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
        user: &UserId,
    ) -> StoreResult<Rsvp> {
        self.plan_rsvp(app, room, meetup, user)
    }

    fn declined(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
    ) -> StoreResult<Vec<UserId>> {
        self.plan_declined(app, room, meetup)
    }

    fn joined_members(&mut self, app: AppId, room: RoomNumber) -> StoreResult<Vec<UserId>> {
        // Read, then the memberships owed laid over: nothing is written out for it.
        self.plan_joined_members(app, room)
    }

    fn poll(
        &mut self,
        app: AppId,
        room: RoomNumber,
        poll: PollNumber,
    ) -> StoreResult<Option<Poll>> {
        self.plan_poll(app, room, poll)
    }

    fn last_poll_number(&mut self, app: AppId, room: RoomNumber) -> StoreResult<PollNumber> {
        self.plan_last_poll(app, room)
    }

    fn ballot(
        &mut self,
        app: AppId,
        room: RoomNumber,
        poll: PollNumber,
        user: &UserId,
    ) -> StoreResult<Option<Vec<u32>>> {
        self.plan_ballot(app, room, poll, user)
    }

    fn open_polls(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
    ) -> StoreResult<Vec<PollNumber>> {
        self.plan_open_polls(app, room, meetup)
    }

    fn append(&mut self, app: AppId, body: EventBody) -> StoreResult<Event> {
        let event = Event {
            app,
            // Taken at the end of the transaction, under the app row's lock.
            offset: Offset(0),
            at: self.now,
            body,
        };
        if !self.buffer(&event)? {
            // Events about apps and users touch no row buffered here but users' times, which
            // they leave alone; any room event may read or change buffered rows.
            if event.body.room_pos().is_some() {
                self.flush()?;
            }
            projection::apply(self.c, &event, &mut self.batch.deltas)?;
        }
        self.after_event(&event);
        self.batch.events.push(event.clone());
        if let EventBody::MessageDeleted { room, seq, .. } = &event.body {
            self.redact(app, *room, *seq);
        }
        Ok(event)
    }
}

/// See `PgTx::flush`; the writer also calls it on its own before COMMIT.
pub fn flush(c: &mut Conn, batch: &mut Batch) -> StoreResult<()> {
    if batch.pending.is_empty() {
        return Ok(());
    }
    let f = batch.pending.take();
    c.pipeline(&f.params().steps())?;
    Ok(())
}
