//! Message search on the FTS5 trigram index (`s.items_fts`, see `index.rs`).
//!
//! Results come newest first across the rooms in scope, so a search is a merge of per-room
//! streams of items, each newest first. Three ways to produce those streams, cheapest first:
//!
//! 1. **The newest messages themselves.** A term that many messages contain is found among the
//!    newest few hundred messages of the rooms, faster than any index lookup. This pass reads
//!    at most `scan_budget` items and is enough whenever it fills the page.
//! 2. **The whole index at once.** For a rarer term, one index query lists every candidate of
//!    the whole index; if there are at most `global_cap`, those in scope are merged by time.
//! 3. **Each room's part of the index.** Each room's messages are one contiguous rowid range,
//!    so a room is walked newest first inside that range, busiest room first, stopping in a
//!    room as soon as its next candidate is older than everything already kept.
//!
//! Messages posted or edited after the index's mark (the tail) are read directly, so results
//! are exact however far behind the indexer is. The index only proposes candidates:
//! `Query::spans` confirms each one against the current text, which is also how terms under
//! three characters, which a trigram index cannot serve, are matched (by scanning).

use crate::rows::{self, ITEM_COLS, item_key};
use confab_core::ids::{AppId, RoomNumber, Seq};
use confab_core::model::{Item, ItemKind, Page};
use confab_core::search::{Cursor, Hit, Query, Scope};
use confab_core::store::StoreResult;
use rusqlite::{Connection, params};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

/// Items the first pass reads before it judges whether matches are frequent enough.
const SCAN_PROBE: usize = 100;
/// Items newer than the requested page the first pass may step over.
const SKIP_BUDGET: usize = 4000;

/// Where search switches from one way to the next (module docs). The defaults suit real data;
/// tests use extremes to make every search take each path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchTuning {
    /// Items the first pass reads before it leaves the work to the index.
    pub scan_budget: usize,
    /// Most candidates taken from one query over the whole index.
    pub global_cap: usize,
}

impl Default for SearchTuning {
    fn default() -> Self {
        SearchTuning {
            scan_budget: 600,
            global_cap: 4000,
        }
    }
}
/// Items read from a room per query while scanning.
const CHUNK: usize = 16;

use crate::fault::sql as be;

/// A room in scope: internal id and number.
#[derive(Clone, Copy)]
struct Room {
    id: i64,
    number: RoomNumber,
}

/// Rooms in scope, most recently active first.
fn rooms_in_scope(conn: &Connection, app: AppId, scope: &Scope) -> StoreResult<Vec<Room>> {
    let (sql, key) = match scope {
        Scope::Room(number) => (
            "SELECT id, number FROM rooms WHERE app_id = ?1 AND number = ?2 AND deleted = 0",
            rusqlite::types::Value::Integer(number.0),
        ),
        Scope::Joined(user) => (
            "SELECT r.id, r.number FROM members m JOIN rooms r ON r.id = m.room_id
             WHERE m.app_id = ?1 AND m.user_id = ?2 AND m.state = 'joined' AND r.deleted = 0
             ORDER BY r.activity DESC, r.number DESC",
            rusqlite::types::Value::Text(user.0.clone()),
        ),
    };
    let mut stmt = conn.prepare_cached(sql).map_err(be)?;
    let rows = stmt
        .query_map(params![app.0, key], |r| {
            Ok(Room {
                id: r.get(0)?,
                number: RoomNumber(r.get(1)?),
            })
        })
        .map_err(be)?;
    rows.collect::<Result<_, _>>().map_err(be)
}

/// A hit ordered by its cursor, so the heap keeps the newest.
struct Ranked(Hit);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.0.cursor() == other.0.cursor()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cursor().cmp(&other.0.cursor())
    }
}

fn key(room: RoomNumber, item: &Item) -> Cursor {
    Cursor {
        created_at: item.created_at,
        room,
        seq: item.seq,
    }
}

/// The newest `want` hits found so far.
struct Collector<'q> {
    query: &'q Query,
    before: Option<Cursor>,
    want: usize,
    /// A min-heap: its top is the oldest kept.
    kept: BinaryHeap<Reverse<Ranked>>,
    /// Items already considered (room number, seq), so no source offers one twice.
    seen: HashSet<(i64, i64)>,
}

