//! Message search with the SQLite store's semantics (see `confab_core::search`): every term
//! must occur in the text, inside words too, ignoring case the way the core folds it; newest
//! first by (created_at, room, seq); the index proposes, [`Query::spans`] decides.
//!
//! Items keep `folded`, their text folded by the core at write time, so `folded LIKE '%term%'`
//! with the core-folded term is exactly "the term occurs", whatever the database's locale.
//! The pg_trgm GIN index serves each `LIKE` of a term of 3+ characters; shorter terms are
//! checked row by row while PostgreSQL walks the newest items first (`items_newest`). The
//! index has no pending list, so a committed send is found by the very next search.
//!
//! Over all of a user's rooms ([`Scope::Joined`]) one plan cannot fit every term: a frequent
//! term is found fastest by walking each room's newest items, a rare one by the trigram index
//! (a walk would read every item of every room). So [`joined`] first walks a short window of
//! each room's newest items, which answers exactly when enough hits are newer than every
//! unfinished room's window; only otherwise does it ask the trigram index, for those rooms.

use crate::read::query as run;
use crate::rows::{self, ITEM_COLS};
use confab_core::ids::{AppId, RoomNumber};
use confab_core::model::Page;
use confab_core::search::{Cursor, Hit, Query, Scope};
use confab_core::store::StoreResult;
use deadpool_postgres::Client;
use tokio_postgres::types::ToSql;

/// Candidates read per round trip: one page's worth and some, since the database's answer is
/// exact and only a stored text the core folds differently would be dropped.
const CHUNK: usize = 64;

/// `%term%`, with LIKE's own characters escaped.
fn pattern(term: &str) -> String {
    let mut p = String::with_capacity(term.len() + 2);
    p.push('%');
    for ch in term.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// Items of each room read by [`joined`]'s first step.
const WINDOW: i64 = 100;

type Key = (i64, i64, i64);

pub async fn search(
    c: &Client,
    app: AppId,
    scope: Scope,
    query: Query,
    before: Option<Cursor>,
    limit: usize,
) -> StoreResult<Page<Hit>> {
    let patterns: Vec<String> = query.terms().iter().map(|t| pattern(t)).collect();
    let cursor: Key = before.map_or((i64::MAX, i64::MAX, i64::MAX), |b| {
        (b.created_at.0, b.room.0, b.seq.0)
    });
    match &scope {
        Scope::Room(n) => {
            let sql = candidates(
                "i.app_id = $1 AND i.room_no = $2 AND EXISTS (SELECT 1 FROM rooms r
                     WHERE r.app_id = $1 AND r.number = $2 AND NOT r.deleted)",
                patterns.len(),
            );
            chunks(c, &sql, app, &n.0, &patterns, &query, cursor, limit).await
        }
        Scope::Joined(user) => joined(c, app, &user.0, &patterns, &query, cursor, limit).await,
    }
}

/// The index's candidates in `scope_sql` (`$1` the app, `$2` its key), newest first from the cursor
/// `($3, $4, $5)`, `CHUNK` at a time; each term's pattern from `$6` on.
fn candidates(scope_sql: &str, terms: usize) -> String {
    let likes: String = (0..terms)
        .map(|i| format!(" AND i.folded LIKE ${}", i + 6))
        .collect();
    format!(
        "SELECT i.room_no, {cols} FROM items i
         WHERE {scope_sql} AND i.kind = 'message' AND NOT i.deleted
           AND i.folded IS NOT NULL{likes}
           AND (i.created_at, i.room_no, i.seq) < ($3, $4, $5)
         ORDER BY i.created_at DESC, i.room_no DESC, i.seq DESC LIMIT {CHUNK}",
        cols = rows::prefixed(ITEM_COLS, "i"),
    )
}

/// Runs [`candidates`]' `sql` chunk after chunk until more than `limit` hits.
#[allow(clippy::too_many_arguments)]
async fn chunks(
    c: &Client,
    sql: &str,
    app: AppId,
    key: &(dyn ToSql + Sync),
    patterns: &[String],
    query: &Query,
    mut cursor: Key,
    limit: usize,
) -> StoreResult<Page<Hit>> {
    let mut hits = Vec::new();
    loop {
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&app.0, key, &cursor.0, &cursor.1, &cursor.2];
        params.extend(patterns.iter().map(|p| p as &(dyn ToSql + Sync)));
        let found = run(c, sql, &params).await?;
        for r in &found {
            let room = RoomNumber(rows::get(r, 0)?);
            let item = rows::item_at(r, 1)?;
            cursor = (item.created_at.0, room.0, item.seq.0);
            if let Some(spans) = item.text.as_deref().and_then(|t| query.spans(t)) {
                hits.push(Hit { room, item, spans });
            }
        }
        if hits.len() > limit || found.len() < CHUNK {
            break;
        }
    }
    Ok(page(hits, limit))
}

