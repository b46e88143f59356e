//! Read queries, run on the reader pool. Each takes a connection and owned arguments.

use crate::rows::{self, ITEM_COLS, MEMBER_COLS, ROOM_COLS, item_key};
use confab_core::error::StoreError;
use confab_core::event::{Event, EventBody};
use confab_core::ids::{AppId, Offset, Pos, RoomNumber, Seq, Timestamp, UserId};
use confab_core::model::{
    Access, AppStats, Change, HistoryQuery, Item, Member, MemberState, Page, Room, RoomSummary,
};
use confab_core::store::StoreResult;
use rusqlite::{Connection, OptionalExtension, params};

use crate::fault::sql as be;

pub fn app_stats(conn: &Connection, app: AppId) -> StoreResult<AppStats> {
    conn.prepare_cached("SELECT rooms_count, users_count, messages_count FROM apps WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row(params![app.0], |r| {
                Ok(AppStats {
                    rooms_count: r.get(0)?,
                    users_count: r.get(1)?,
                    messages_count: r.get(2)?,
                })
            })
            .optional()
        })
        .map(Option::unwrap_or_default)
        .map_err(be)
}

pub fn access(
    conn: &Connection,
    app: AppId,
    room: RoomNumber,
    viewer: Option<&UserId>,
) -> StoreResult<Option<Access>> {
    let Some(row) = rows::room_by_number(conn, app, room).map_err(be)? else {
        return Ok(None);
    };
    if row.room.deleted {
        return Ok(None);
    }
    let member = match viewer {
        Some(u) => rows::member_of(conn, row.id, u).map_err(be)?,
        None => None,
    };
    Ok(Some(Access {
        room: row.room,
        member,
    }))
}

pub fn rooms_of_user(
    conn: &Connection,
    app: AppId,
    user: &UserId,
    state: MemberState,
    after: Option<(i64, RoomNumber)>,
    limit: usize,
) -> StoreResult<Page<RoomSummary>> {
    let (act, num) = after.map_or((i64::MAX, i64::MAX), |(a, n)| (a, n.0));
    let sql = format!(
        "SELECT {cols}, m.user_id, m.role, m.state, m.read_seq, m.updated_at, m.since
         FROM members m JOIN rooms r ON r.id = m.room_id
         WHERE m.app_id = ?1 AND m.user_id = ?2 AND m.state = ?3 AND r.deleted = 0
           AND (r.activity < ?4 OR (r.activity = ?4 AND r.number < ?5))
         ORDER BY r.activity DESC, r.number DESC LIMIT {lim}",
        lim = limit + 1,
        cols = ROOM_COLS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(be)?;
    let rows = stmt
        .query_map(
            params![app.0, user.as_str(), state.as_str(), act, num,],
            |r| Ok((rows::room(r)?, rows::member_at(r, 17)?)),
        )
        .map_err(be)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(be)?;
    let has_more = rows.len() > limit;
    let now = Timestamp::now();
    let mut out = Vec::with_capacity(limit);
    for (room, member) in rows.into_iter().take(limit) {
        let last_item = if room.room.last_seq.0 > 0 {
            rows::item_by_seq(conn, room.id, room.room.last_seq).map_err(be)?
        } else {
            None
        };
        let unread_count = unread(conn, room.id, &member, room.room.last_seq)?;
        let alerts_count = match member.state {
            MemberState::Joined => {
                crate::polls::alerts_count(conn, app, user, room.room.number, now)?
            }
            _ => 0,
        };
        out.push(RoomSummary {
            room: room.room,
            member,
            last_item,
            unread_count,
            alerts_count,
            activity: room.activity,
        });
    }
    Ok(Page {
        rows: out,
        has_more,
    })
}

/// Messages by others above the read marker, not deleted.
fn unread(conn: &Connection, room_id: i64, member: &Member, last_seq: Seq) -> StoreResult<i64> {
    if member.read_seq >= last_seq {
        return Ok(0);
    }
    conn.prepare_cached(
        "SELECT COUNT(*) FROM items WHERE id > ?1 AND id <= ?2 AND kind = 'message' AND deleted = 0
           AND (sender IS NULL OR sender <> ?3)",
    )
    .and_then(|mut s| {
        s.query_row(
            params![
                item_key(room_id, member.read_seq.0),
                item_key(room_id, last_seq.0),
                member.user.as_str()
            ],
            |r| r.get(0),
        )
    })
    .map_err(be)
}

pub fn public_rooms(
    conn: &Connection,
    app: AppId,
    after: Option<RoomNumber>,
    limit: usize,
) -> StoreResult<Page<Room>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE app_id = ?1 AND visibility = 'public' AND deleted = 0
               AND number > ?2 ORDER BY number LIMIT {}",
            limit + 1
        ))
        .map_err(be)?;
    let mut rows = stmt
        .query_map(params![app.0, after.map_or(0, |n| n.0)], |r| {
            Ok(rows::room(r)?.room)
        })
        .map_err(be)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(be)?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    Ok(Page { rows, has_more })
}