impl<'q> Collector<'q> {
    fn new(query: &'q Query, before: Option<Cursor>, limit: usize) -> Self {
        Collector {
            query,
            before,
            want: limit + 1,
            kept: BinaryHeap::with_capacity(limit + 2),
            seen: HashSet::new(),
        }
    }

    /// Whether an item with this key could still be kept.
    fn wants(&self, key: Cursor) -> bool {
        let full_and_newer = self.kept.len() == self.want
            && self
                .kept
                .peek()
                .is_some_and(|Reverse(o)| key < o.0.cursor());
        !full_and_newer && self.before.is_none_or(|b| key < b)
    }

    /// Whether nothing older than `key` can be kept any more.
    fn done_before(&self, key: Cursor) -> bool {
        self.kept.len() == self.want
            && self
                .kept
                .peek()
                .is_some_and(|Reverse(o)| key < o.0.cursor())
    }

    fn consider(&mut self, room: RoomNumber, item: Item) {
        if !self.wants(key(room, &item))
            || item.kind != ItemKind::Message
            || item.deleted
            || !self.seen.insert((room.0, item.seq.0))
        {
            return;
        }
        let Some(spans) = item.text.as_deref().and_then(|t| self.query.spans(t)) else {
            return;
        };
        self.kept.push(Reverse(Ranked(Hit { room, item, spans })));
        if self.kept.len() > self.want {
            self.kept.pop();
        }
    }

    fn into_page(self, limit: usize) -> Page<Hit> {
        let mut hits: Vec<Hit> = self.kept.into_iter().map(|Reverse(Ranked(h))| h).collect();
        hits.sort_by_key(|h| Reverse(h.cursor()));
        let has_more = hits.len() > limit;
        hits.truncate(limit);
        Page {
            rows: hits,
            has_more,
        }
    }
}

/// One room's items, newest first.
trait Stream {
    fn next(&mut self, conn: &Connection) -> StoreResult<Option<Item>>;
    /// Whether the first item this stream yields is the newest of its room.
    fn starts_at_top(&self) -> bool;
}

/// All of a room's items, read a few at a time.
struct RoomItems {
    room_id: i64,
    /// Only items with a smaller key are still to come.
    below: i64,
    buf: VecDeque<Item>,
    exhausted: bool,
    at_top: bool,
}

impl RoomItems {
    fn new(room: Room, before: Option<Cursor>) -> Self {
        let mut below = item_key(room.id, 0xFFFF_FFFF);
        let mut at_top = true;
        if let Some(c) = before.filter(|c| c.room == room.number) {
            // Within a room, seq order is time order: nothing at or after the cursor's seq.
            below = item_key(room.id, c.seq.0);
            at_top = false;
        }
        RoomItems {
            room_id: room.id,
            below,
            buf: VecDeque::new(),
            exhausted: false,
            at_top,
        }
    }
}

impl Stream for RoomItems {
    fn next(&mut self, conn: &Connection) -> StoreResult<Option<Item>> {
        if self.buf.is_empty() && !self.exhausted {
            let lo = item_key(self.room_id, 1);
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ITEM_COLS} FROM items WHERE id >= ?1 AND id < ?2
                     ORDER BY id DESC LIMIT {CHUNK}"
                ))
                .map_err(be)?;
            let rows = stmt
                .query_map(params![lo, self.below], rows::item)
                .map_err(be)?;
            for item in rows {
                self.buf.push_back(item.map_err(be)?);
            }
            self.exhausted = self.buf.len() < CHUNK;
            if let Some(last) = self.buf.back() {
                self.below = item_key(self.room_id, last.seq.0);
            }
        }
        Ok(self.buf.pop_front())
    }

    fn starts_at_top(&self) -> bool {
        self.at_top
    }
}

/// Candidates of one room from the index, newest first; items are read one at a time.
struct Candidates {
    room_id: i64,
    seqs: Vec<i64>,
}

