//! Read queries, run on a pooled connection. A committed transaction is visible whole, and a
//! room's positions and an app's offsets become visible in order (see `writer`), so a plain
//! `pos > since` or `offset > after` never skips anything committed later.

use crate::fault::pg as be;
use crate::rows::{self, ITEM_COLS, ITEM_WIDTH, MEMBER_COLS, MEMBER_WIDTH, ROOM_COLS, ROOM_WIDTH};
use confab_core::error::StoreError;
use confab_core::event::{Event, EventBody};
use confab_core::ids::{AppId, Offset, Pos, RoomNumber, Seq, Timestamp, UserId};
use confab_core::model::{
    Access, AppStats, Change, HistoryQuery, Item, Member, MemberState, Page, Room, RoomSummary,
};
use confab_core::store::StoreResult;
use deadpool_postgres::Client;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

pub async fn query(c: &Client, sql: &str, p: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(be)?;
    c.query(&stmt, p).await.map_err(be)
}

pub async fn opt(c: &Client, sql: &str, p: &[&(dyn ToSql + Sync)]) -> StoreResult<Option<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(be)?;
    c.query_opt(&stmt, p).await.map_err(be)
}

pub async fn app_stats(c: &Client, app: AppId) -> StoreResult<AppStats> {
    let r = opt(
        c,
        "SELECT rooms_count, users_count, messages_count FROM apps WHERE id = $1",
        &[&app.0],
    )
    .await?;
    Ok(match r {
        Some(r) => AppStats {
            rooms_count: rows::get(&r, 0)?,
            users_count: rows::get(&r, 1)?,
            messages_count: rows::get(&r, 2)?,
        },
        None => AppStats::default(),
    })
}

async fn room_row(c: &Client, app: AppId, room: RoomNumber) -> StoreResult<Option<rows::RoomRow>> {
    opt(
        c,
        &format!("SELECT {ROOM_COLS} FROM rooms WHERE app_id = $1 AND number = $2"),
        &[&app.0, &room.0],
    )
    .await?
    .map(|r| rows::room_at(&r, 0))
    .transpose()
}

pub async fn access(
    c: &Client,
    app: AppId,
    room: RoomNumber,
    viewer: Option<&UserId>,
) -> StoreResult<Option<Access>> {
    // One round trip: the room and the viewer's membership, if any.
    let r = opt(
        c,
        &format!(
            "SELECT {}, {} FROM rooms r
             LEFT JOIN members m ON m.app_id = r.app_id AND m.room_no = r.number
                 AND m.user_id = $3
             WHERE r.app_id = $1 AND r.number = $2 AND NOT r.deleted",
            rows::prefixed(ROOM_COLS, "r"),
            rows::prefixed(MEMBER_COLS, "m")
        ),
        &[&app.0, &room.0, &viewer.map(UserId::as_str)],
    )
    .await?;
    let Some(r) = r else {
        return Ok(None);
    };
    let member = match rows::get::<Option<String>>(&r, ROOM_WIDTH)? {
        Some(_) => Some(rows::member_at(&r, ROOM_WIDTH)?),
        None => None,
    };
    Ok(Some(Access {
        room: rows::room_at(&r, 0)?.room,
        member,
    }))
}

