//! Sends of a batch, projected in memory and written with one set-based statement
//! (`INSERT … SELECT FROM UNNEST`, `UPDATE … FROM UNNEST`) instead of one statement per
//! send. The rows written are exactly those `projection::apply` writes for the same events
//! (rebuild replays through that one), so a replayed store still equals the live one.
//!
//! Reads of the transaction must see these rows before they are written: `PgTx` answers
//! from here what it can (an item by seq or client id) and writes everything out before any
//! read or projection that could touch them (see `PgTx::flush`).

use confab_core::ids::{AppId, Pos, RoomNumber, Seq, Timestamp, UserId};
use confab_core::model::Item;
use confab_core::search::fold;
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::types::ToSql;

/// An item found by client id: app, room, sender, client id.
pub type ClientKey = (AppId, RoomNumber, Option<UserId>, String);

/// What the room row owes for the sends since the last flush.
#[derive(Debug, Clone, Copy)]
struct RoomBump {
    last_seq: Seq,
    last_pos: Pos,
    messages: i64,
    activity: Timestamp,
}

#[derive(Default)]
pub struct Pending {
    /// New items in order, with their app and room.
    items: Vec<(AppId, RoomNumber, Item)>,
    by_seq: HashMap<(AppId, RoomNumber, Seq), usize>,
    /// Replies owed to items already in the database.
    replies: BTreeMap<(AppId, RoomNumber, Seq), i64>,
    rooms: BTreeMap<(AppId, RoomNumber), RoomBump>,
    /// Items by client id as they stand in this transaction: read with the batch's locks
    /// (`None`: no such item then), and kept current by the sends here. Not emptied by a
    /// flush (the rows it holds are then stored as they are here); a room's entries are
    /// dropped when something else changes its items (`forget_room`).
    known: HashMap<ClientKey, Option<Item>>,
}

/// The flush statement's parameters, owned.
pub struct Flush {
    i_app: Vec<i64>,
    i_room: Vec<i64>,
    i_seq: Vec<i64>,
    i_pos: Vec<i64>,
    i_sender: Vec<Option<String>>,
    i_text: Vec<Option<String>>,
    i_folded: Vec<Option<String>>,
    i_reply_to: Vec<Option<i64>>,
    i_replies: Vec<i64>,
    i_at: Vec<i64>,
    i_client: Vec<Option<String>>,
    p_app: Vec<i64>,
    p_room: Vec<i64>,
    p_seq: Vec<i64>,
    p_n: Vec<i64>,
    r_app: Vec<i64>,
    r_room: Vec<i64>,
    r_seq: Vec<i64>,
    r_pos: Vec<i64>,
    r_n: Vec<i64>,
    r_at: Vec<i64>,
}

/// One statement for a batch of sends: the items, their parents' reply counts, the rooms'
/// counters. Data-modifying CTEs all see the statement's snapshot, not each other's rows, so
/// the parents updated here are only items already stored; replies to items of the same
/// flush are counted in memory (`Pending::post`).
pub const FLUSH_SQL: &str = "WITH new_items AS (
        INSERT INTO items (app_id, room_no, seq, pos, kind, sender, text, folded, reply_to,
            reply_count, created_at, client_id)
        SELECT a, r, s, p, 'message', snd, t, f, rt, n, at, cid
        FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[],
            $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $11::TEXT[])
            AS u(a, r, s, p, snd, t, f, rt, n, at, cid)
    ), parents AS (
        UPDATE items i SET reply_count = i.reply_count + u.n
        FROM UNNEST($12::BIGINT[], $13::BIGINT[], $14::BIGINT[], $15::BIGINT[]) AS u(a, r, s, n)
        WHERE i.app_id = u.a AND i.room_no = u.r AND i.seq = u.s
    )
    UPDATE rooms o SET last_seq = u.s, last_pos = u.p, messages_count = o.messages_count + u.n,
        activity = u.at
    FROM UNNEST($16::BIGINT[], $17::BIGINT[], $18::BIGINT[], $19::BIGINT[], $20::BIGINT[],
        $21::BIGINT[]) AS u(a, r, s, p, n, at)
    WHERE o.app_id = u.a AND o.number = u.r";

impl Flush {
    pub fn params(&self) -> [&(dyn ToSql + Sync); 21] {
        [
            &self.i_app,
            &self.i_room,
            &self.i_seq,
            &self.i_pos,
            &self.i_sender,
            &self.i_text,
            &self.i_folded,
            &self.i_reply_to,
            &self.i_replies,
            &self.i_at,
            &self.i_client,
            &self.p_app,
            &self.p_room,
            &self.p_seq,
            &self.p_n,
            &self.r_app,
            &self.r_room,
            &self.r_seq,
            &self.r_pos,
            &self.r_n,
            &self.r_at,
        ]
    }
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// What a read with the batch's locks found for `key`.
    pub fn prefetched(&mut self, key: ClientKey, item: Option<Item>) {
        self.known.insert(key, item);
    }