impl Stream for Candidates {
    fn next(&mut self, conn: &Connection) -> StoreResult<Option<Item>> {
        while let Some(seq) = self.seqs.pop() {
            if let Some(item) = rows::item_by_seq(conn, self.room_id, Seq(seq)).map_err(be)? {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    fn starts_at_top(&self) -> bool {
        false
    }
}

/// Merges per-room streams newest first into the collector. `streams` are in the order of the
/// rooms' latest activity; a room is opened only when its newest item could still be newer
/// than what the open rooms offer. Returns false if it stopped after `budget` items, true if
/// the collector has its final answer for these streams.
fn merge<S: Stream>(
    conn: &Connection,
    mut streams: Vec<(RoomNumber, S)>,
    c: &mut Collector<'_>,
    budget: Option<usize>,
) -> StoreResult<bool> {
    // Heads: (key, stream index, item), the newest on top.
    let mut heads: BinaryHeap<(Cursor, usize, HeadItem)> = BinaryHeap::new();
    let mut opened = 0;
    // Every unopened room's items are at most this new (`None`: unknown).
    let mut bound: Option<Cursor> = None;
    let (mut read, mut skipped) = (0usize, 0usize);
    loop {
        while opened < streams.len()
            && (bound.is_none()
                || heads
                    .peek()
                    .is_none_or(|(k, _, _)| bound.is_some_and(|b| k.created_at <= b.created_at)))
        {
            let (room, stream) = &mut streams[opened];
            let room = *room;
            let at_top = stream.starts_at_top();
            let first = stream.next(conn)?;
            opened += 1;
            match first {
                Some(item) => {
                    let k = key(room, &item);
                    // Rooms come in order of activity, so the rooms after this one hold
                    // nothing newer than its newest item.
                    bound = if at_top { Some(k) } else { None };
                    heads.push((k, opened - 1, HeadItem(item)));
                }
                None if at_top => {}
                None => bound = None,
            }
        }
        let Some((k, i, HeadItem(item))) = heads.pop() else {
            return Ok(true);
        };
        if c.done_before(k) {
            return Ok(true);
        }
        if c.before.is_some_and(|b| k >= b) {
            // Newer than the page asked for: skipped, and not counted as read.
            skipped += 1;
        } else {
            read += 1;
        }
        if let Some(b) = budget {
            // Give up when the budget is spent, or early when the matches seen so far say the
            // page would not fill within it.
            let sparse = read >= SCAN_PROBE && c.kept.len() * b < c.want * read;
            if read > b || skipped > SKIP_BUDGET || sparse {
                return Ok(false);
            }
        }
        let (room, stream) = &mut streams[i];
        let room = *room;
        if let Some(next) = stream.next(conn)? {
            heads.push((key(room, &next), i, HeadItem(next)));
        }
        c.consider(room, item);
    }
}

/// An item in a heap entry, ordered by nothing (the key decides).
struct HeadItem(Item);

impl PartialEq for HeadItem {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for HeadItem {}
impl PartialOrd for HeadItem {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeadItem {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// Messages posted or edited after the index's mark, read directly.
fn tail(conn: &Connection, app: AppId, rooms: &[Room], c: &mut Collector<'_>) -> StoreResult<()> {
    let mark: i64 = conn
        .prepare_cached("SELECT last_event FROM s.index_state")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(be)?;
    let in_scope: HashMap<i64, i64> = rooms.iter().map(|r| (r.number.0, r.id)).collect();
    let mut stmt = conn
        .prepare_cached(
            // `+app_id`: walk the log from the mark (its key range), never the app's
            // whole log through the app index.
            "SELECT DISTINCT room_no, seq FROM events
             WHERE id > ?1 AND +app_id = ?2
               AND type IN ('message_posted', 'message_edited')",
        )
        .map_err(be)?;
    let recent: Vec<(i64, i64)> = stmt
        .query_map(params![mark, app.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(be)?
        .collect::<Result<_, _>>()
        .map_err(be)?;
    for (number, seq) in recent {
        let Some(room_id) = in_scope.get(&number) else {
            continue;
        };
        if let Some(item) = rows::item_by_seq(conn, *room_id, Seq(seq)).map_err(be)? {
            c.consider(RoomNumber(number), item);
        }
    }
    Ok(())
}

/// Every candidate of the whole index in the rooms in scope, per room (seqs oldest first), or
/// `None` if the index holds more than `global_cap` candidates.
fn global_candidates(
    conn: &Connection,
    cap: usize,
    expr: &str,
    rooms: &[Room],
) -> StoreResult<Option<Vec<(RoomNumber, Candidates)>>> {
    let index: HashMap<i64, usize> = rooms.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    let mut per_room: Vec<Vec<i64>> = vec![Vec::new(); rooms.len()];
    let mut stmt = conn
        .prepare_cached("SELECT rowid FROM s.items_fts WHERE items_fts MATCH ?1")
        .map_err(be)?;
    let mut q = stmt.query(params![expr]).map_err(be)?;
    let mut n = 0;
    while let Some(row) = q.next().map_err(be)? {
        n += 1;
        if n > cap {
            return Ok(None);
        }
        let id: i64 = row.get(0).map_err(be)?;
        if let Some(&i) = index.get(&(id >> 32)) {
            per_room[i].push(id & 0xFFFF_FFFF);
        }
    }
    Ok(Some(
        rooms
            .iter()
            .zip(per_room)
            .filter(|(_, seqs)| !seqs.is_empty())
            .map(|(r, mut seqs)| {
                seqs.sort_unstable();
                (
                    r.number,
                    Candidates {
                        room_id: r.id,
                        seqs,
                    },
                )
            })
            .collect(),
    ))
}

/// Walks each room's part of the index newest first, one room after the other.
fn per_room_walk(
    conn: &Connection,
    expr: &str,
    rooms: &[Room],
    c: &mut Collector<'_>,
) -> StoreResult<()> {
    let cols = ITEM_COLS
        .split(", ")
        .map(|col| format!("i.{}", col.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {cols} FROM s.items_fts f JOIN items i ON i.id = f.rowid
             WHERE f.items_fts MATCH ?3 AND f.rowid BETWEEN ?1 AND ?2
             ORDER BY f.rowid DESC"
        ))
        .map_err(be)?;
    for room in rooms {
        let lo = item_key(room.id, 1);
        let mut hi = item_key(room.id, 0xFFFF_FFFF);
        if let Some(b) = c.before.filter(|b| b.room == room.number) {
            hi = item_key(room.id, b.seq.0) - 1;
        }
        if hi < lo {
            continue;
        }
        let mut rows = stmt.query(params![lo, hi, expr]).map_err(be)?;
        while let Some(row) = rows.next().map_err(be)? {
            let item: Item = rows::item(row).map_err(be)?;
            if c.done_before(key(room.number, &item)) {
                // Everything further back in this room is older still.
                break;
            }
            c.consider(room.number, item);
        }
    }
    Ok(())
}

pub fn search(
    conn: &Connection,
    tuning: SearchTuning,
    app: AppId,
    scope: Scope,
    query: Query,
    before: Option<Cursor>,
    limit: usize,
) -> StoreResult<Page<Hit>> {
    let rooms = rooms_in_scope(conn, app, &scope)?;
    let streams = |rooms: &[Room]| -> Vec<(RoomNumber, RoomItems)> {
        rooms
            .iter()
            .map(|r| (r.number, RoomItems::new(*r, before)))
            .collect()
    };
    // 1. The newest messages: enough for frequent terms.
    let mut c = Collector::new(&query, before, limit);
    if merge(conn, streams(&rooms), &mut c, Some(tuning.scan_budget))? {
        return Ok(c.into_page(limit));
    }
    let mut c = Collector::new(&query, before, limit);
    let Some(expr) = query.fts5_expression() else {
        // Only short terms: no index can help, scan everything.
        merge(conn, streams(&rooms), &mut c, None)?;
        return Ok(c.into_page(limit));
    };
    tail(conn, app, &rooms, &mut c)?;
    // 2. One query over the whole index, when there are few candidates.
    if rooms.len() > 1
        && let Some(candidates) = global_candidates(conn, tuning.global_cap, &expr, &rooms)?
    {
        merge(conn, candidates, &mut c, None)?;
        return Ok(c.into_page(limit));
    }
    // 3. Each room's part of the index.
    per_room_walk(conn, &expr, &rooms, &mut c)?;
    Ok(c.into_page(limit))
}
