//! What a batch decided but has not written yet: its new rooms and room settings, its sends,
//! edits and deletions (items, reply counts, the rooms' counters, the log's redactions), its
//! membership changes (member rows, member counts, announcements), its read markers, its
//! users' login and last-seen times, and its meetups, answers, polls, ballots and alerts
//! (`plans`). They are projected here in memory and written together by a few set-based
//! statements (`flush`) instead of one statement or more per event. The rows written are
//! exactly those `projection::apply` writes for the same events one at a time (rebuild
//! replays through that one), so a replayed store still equals the live one.
//!
//! Reads of the transaction must see these writes before they are made: `PgTx` answers from
//! here what it can (an item by seq or client id, a membership, a new room by number, alias
//! or pair, a user's times, a meetup, an answer, a poll, a ballot, the last meetup and poll
//! numbers, a meetup's open polls, a room's joined members) and writes everything out before
//! any read or projection that could touch the rows (see `PgTx::flush`).

use crate::flush::Flush;
use crate::plans::Plans;
use confab_core::ids::{AppId, Pos, RoomNumber, Seq, Timestamp, UserId};
use confab_core::model::{Item, Member, User, Visibility, direct_key};
use confab_core::store::RoomState;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// An item found by client id: app, room, sender, client id.
pub type ClientKey = (AppId, RoomNumber, Option<UserId>, String);
/// An item by its seq.
pub type ItemKey = (AppId, RoomNumber, Seq);
/// A membership.
pub type MemberKey = (AppId, RoomNumber, UserId);

/// What a room row owes for the events since the last flush: `None` leaves a column as it is.
#[derive(Debug, Clone)]
pub(crate) struct RoomBump {
    pub last_seq: Option<Seq>,
    pub last_pos: Pos,
    pub messages: i64,
    /// Joined members gained less those lost.
    pub members: i64,
    pub activity: Option<Timestamp>,
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub visibility: Option<Visibility>,
    pub updated_at: Option<Timestamp>,
}

/// The last edit or the deletion of an item, as its projection writes it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// `None`: deleted.
    pub text: Option<String>,
    pub pos: Pos,
    pub at: Timestamp,
}

impl Change {
    fn apply(&self, item: &mut Item) {
        item.text.clone_from(&self.text);
        item.pos = self.pos;
        item.edited_at = Some(self.at);
        item.deleted |= self.text.is_none();
    }
}

/// What an item stored before this batch (or before its last flush) owes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Owed {
    /// Replies sent less replies deleted.
    pub replies: i64,
    pub change: Option<Change>,
}

/// A user's times owed: the last login's, and the last time seen (a login is a sighting).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    pub login: Option<Timestamp>,
    pub seen: Timestamp,
}

#[derive(Default)]
pub struct Pending {
    /// Rooms created, in order, as their rows are first inserted (at creation: what the
    /// batch did to them since is in `rooms`, like for any room).
    pub(crate) new_rooms: Vec<(AppId, RoomState)>,
    /// New items in order, with their app and room, as they stand (edits applied).
    pub(crate) items: Vec<(AppId, RoomNumber, Item)>,
    by_seq: HashMap<ItemKey, usize>,
    /// Changes owed to items already in the database.
    pub(crate) owed: BTreeMap<ItemKey, Owed>,
    pub(crate) rooms: BTreeMap<(AppId, RoomNumber), RoomBump>,
    /// Stored items whose logged text must be emptied (their events of earlier transactions).
    pub(crate) redact: BTreeSet<ItemKey>,
    /// Membership rows as this transaction leaves them, written whole (upserted). A read
    /// marker on one of them moves its `read_seq` here rather than going to `marks`.
    pub(crate) members: BTreeMap<MemberKey, Member>,
    /// Read markers owed to memberships not in `members`, the highest per membership.
    pub(crate) marks: BTreeMap<MemberKey, Seq>,
    pub(crate) users: BTreeMap<(AppId, UserId), Seen>,
    /// Stored items as read from the database in this transaction, without what is owed:
    /// their rooms are locked, so only this transaction changes them. Emptied by a flush.
    read: HashMap<ItemKey, Item>,
    /// Items by client id as they stand in this transaction: read with the batch's locks
    /// (`None`: no such item then), and kept current by the sends, edits and deletions here.
    /// Not emptied by a flush (the rows it holds are then stored as they are here).
    known: HashMap<ClientKey, Option<Item>>,
    /// Meetups, answers, polls, ballots and alerts: what is known of them and what is owed.
    pub(crate) plans: Plans,
}