pub async fn rooms_of_user(
    c: &Client,
    app: AppId,
    user: &UserId,
    state: MemberState,
    after: Option<(i64, RoomNumber)>,
    limit: usize,
) -> StoreResult<Page<RoomSummary>> {
    let (act, num) = after.map_or((i64::MAX, i64::MAX), |(a, n)| (a, n.0));
    let sql = format!(
        "SELECT {room}, {member}, {item},
             CASE WHEN m.read_seq >= r.last_seq THEN 0 ELSE (
                 SELECT COUNT(*) FROM items u
                 WHERE u.app_id = r.app_id AND u.room_no = r.number AND u.seq > m.read_seq
                   AND u.seq <= r.last_seq AND u.kind = 'message' AND NOT u.deleted
                   AND (u.sender IS NULL OR u.sender <> m.user_id)) END,
             {alerts}
         FROM members m
         JOIN rooms r ON r.app_id = m.app_id AND r.number = m.room_no
         LEFT JOIN items i ON i.app_id = r.app_id AND i.room_no = r.number AND i.seq = r.last_seq
         WHERE m.app_id = $1 AND m.user_id = $2 AND m.state = $3 AND NOT r.deleted
           AND (r.activity < $4 OR (r.activity = $4 AND r.number < $5))
         ORDER BY r.activity DESC, r.number DESC LIMIT {lim}",
        room = rows::prefixed(ROOM_COLS, "r"),
        member = rows::prefixed(MEMBER_COLS, "m"),
        item = rows::prefixed(ITEM_COLS, "i"),
        alerts = crate::polls::alerts_count_sql("$6"),
        lim = limit + 1,
    );
    let found = query(
        c,
        &sql,
        &[
            &app.0,
            &user.as_str(),
            &state.as_str(),
            &act,
            &num,
            &Timestamp::now().0,
        ],
    )
    .await?;
    let has_more = found.len() > limit;
    let mut out = Vec::with_capacity(limit);
    for r in found.iter().take(limit) {
        let room = rows::room_at(r, 0)?;
        let member = rows::member_at(r, ROOM_WIDTH)?;
        let io = ROOM_WIDTH + MEMBER_WIDTH;
        let last_item = match rows::get::<Option<i64>>(r, io)? {
            Some(_) if room.room.last_seq.0 > 0 => Some(rows::item_at(r, io)?),
            _ => None,
        };
        out.push(RoomSummary {
            room: room.room,
            member,
            last_item,
            unread_count: rows::get(r, io + ITEM_WIDTH)?,
            alerts_count: rows::get(r, io + ITEM_WIDTH + 1)?,
            activity: room.activity,
        });
    }
    Ok(Page {
        rows: out,
        has_more,
    })
}

pub async fn public_rooms(
    c: &Client,
    app: AppId,
    after: Option<RoomNumber>,
    limit: usize,
) -> StoreResult<Page<Room>> {
    let found = query(
        c,
        &format!(
            "SELECT {ROOM_COLS} FROM rooms WHERE app_id = $1 AND visibility = 'public'
               AND NOT deleted AND number > $2 ORDER BY number LIMIT {}",
            limit + 1
        ),
        &[&app.0, &after.map_or(0, |n| n.0)],
    )
    .await?;
    let has_more = found.len() > limit;
    let rows = found
        .iter()
        .take(limit)
        .map(|r| rows::room_at(r, 0).map(|r| r.room))
        .collect::<StoreResult<_>>()?;
    Ok(Page { rows, has_more })
}

pub async fn members(
    c: &Client,
    app: AppId,
    room: RoomNumber,
    state: Option<MemberState>,
    after: Option<&UserId>,
    limit: usize,
) -> StoreResult<Page<Member>> {
    let found = query(
        c,
        &format!(
            "SELECT {MEMBER_COLS} FROM members WHERE app_id = $1 AND room_no = $2
               AND ($3::TEXT IS NULL OR state = $3) AND user_id > $4 ORDER BY user_id LIMIT {}",
            limit + 1
        ),
        &[
            &app.0,
            &room.0,
            &state.map(MemberState::as_str),
            &after.map_or("", UserId::as_str),
        ],
    )
    .await?;
    let has_more = found.len() > limit;
    let rows = found
        .iter()
        .take(limit)
        .map(|r| rows::member_at(r, 0))
        .collect::<StoreResult<_>>()?;
    Ok(Page { rows, has_more })
}

/// Which items a timeline page reads: the whole timeline, or the replies to one message.
#[derive(Clone, Copy)]
enum Source {
    Timeline,
    Replies(Seq),
}

/// Items of `[lo, hi]`, ascending or descending, at most `n`.
async fn fetch(
    c: &Client,
    app: AppId,
    room: RoomNumber,
    source: Source,
    (lo, hi, desc, n): (i64, i64, bool, usize),
) -> StoreResult<Vec<Item>> {
    if lo > hi {
        return Ok(Vec::new());
    }
    let order = if desc { "DESC" } else { "ASC" };
    let (filter, parent) = match source {
        Source::Timeline => ("", None),
        Source::Replies(p) => ("AND reply_to = $5", Some(p.0)),
    };
    let sql = format!(
        "SELECT {ITEM_COLS} FROM items WHERE app_id = $1 AND room_no = $2 AND seq >= $3
           AND seq <= $4 {filter} ORDER BY seq {order} LIMIT {n}"
    );
    let found = match parent {
        Some(p) => query(c, &sql, &[&app.0, &room.0, &lo, &hi, &p]).await?,
        None => query(c, &sql, &[&app.0, &room.0, &lo, &hi]).await?,
    };
    found.iter().map(rows::item).collect()
}