pub fn members(
    conn: &Connection,
    app: AppId,
    room: RoomNumber,
    state: Option<MemberState>,
    after: Option<&UserId>,
    limit: usize,
) -> StoreResult<Page<Member>> {
    let Some(rid) = rows::room_id(conn, app, room).map_err(be)? else {
        return Ok(Page {
            rows: vec![],
            has_more: false,
        });
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MEMBER_COLS} FROM members WHERE room_id = ?1 AND (?2 IS NULL OR state = ?2)
               AND user_id > ?3 ORDER BY user_id LIMIT {}",
            limit + 1
        ))
        .map_err(be)?;
    let mut rows = stmt
        .query_map(
            params![
                rid,
                state.map(MemberState::as_str),
                after.map_or("", UserId::as_str),
            ],
            rows::member,
        )
        .map_err(be)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(be)?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    Ok(Page { rows, has_more })
}

/// Items of the key range `[lo, hi]`, ascending or descending, at most `limit`.
fn range(conn: &Connection, lo: i64, hi: i64, desc: bool, limit: usize) -> StoreResult<Vec<Item>> {
    let order = if desc { "DESC" } else { "ASC" };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ITEM_COLS} FROM items WHERE id >= ?1 AND id <= ?2 ORDER BY id {order} LIMIT {limit}"
        ))
        .map_err(be)?;
    stmt.query_map(params![lo, hi], rows::item)
        .map_err(be)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(be)
}

/// One page of a timeline (or of a thread, given `fetch`), ascending, with whether more exist
/// before and after it. A thread's seqs have gaps, so "more" is always asked of `fetch`, never
/// worked out from seq arithmetic.
fn page(
    query: HistoryQuery,
    limit: usize,
    last: i64,
    fetch: &dyn Fn(i64, i64, bool, usize) -> StoreResult<Vec<Item>>,
) -> StoreResult<(Vec<Item>, bool, bool)> {
    let older = |below: i64, n: usize| -> StoreResult<(Vec<Item>, bool)> {
        let mut v = fetch(1, below - 1, true, n + 1)?;
        let more = v.len() > n;
        v.truncate(n);
        v.reverse();
        Ok((v, more))
    };
    let newer = |above: i64, n: usize| -> StoreResult<(Vec<Item>, bool)> {
        let mut v = fetch(above.saturating_add(1), last, false, n + 1)?;
        let more = v.len() > n;
        v.truncate(n);
        Ok((v, more))
    };
    // Whether any item lies in `[lo, hi]`.
    let any = |lo: i64, hi: i64| -> StoreResult<bool> {
        Ok(lo <= hi && !fetch(lo.max(1), hi.min(last), false, 1)?.is_empty())
    };
    Ok(match query {
        HistoryQuery::Latest => {
            let (v, more) = older(last + 1, limit)?;
            (v, more, false)
        }
        HistoryQuery::Before(s) => {
            let (v, more) = older(s.0.min(last + 1), limit)?;
            let after = any(v.last().map_or(s.0, |i| i.seq.0 + 1), last)?;
            (v, more, after)
        }
        HistoryQuery::After(s) => {
            let (v, more) = newer(s.0.max(0), limit)?;
            let before = any(1, v.first().map_or(s.0, |i| i.seq.0 - 1))?;
            (v, before, more)
        }
        HistoryQuery::Around(s) => {
            let half = limit / 2;
            let (mut v, before) = older(s.0, half)?;
            let (w, after) = newer(s.0 - 1, limit - v.len())?;
            v.extend(w);
            (v, before, after)
        }
        HistoryQuery::Range(a, b) => {
            let mut v = fetch(a.0.max(1), b.0.min(last), false, limit + 1)?;
            let more = v.len() > limit;
            v.truncate(limit);
            (
                v,
                any(1, a.0 - 1)?,
                more || any(b.0.saturating_add(1), last)?,
            )
        }
    })
}

pub fn history(
    conn: &Connection,
    app: AppId,
    room: RoomNumber,
    q: HistoryQuery,
    limit: usize,
) -> StoreResult<(Vec<Item>, bool, bool)> {
    let Some(row) = rows::room_by_number(conn, app, room).map_err(be)? else {
        return Ok((vec![], false, false));
    };
    let rid = row.id;
    let fetch = |lo: i64, hi: i64, desc: bool, n: usize| {
        if lo > hi {
            return Ok(vec![]);
        }
        range(conn, item_key(rid, lo), item_key(rid, hi), desc, n)
    };
    page(q, limit, row.room.last_seq.0, &fetch)
}