impl Pending {
    /// Nothing owed to the database.
    pub fn is_empty(&self) -> bool {
        self.new_rooms.is_empty()
            && self.items.is_empty()
            && self.owed.is_empty()
            && self.rooms.is_empty()
            && self.redact.is_empty()
            && self.members.is_empty()
            && self.marks.is_empty()
            && self.users.is_empty()
            && self.plans.is_empty()
    }

    /// What a read with the batch's locks found for `key`.
    pub fn prefetched(&mut self, key: ClientKey, item: Option<Item>) {
        self.known.insert(key, item);
    }

    /// The item of `key` if this transaction knows it (`Some(None)`: there is none).
    pub fn by_client_id(&self, key: &ClientKey) -> Option<Option<Item>> {
        self.known.get(key).cloned()
    }

    /// A stored item just read from the database (in a locked room), without what is owed.
    pub fn remember(&mut self, key: ItemKey, item: Item) {
        self.read.insert(key, item);
    }

    /// The item at `key` as this transaction sees it, if it is new here or was read before.
    pub fn item(&self, key: &ItemKey) -> Option<Item> {
        if let Some(&i) = self.by_seq.get(key) {
            return Some(self.items[i].2.clone());
        }
        let mut item = self.read.get(key)?.clone();
        self.settle(key, &mut item);
        Some(item)
    }

    /// Applies to a stored item what this transaction owes it.
    pub fn settle(&self, key: &ItemKey, item: &mut Item) {
        if let Some(o) = self.owed.get(key) {
            item.reply_count += o.replies;
            if let Some(c) = &o.change {
                c.apply(item);
            }
        }
    }

    /// The parent of the item at `key`, if this transaction knows the item.
    pub fn reply_to(&self, key: &ItemKey) -> Option<Option<Seq>> {
        match self.by_seq.get(key) {
            Some(&i) => Some(self.items[i].2.reply_to),
            None => self.read.get(key).map(|i| i.reply_to),
        }
    }

    /// Changes every copy of the item at `key` this transaction holds: new, or known by
    /// client id.
    fn change(&mut self, key: &ItemKey, f: impl Fn(&mut Item)) -> bool {
        let (app, room, seq) = key;
        for ((a, r, _, _), known) in &mut self.known {
            if let Some(k) = known
                && a == app
                && r == room
                && k.seq == *seq
            {
                f(k);
            }
        }
        match self.by_seq.get(key) {
            Some(&i) => {
                f(&mut self.items[i].2);
                true
            }
            None => false,
        }
    }

    /// Counts `n` more replies to the item at `key` (less, if negative).
    fn replied(&mut self, key: ItemKey, n: i64) {
        if !self.change(&key, |i| i.reply_count += n) {
            self.owed.entry(key).or_default().replies += n;
        }
    }

    fn bump(&mut self, app: AppId, room: RoomNumber, pos: Pos) -> &mut RoomBump {
        let b = self.rooms.entry((app, room)).or_insert(RoomBump {
            last_seq: None,
            last_pos: pos,
            messages: 0,
            members: 0,
            activity: None,
            name: None,
            image_url: None,
            visibility: None,
            updated_at: None,
        });
        b.last_pos = pos;
        b
    }

    /// Records a new room, as created.
    pub fn create_room(&mut self, app: AppId, state: RoomState) {
        self.new_rooms.push((app, state));
    }

    /// The highest number of the rooms created in `app` and not yet written.
    pub fn last_new_room(&self, app: AppId) -> Option<RoomNumber> {
        self.new_rooms
            .iter()
            .filter(|(a, _)| *a == app)
            .map(|(_, s)| s.room.number)
            .max()
    }

    /// The room created with `alias` in `app` and not yet written.
    pub fn new_room_by_alias(&self, app: AppId, alias: &str) -> Option<RoomNumber> {
        self.new_rooms
            .iter()
            .find(|(a, s)| *a == app && s.room.alias.as_deref() == Some(alias))
            .map(|(_, s)| s.room.number)
    }

    /// The direct room of the pair `key` (`direct_key`) created in `app` and not yet written.
    pub fn new_direct_room(&self, app: AppId, key: &str) -> Option<RoomNumber> {
        self.new_rooms
            .iter()
            .find(|(a, s)| {
                *a == app
                    && s.direct
                        .as_ref()
                        .is_some_and(|(x, y)| direct_key(x, y) == key)
            })
            .map(|(_, s)| s.room.number)
    }

