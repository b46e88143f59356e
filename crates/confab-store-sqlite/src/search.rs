//! Message search on the FTS5 trigram index (`s.items_fts`, see `index.rs`).
//!
//! Messages posted or edited after the index's mark are read directly (the tail); older ones
//! come from the index. Each room's messages are one contiguous rowid range, so a room is
//! searched newest first by walking the index backwards inside that range; the index only
//! proposes candidates, and `Query::spans` confirms each one against the current text (this is
//! also how terms under three characters, which a trigram index cannot serve, are matched).
//! Searching several rooms walks them one by one, busiest first, and stops walking a room as
//! soon as its next candidate is older than everything already collected.

use crate::rows::{self, ITEM_COLS, item_key};
use confab_core::error::StoreError;
use confab_core::ids::{AppId, RoomNumber, Seq};
use confab_core::model::{Item, ItemKind, Page};
use confab_core::search::{Cursor, Hit, Query, Scope};
use confab_core::store::StoreResult;
use rusqlite::{Connection, params};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

fn be(e: rusqlite::Error) -> StoreError {
    StoreError::backend(e)
}

/// Rooms in scope as (internal id, number), most recently active first.
fn rooms_in_scope(conn: &Connection, app: AppId, scope: &Scope) -> StoreResult<Vec<(i64, i64)>> {
    match scope {
        Scope::Room(number) => {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, number FROM rooms WHERE app_id = ?1 AND number = ?2 AND deleted = 0",
                )
                .map_err(be)?;
            let rows = stmt
                .query_map(params![app.0, number.0], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(be)?;
            rows.collect::<Result<_, _>>().map_err(be)
        }
        Scope::Joined(user) => {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT r.id, r.number FROM members m JOIN rooms r ON r.id = m.room_id
                     WHERE m.app_id = ?1 AND m.user_id = ?2 AND m.state = 'joined' AND r.deleted = 0
                     ORDER BY r.activity DESC, r.number DESC",
                )
                .map_err(be)?;
            let rows = stmt
                .query_map(params![app.0, user.0], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(be)?;
            rows.collect::<Result<_, _>>().map_err(be)
        }
    }
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

pub fn search(
    conn: &Connection,
    app: AppId,
    scope: Scope,
    query: Query,
    before: Option<Cursor>,
    limit: usize,
) -> StoreResult<Page<Hit>> {
    let want = limit + 1;
    let fts = query.fts5_expression();
    let cols = ITEM_COLS
        .split(", ")
        .map(|c| format!("i.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = match fts {
        Some(_) => format!(
            "SELECT {cols} FROM s.items_fts f JOIN items i ON i.id = f.rowid
             WHERE f.items_fts MATCH ?3 AND f.rowid BETWEEN ?1 AND ?2
             ORDER BY f.rowid DESC"
        ),
        None => format!(
            "SELECT {cols} FROM items i
             WHERE i.id BETWEEN ?1 AND ?2 AND i.kind = 'message' AND i.deleted = 0
             ORDER BY i.id DESC"
        ),
    };
    let rooms = rooms_in_scope(conn, app, &scope)?;
    // The newest `want` hits so far, as a min-heap: its top is the oldest kept.
    let mut kept: BinaryHeap<Reverse<Ranked>> = BinaryHeap::with_capacity(want + 1);
    let mut seen: HashSet<(i64, i64)> = HashSet::new();
    let consider = |room: RoomNumber, item: Item, kept: &mut BinaryHeap<Reverse<Ranked>>| {
        let key = Cursor {
            created_at: item.created_at,
            room,
            seq: item.seq,
        };
        if before.is_some_and(|c| key >= c) || item.kind != ItemKind::Message || item.deleted {
            return;
        }
        let Some(spans) = item.text.as_deref().and_then(|t| query.spans(t)) else {
            return;
        };
        kept.push(Reverse(Ranked(Hit { room, item, spans })));
        if kept.len() > want {
            kept.pop();
        }
    };
    if fts.is_some() {
        // The tail: messages posted or edited after the index's mark, read directly.
        let mark: i64 = conn
            .prepare_cached("SELECT last_event FROM s.index_state")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(be)?;
        let in_scope: HashMap<i64, i64> = rooms.iter().map(|(id, n)| (*n, *id)).collect();
        let mut stmt = conn
            .prepare_cached(
                // `+app_id`: walk the log from the mark (its key range), never the app's
                // whole log through the app index.
                "SELECT DISTINCT room_no, seq FROM events
                 WHERE id > ?1 AND +app_id = ?2
                   AND type IN ('message_posted', 'message_edited')",
            )
            .map_err(be)?;
        let tail: Vec<(i64, i64)> = stmt
            .query_map(params![mark, app.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(be)?
            .collect::<Result<_, _>>()
            .map_err(be)?;
        for (number, seq) in tail {
            let Some(room_id) = in_scope.get(&number) else {
                continue;
            };
            if !seen.insert((number, seq)) {
                continue;
            }
            if let Some(item) = rows::item_by_seq(conn, *room_id, Seq(seq)).map_err(be)? {
                consider(RoomNumber(number), item, &mut kept);
            }
        }
    }
    let mut stmt = conn.prepare_cached(&sql).map_err(be)?;
    for (room_id, number) in rooms {
        let room = RoomNumber(number);
        let lo = item_key(room_id, 1);
        let mut hi = item_key(room_id, 0xFFFF_FFFF);
        if let Some(c) = before.filter(|c| c.room == room) {
            // Within a room, seq order is time order: nothing at or after the cursor's seq.
            hi = item_key(room_id, c.seq.0) - 1;
        }
        if hi < lo {
            continue;
        }
        let mut rows = match &fts {
            Some(expr) => stmt.query(params![lo, hi, expr]),
            None => stmt.query(params![lo, hi]),
        }
        .map_err(be)?;
        while let Some(row) = rows.next().map_err(be)? {
            let item: Item = rows::item(row).map_err(be)?;
            let hit_key = Cursor {
                created_at: item.created_at,
                room,
                seq: item.seq,
            };
            if kept.len() == want
                && kept
                    .peek()
                    .is_some_and(|Reverse(oldest)| hit_key < oldest.0.cursor())
            {
                // Everything further back in this room is older still.
                break;
            }
            if seen.contains(&(number, item.seq.0)) {
                continue;
            }
            consider(room, item, &mut kept);
        }
    }
    let mut hits: Vec<Hit> = kept.into_iter().map(|Reverse(Ranked(h))| h).collect();
    hits.sort_by_key(|h| Reverse(h.cursor()));
    let has_more = hits.len() > limit;
    hits.truncate(limit);
    Ok(Page {
        rows: hits,
        has_more,
    })
}