    /// The item of `key` if this transaction knows it (`Some(None)`: there is none).
    pub fn by_client_id(&self, key: &ClientKey) -> Option<Option<Item>> {
        self.known.get(key).cloned()
    }

    /// Forgets what is known by client id in a room whose items change otherwise (an edit,
    /// a delete): it is read again from the database.
    pub fn forget_room(&mut self, app: AppId, room: RoomNumber) {
        self.known
            .retain(|(a, r, _, _), _| !(*a == app && *r == room));
    }

    /// Records a new message (its `MessagePosted` event, as the item it becomes).
    pub fn post(&mut self, app: AppId, room: RoomNumber, item: Item) {
        if let Some(parent) = item.reply_to {
            match self.by_seq.get(&(app, room, parent)) {
                Some(&i) => self.items[i].2.reply_count += 1,
                None => *self.replies.entry((app, room, parent)).or_default() += 1,
            }
            for ((a, r, _, _), known) in &mut self.known {
                if let Some(k) = known
                    && *a == app
                    && *r == room
                    && k.seq == parent
                {
                    k.reply_count += 1;
                }
            }
        }
        if let Some(cid) = &item.client_id {
            self.known.insert(
                (app, room, item.sender.clone(), cid.clone()),
                Some(item.clone()),
            );
        }
        let bump = self.rooms.entry((app, room)).or_insert(RoomBump {
            last_seq: item.seq,
            last_pos: item.pos,
            messages: 0,
            activity: item.created_at,
        });
        bump.last_seq = item.seq;
        bump.last_pos = item.pos;
        bump.messages += 1;
        bump.activity = item.created_at;
        self.by_seq.insert((app, room, item.seq), self.items.len());
        self.items.push((app, room, item));
    }

    /// An item not yet written, as it stands.
    pub fn item(&self, app: AppId, room: RoomNumber, seq: Seq) -> Option<&Item> {
        self.by_seq
            .get(&(app, room, seq))
            .map(|&i| &self.items[i].2)
    }

    /// Replies recorded here to a stored item.
    pub fn replies_to(&self, app: AppId, room: RoomNumber, seq: Seq) -> i64 {
        self.replies.get(&(app, room, seq)).copied().unwrap_or(0)
    }

    /// Empties the buffer into the flush statement's parameters.
    pub fn take(&mut self) -> Flush {
        let items = std::mem::take(&mut self.items);
        self.by_seq.clear();
        let n = items.len();
        let mut f = Flush {
            i_app: Vec::with_capacity(n),
            i_room: Vec::with_capacity(n),
            i_seq: Vec::with_capacity(n),
            i_pos: Vec::with_capacity(n),
            i_sender: Vec::with_capacity(n),
            i_text: Vec::with_capacity(n),
            i_folded: Vec::with_capacity(n),
            i_reply_to: Vec::with_capacity(n),
            i_replies: Vec::with_capacity(n),
            i_at: Vec::with_capacity(n),
            i_client: Vec::with_capacity(n),
            p_app: vec![],
            p_room: vec![],
            p_seq: vec![],
            p_n: vec![],
            r_app: vec![],
            r_room: vec![],
            r_seq: vec![],
            r_pos: vec![],
            r_n: vec![],
            r_at: vec![],
        };
        for (app, room, item) in items {
            f.i_app.push(app.0);
            f.i_room.push(room.0);
            f.i_seq.push(item.seq.0);
            f.i_pos.push(item.pos.0);
            f.i_folded.push(item.text.as_deref().map(fold));
            f.i_sender.push(item.sender.map(|u| u.0));
            f.i_text.push(item.text);
            f.i_reply_to.push(item.reply_to.map(|s| s.0));
            f.i_replies.push(item.reply_count);
            f.i_at.push(item.created_at.0);
            f.i_client.push(item.client_id);
        }
        for ((app, room, seq), n) in std::mem::take(&mut self.replies) {
            f.p_app.push(app.0);
            f.p_room.push(room.0);
            f.p_seq.push(seq.0);
            f.p_n.push(n);
        }
        for ((app, room), b) in std::mem::take(&mut self.rooms) {
            f.r_app.push(app.0);
            f.r_room.push(room.0);
            f.r_seq.push(b.last_seq.0);
            f.r_pos.push(b.last_pos.0);
            f.r_n.push(b.messages);
            f.r_at.push(b.activity.0);
        }
        f
    }
}