    /// Records new settings of a room at position `pos` (`None`: unchanged).
    pub fn update_room(
        &mut self,
        (app, room): (AppId, RoomNumber),
        pos: Pos,
        at: Timestamp,
        (name, image_url, visibility): (Option<String>, Option<String>, Option<Visibility>),
    ) {
        let b = self.bump(app, room, pos);
        b.name = name.or(b.name.take());
        b.image_url = image_url.or(b.image_url.take());
        b.visibility = visibility.or(b.visibility);
        b.updated_at = Some(at);
    }

    /// Records a new timeline item: its room's last seq, position and activity move to it.
    fn insert(&mut self, app: AppId, room: RoomNumber, item: Item) -> &mut RoomBump {
        let (seq, pos, at) = (item.seq, item.pos, item.created_at);
        self.by_seq.insert((app, room, seq), self.items.len());
        self.items.push((app, room, item));
        let b = self.bump(app, room, pos);
        b.last_seq = Some(seq);
        b.activity = Some(at);
        b
    }

    /// Records a new message (its `MessagePosted` event, as the item it becomes).
    pub fn post(&mut self, app: AppId, room: RoomNumber, item: Item) {
        if let Some(parent) = item.reply_to {
            self.replied((app, room, parent), 1);
        }
        if let Some(cid) = &item.client_id {
            self.known.insert(
                (app, room, item.sender.clone(), cid.clone()),
                Some(item.clone()),
            );
        }
        self.insert(app, room, item).messages += 1;
    }

    /// Records the announcement item an event puts in its room's timeline.
    pub fn announce(&mut self, app: AppId, room: RoomNumber, item: Item) {
        self.insert(app, room, item);
    }

    /// Records a change of a room's position by a membership event, and of its joined
    /// members by `joined` (-1, 0 or 1).
    pub fn moved(&mut self, app: AppId, room: RoomNumber, pos: Pos, joined: i64) {
        self.bump(app, room, pos).members += joined;
    }

    /// Records a membership row as it now stands; it replaces any read marker owed to it
    /// (the row was decided from the marker).
    pub fn set_member(&mut self, key: MemberKey, member: Member) {
        self.marks.remove(&key);
        self.members.insert(key, member);
    }

    /// The membership row this transaction owes, if any.
    pub fn member(&self, key: &MemberKey) -> Option<&Member> {
        self.members.get(key)
    }

    /// Records an edit or a deletion (`text: None`) of the item at `key`, at room position
    /// `pos`; a deletion also takes its reply back from `parent`.
    pub fn edit(&mut self, key: ItemKey, pos: Pos, at: Timestamp, text: Option<String>) {
        let (app, room, _) = key;
        let deleted = text.is_none();
        let change = Change { text, pos, at };
        if !self.change(&key, |i| change.apply(i)) {
            self.owed.entry(key).or_default().change = Some(change);
            if deleted {
                self.redact.insert(key);
            }
        }
        self.bump(app, room, pos).messages -= i64::from(deleted);
    }

    /// Takes back the reply a deleted item made to `parent`.
    pub fn unreply(&mut self, app: AppId, room: RoomNumber, parent: Seq) {
        self.replied((app, room, parent), -1);
    }

    /// Records a read marker (the membership's marker becomes at least `seq`).
    pub fn mark(&mut self, key: MemberKey, seq: Seq) {
        if let Some(m) = self.members.get_mut(&key) {
            m.read_seq = m.read_seq.max(seq);
            return;
        }
        let m = self.marks.entry(key).or_insert(seq);
        *m = (*m).max(seq);
    }

    /// The read marker owed to a membership, if any.
    pub fn marked(&self, key: &MemberKey) -> Option<Seq> {
        self.marks.get(key).copied()
    }

    /// Records a login (`login`) or a sighting of a user at `at`.
    pub fn seen(&mut self, app: AppId, user: UserId, at: Timestamp, login: bool) {
        let s = self.users.entry((app, user)).or_insert(Seen {
            login: None,
            seen: at,
        });
        s.seen = at;
        if login {
            s.login = Some(at);
        }
    }

    /// Applies to a user row what this transaction owes it.
    pub fn settle_user(&self, app: AppId, user: &mut User) {
        if let Some(s) = self.users.get(&(app, user.id.clone())) {
            if s.login.is_some() {
                user.last_login_at = s.login;
            }
            user.last_seen_at = Some(s.seen);
        }
    }

    /// Empties what is owed into the flush statements' parameters; what was read from the
    /// database is forgotten (it would miss what the flush writes).
    pub fn take(&mut self) -> Flush {
        self.by_seq.clear();
        self.read.clear();
        Flush::of(self)
    }
}