fn page(mut hits: Vec<Hit>, limit: usize) -> Page<Hit> {
    let has_more = hits.len() > limit;
    hits.truncate(limit);
    Page {
        rows: hits,
        has_more,
    }
}

/// Search over the rooms `user` has joined: the newest `WINDOW` items of each room from the
/// cursor (`items_newest`, room by room), then the trigram index if they do not settle it.
async fn joined(
    c: &Client,
    app: AppId,
    user: &str,
    patterns: &[String],
    query: &Query,
    cursor: Key,
    limit: usize,
) -> StoreResult<Page<Hit>> {
    let rooms: Vec<i64> = run(
        c,
        "SELECT m.room_no FROM members m
         JOIN rooms r ON r.app_id = m.app_id AND r.number = m.room_no
         WHERE m.app_id = $1 AND m.user_id = $2 AND m.state = 'joined' AND NOT r.deleted",
        &[&app.0, &user],
    )
    .await?
    .iter()
    .map(|r| rows::get(r, 0))
    .collect::<StoreResult<_>>()?;
    if rooms.is_empty() {
        return Ok(page(Vec::new(), limit));
    }
    let matched = if patterns.is_empty() {
        "TRUE".to_owned()
    } else {
        (0..patterns.len())
            .map(|i| format!("x.folded LIKE ${}", i + 6))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    // Each window's last row comes back even without a match: it says the room goes on, and
    // where the window stopped.
    let sql = format!(
        "SELECT x.room_no, x.rn, ({matched}) AS matched, {cols}
         FROM unnest($2::bigint[]) AS j(room_no)
         CROSS JOIN LATERAL (
             SELECT w.*, row_number() OVER (ORDER BY w.created_at DESC, w.seq DESC) AS rn
             FROM (SELECT i.* FROM items i
                   WHERE i.app_id = $1 AND i.room_no = j.room_no
                     AND i.kind = 'message' AND NOT i.deleted AND i.folded IS NOT NULL
                     AND i.created_at <= $3 AND (i.created_at, i.room_no, i.seq) < ($3, $4, $5)
                   ORDER BY i.created_at DESC, i.seq DESC LIMIT {WINDOW}) w) x
         WHERE x.rn = {WINDOW} OR ({matched})",
        cols = rows::prefixed(ITEM_COLS, "x"),
    );
    let mut params: Vec<&(dyn ToSql + Sync)> =
        vec![&app.0, &rooms, &cursor.0, &cursor.1, &cursor.2];
    params.extend(patterns.iter().map(|p| p as &(dyn ToSql + Sync)));
    // Items older than `cut` may be missing: it is the newest item at which a room's window
    // stopped short of the room's end.
    let mut cut: Option<Key> = None;
    let mut hits: Vec<(Key, Hit)> = Vec::new();
    for r in &run(c, &sql, &params).await? {
        let room = RoomNumber(rows::get(r, 0)?);
        let rn: i64 = rows::get(r, 1)?;
        let is_match: bool = rows::get(r, 2)?;
        let item = rows::item_at(r, 3)?;
        let key = (item.created_at.0, room.0, item.seq.0);
        if rn == WINDOW {
            cut = cut.max(Some(key));
        }
        if is_match && let Some(spans) = item.text.as_deref().and_then(|t| query.spans(t)) {
            hits.push((key, Hit { room, item, spans }));
        }
    }
    hits.sort_by_key(|(k, _)| std::cmp::Reverse(*k));
    let settled = hits
        .iter()
        .filter(|(k, _)| cut.is_none_or(|c| *k >= c))
        .count();
    if cut.is_none() || settled > limit {
        return Ok(page(hits.into_iter().map(|(_, h)| h).collect(), limit));
    }
    // With terms the trigram index serves, keep the planner off the room index: without
    // statistics it would read every item of the rooms, or of the app (`+ 0` hides the
    // columns from it).
    let scope_sql = if query.terms().iter().all(|t| t.chars().count() >= 3) {
        "i.app_id + 0 = $1 AND i.room_no + 0 = ANY($2)"
    } else {
        "i.app_id = $1 AND i.room_no = ANY($2)"
    };
    let sql = candidates(scope_sql, patterns.len());
    chunks(c, &sql, app, &rooms, patterns, query, cursor, limit).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_characters_are_escaped() {
        assert_eq!(super::pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