pub fn replies(
    conn: &Connection,
    app: AppId,
    room: RoomNumber,
    parent: Seq,
    q: HistoryQuery,
    limit: usize,
) -> StoreResult<(Vec<Item>, bool, bool)> {
    let Some(row) = rows::room_by_number(conn, app, room).map_err(be)? else {
        return Ok((vec![], false, false));
    };
    let rid = row.id;
    let fetch = |lo: i64, hi: i64, desc: bool, n: usize| -> StoreResult<Vec<Item>> {
        let order = if desc { "DESC" } else { "ASC" };
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {ITEM_COLS} FROM items WHERE room_id = ?1 AND reply_to = ?2 AND seq >= ?3
                   AND seq <= ?4 ORDER BY seq {order} LIMIT {n}"
            ))
            .map_err(be)?;
        stmt.query_map(params![rid, parent.0, lo, hi], rows::item)
            .map_err(be)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(be)
    };
    page(q, limit, row.room.last_seq.0, &fetch)
}

/// Stored bytes of event bodies one page of events or changes reads at most (one row always).
/// Rows are counted by the caller's limit too; this keeps a page of huge rows (long texts,
/// escaped) from loading tens of MB, and the API cuts the encoded page to its own budget.
const PAGE_READ_BYTES: usize = 1 << 20;

/// Collects rows until their stored size passes [`PAGE_READ_BYTES`]; says whether it stopped
/// early (rows were left: the page has more).
fn within_budget<T>(
    rows: impl Iterator<Item = rusqlite::Result<T>>,
    size: impl Fn(&T) -> usize,
) -> StoreResult<(Vec<T>, bool)> {
    let mut kept = Vec::new();
    let mut total = 0usize;
    for row in rows {
        let row = row.map_err(be)?;
        if total >= PAGE_READ_BYTES && !kept.is_empty() {
            return Ok((kept, true));
        }
        total = total.saturating_add(size(&row));
        kept.push(row);
    }
    Ok((kept, false))
}

pub fn changes(
    conn: &Connection,
    app: AppId,
    room: RoomNumber,
    since: Pos,
    limit: usize,
) -> StoreResult<Page<Change>> {
    let Some(rid) = rows::room_id(conn, app, room).map_err(be)? else {
        return Ok(Page {
            rows: vec![],
            has_more: false,
        });
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT pos, at, v, body, seq FROM events WHERE app_id = ?1 AND room_no = ?2 AND pos > ?3
               AND pos IS NOT NULL ORDER BY pos LIMIT {}",
            limit + 1
        ))
        .map_err(be)?;
    let found = stmt
        .query_map(params![app.0, room.0, since.0], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })
        .map_err(be)?;
    let (raw, cut) = within_budget(found, |r| r.3.len())?;
    let has_more = cut || raw.len() > limit;
    let mut rows = Vec::with_capacity(raw.len().min(limit));
    for (pos, at, v, body, seq) in raw.into_iter().take(limit) {
        let body = EventBody::decode(v, &body).map_err(StoreError::Internal)?;
        let item = match seq {
            Some(s) => rows::item_by_seq(conn, rid, Seq(s)).map_err(be)?,
            None => None,
        };
        rows.push(Change {
            pos: Pos(pos),
            at: Timestamp(at),
            body,
            item,
        });
    }
    Ok(Page { rows, has_more })
}

pub fn events(
    conn: &Connection,
    app: AppId,
    after: Offset,
    limit: usize,
) -> StoreResult<Page<Event>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT \"offset\", at, v, body FROM events WHERE app_id = ?1 AND \"offset\" > ?2
               ORDER BY \"offset\" LIMIT {}",
            limit + 1
        ))
        .map_err(be)?;
    let found = stmt
        .query_map(params![app.0, after.0], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(be)?;
    let (raw, cut) = within_budget(found, |r| r.3.len())?;
    let has_more = cut || raw.len() > limit;
    let mut rows = Vec::with_capacity(raw.len().min(limit));
    for (offset, at, v, body) in raw.into_iter().take(limit) {
        let body = EventBody::decode(v, &body).map_err(StoreError::Internal)?;
        rows.push(Event {
            app,
            offset: Offset(offset),
            at: Timestamp(at),
            body,
        });
    }
    Ok(Page { rows, has_more })
}

/// The last position of each room of `rooms` that exists. A point lookup per room on one
/// connection: in SQLite that costs about what parsing a list of numbers would.
pub fn heads(
    conn: &Connection,
    app: AppId,
    rooms: &[RoomNumber],
) -> StoreResult<Vec<(RoomNumber, Pos)>> {
    let mut stmt = conn
        .prepare_cached("SELECT last_pos FROM rooms WHERE app_id = ?1 AND number = ?2")
        .map_err(be)?;
    let mut out = Vec::with_capacity(rooms.len());
    for room in rooms {
        let pos = stmt
            .query_row(params![app.0, room.0], |r| r.get::<_, i64>(0))
            .optional()
            .map_err(be)?;
        if let Some(pos) = pos {
            out.push((*room, Pos(pos)));
        }
    }
    Ok(out)
}