/// One page of a timeline (or of a thread), ascending, with whether more exist before and
/// after it; the same arithmetic as the SQLite store's. A thread's seqs have gaps, so "more"
/// is always asked of the database, never worked out from seqs.
async fn page(
    c: &Client,
    app: AppId,
    room: RoomNumber,
    source: Source,
    query: HistoryQuery,
    limit: usize,
    last: i64,
) -> StoreResult<(Vec<Item>, bool, bool)> {
    let get = async |lo: i64, hi: i64, desc: bool, n: usize| {
        fetch(c, app, room, source, (lo, hi, desc, n)).await
    };
    let older = async |below: i64, n: usize| -> StoreResult<(Vec<Item>, bool)> {
        let mut v = get(1, below - 1, true, n + 1).await?;
        let more = v.len() > n;
        v.truncate(n);
        v.reverse();
        Ok((v, more))
    };
    let newer = async |above: i64, n: usize| -> StoreResult<(Vec<Item>, bool)> {
        let mut v = get(above.saturating_add(1), last, false, n + 1).await?;
        let more = v.len() > n;
        v.truncate(n);
        Ok((v, more))
    };
    let any = async |lo: i64, hi: i64| -> StoreResult<bool> {
        Ok(lo <= hi && !get(lo.max(1), hi.min(last), false, 1).await?.is_empty())
    };
    Ok(match query {
        HistoryQuery::Latest => {
            let (v, more) = older(last + 1, limit).await?;
            (v, more, false)
        }
        HistoryQuery::Before(s) => {
            let (v, more) = older(s.0.min(last + 1), limit).await?;
            let after = any(v.last().map_or(s.0, |i| i.seq.0 + 1), last).await?;
            (v, more, after)
        }
        HistoryQuery::After(s) => {
            let (v, more) = newer(s.0.max(0), limit).await?;
            let before = any(1, v.first().map_or(s.0, |i| i.seq.0 - 1)).await?;
            (v, before, more)
        }
        HistoryQuery::Around(s) => {
            let half = limit / 2;
            let (mut v, before) = older(s.0, half).await?;
            let (w, after) = newer(s.0 - 1, limit - v.len()).await?;
            v.extend(w);
            (v, before, after)
        }
        HistoryQuery::Range(a, b) => {
            let mut v = get(a.0.max(1), b.0.min(last), false, limit + 1).await?;
            let more = v.len() > limit;
            v.truncate(limit);
            (
                v,
                any(1, a.0 - 1).await?,
                more || any(b.0.saturating_add(1), last).await?,
            )
        }
    })
}

pub async fn history(
    c: &Client,
    app: AppId,
    room: RoomNumber,
    q: HistoryQuery,
    limit: usize,
) -> StoreResult<(Vec<Item>, bool, bool)> {
    if matches!(q, HistoryQuery::Latest) {
        // The most asked page, in one statement: the newest items need no bound from the
        // room row, since a room's items and its counters commit together (what one
        // snapshot holds is the room's whole timeline up to its last seq).
        let mut v = fetch(
            c,
            app,
            room,
            Source::Timeline,
            (1, i64::MAX, true, limit + 1),
        )
        .await?;
        let more = v.len() > limit;
        v.truncate(limit);
        v.reverse();
        return Ok((v, more, false));
    }
    let Some(row) = room_row(c, app, room).await? else {
        return Ok((vec![], false, false));
    };
    page(
        c,
        app,
        room,
        Source::Timeline,
        q,
        limit,
        row.room.last_seq.0,
    )
    .await
}

pub async fn replies(
    c: &Client,
    app: AppId,
    room: RoomNumber,
    parent: Seq,
    q: HistoryQuery,
    limit: usize,
) -> StoreResult<(Vec<Item>, bool, bool)> {
    let Some(row) = room_row(c, app, room).await? else {
        return Ok((vec![], false, false));
    };
    let last = row.room.last_seq.0;
    page(c, app, room, Source::Replies(parent), q, limit, last).await
}

pub async fn item(c: &Client, app: AppId, room: RoomNumber, seq: Seq) -> StoreResult<Option<Item>> {
    opt(
        c,
        &format!("SELECT {ITEM_COLS} FROM items WHERE app_id = $1 AND room_no = $2 AND seq = $3"),
        &[&app.0, &room.0, &seq.0],
    )
    .await?
    .map(|r| rows::item(&r))
    .transpose()
}

/// Stored bytes of event bodies one page of events or changes reads at most (one row
/// always), as in the SQLite store: a page of huge rows must not load tens of MB.
const PAGE_READ_BYTES: usize = 1 << 20;

/// How many of `sizes` fit the byte budget (at least one), and whether that cut the page.
fn within_budget(sizes: impl Iterator<Item = usize>) -> (usize, bool) {
    let (mut total, mut kept) = (0usize, 0usize);
    for size in sizes {
        if total >= PAGE_READ_BYTES && kept > 0 {
            return (kept, true);
        }
        total = total.saturating_add(size);
        kept += 1;
    }
    (kept, false)
}

pub async fn changes(
    c: &Client,
    app: AppId,
    room: RoomNumber,
    since: Pos,
    limit: usize,
) -> StoreResult<Page<Change>> {
    let found = query(
        c,
        &format!(
            "SELECT e.pos, e.at, e.v, e.body, {} FROM events e
             LEFT JOIN items i ON i.app_id = e.app_id AND i.room_no = e.room_no AND i.seq = e.seq
             WHERE e.app_id = $1 AND e.room_no = $2 AND e.pos > $3
             ORDER BY e.pos LIMIT {}",
            rows::prefixed(ITEM_COLS, "i"),
            limit + 1
        ),
        &[&app.0, &room.0, &since.0],
    )
    .await?;
    let sizes = found
        .iter()
        .map(|r| r.try_get::<_, &str>(3).map_or(0, str::len));
    let (kept, cut) = within_budget(sizes);
    let has_more = cut || found.len() > limit;
    let mut out = Vec::with_capacity(kept.min(limit));
    for r in found.iter().take(kept.min(limit)) {
        let body =
            EventBody::decode(rows::get(r, 2)?, rows::get(r, 3)?).map_err(StoreError::Internal)?;
        let item = match rows::get::<Option<i64>>(r, 4)? {
            Some(_) => Some(rows::item_at(r, 4)?),
            None => None,
        };
        out.push(Change {
            pos: Pos(rows::get(r, 0)?),
            at: Timestamp(rows::get(r, 1)?),
            body,
            item,
        });
    }
    Ok(Page {
        rows: out,
        has_more,
    })
}

pub async fn events(
    c: &Client,
    app: AppId,
    after: Offset,
    limit: usize,
) -> StoreResult<Page<Event>> {
    let found = query(
        c,
        &format!(
            "SELECT \"offset\", at, v, body FROM events WHERE app_id = $1 AND \"offset\" > $2
             ORDER BY \"offset\" LIMIT {}",
            limit + 1
        ),
        &[&app.0, &after.0],
    )
    .await?;
    let sizes = found
        .iter()
        .map(|r| r.try_get::<_, &str>(3).map_or(0, str::len));
    let (kept, cut) = within_budget(sizes);
    let has_more = cut || found.len() > limit;
    let mut out = Vec::with_capacity(kept.min(limit));
    for r in found.iter().take(kept.min(limit)) {
        out.push(Event {
            app,
            offset: Offset(rows::get(r, 0)?),
            at: Timestamp(rows::get(r, 1)?),
            body: EventBody::decode(rows::get(r, 2)?, rows::get(r, 3)?)
                .map_err(StoreError::Internal)?,
        });
    }
    Ok(Page {
        rows: out,
        has_more,
    })
}

/// The last position of each room of `rooms` that exists, in one statement.
pub async fn heads(
    c: &Client,
    app: AppId,
    rooms: &[RoomNumber],
) -> StoreResult<Vec<(RoomNumber, Pos)>> {
    let numbers: Vec<i64> = rooms.iter().map(|r| r.0).collect();
    let found = query(
        c,
        "SELECT number, last_pos FROM rooms WHERE app_id = $1 AND number = ANY($2)",
        &[&app.0, &numbers],
    )
    .await?;
    found
        .iter()
        .map(|r| Ok((RoomNumber(rows::get(r, 0)?), Pos(rows::get(r, 1)?))))
        .collect()
}
