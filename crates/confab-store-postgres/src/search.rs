//! Message search with the SQLite store's semantics (see `confab_core::search`): every term
//! must occur in the text, inside words too, ignoring case the way the core folds it; newest
//! first by (created_at, room, seq); the index proposes, [`Query::spans`] decides.
//!
//! Items keep `folded`, their text folded by the core at write time, so `folded LIKE '%term%'`
//! with the core-folded term is exactly "the term occurs", whatever the database's locale.
//! Terms of 3+ characters are served by the pg_trgm GIN index of `search_items`, which each
//! node's indexer (`indexer`) keeps off the sends' transactions, up to each app's mark in
//! `search_marks`. So that a committed send is found by the very next search however far
//! behind the indexer is, the candidates are the index's matches together with the items of
//! the messages posted or edited after the mark (`events` past it, the "tail"), read with the
//! mark in one statement (one snapshot); every candidate is then checked on the item's current
//! `folded`, so a stale index row can never make a wrong hit, and a message deleted after the
//! mark is left out by the item itself. Shorter terms are checked row by row while PostgreSQL
//! walks the newest items first (`items_newest`).
//!
//! One plan cannot fit every term: a frequent term is found fastest by walking each room's
//! newest items, a rare one by the trigram index (a walk would read every item of every room;
//! the index, every match). So [`among`] first walks a short window of each room's newest
//! items (the user's joined rooms, [`Scope::Joined`], or the one room, [`Scope::Room`]), which
//! answers exactly when enough hits are newer than every unfinished room's window; only
//! otherwise does it ask the trigram index (or, for short terms, walk on), for those rooms.

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
    let rooms: Vec<i64> = match &scope {
        Scope::Room(n) => run(
            c,
            "SELECT number FROM rooms WHERE app_id = $1 AND number = $2 AND NOT deleted",
            &[&app.0, &n.0],
        )
        .await?
        .iter()
        .map(|r| rows::get(r, 0))
        .collect::<StoreResult<_>>()?,
        Scope::Joined(user) => run(
            c,
            "SELECT m.room_no FROM members m
             JOIN rooms r ON r.app_id = m.app_id AND r.number = m.room_no
             WHERE m.app_id = $1 AND m.user_id = $2 AND m.state = 'joined' AND NOT r.deleted",
            &[&app.0, &user.0],
        )
        .await?
        .iter()
        .map(|r| rows::get(r, 0))
        .collect::<StoreResult<_>>()?,
    };
    if rooms.is_empty() {
        return Ok(page(Vec::new(), limit));
    }
    among(c, app, &rooms, &patterns, &query, cursor, limit).await
}

/// Whether the trigram index can serve the query: every term has 3+ characters (and there is
/// one).
fn indexed(query: &Query) -> bool {
    !query.terms().is_empty() && query.terms().iter().all(|t| t.chars().count() >= 3)
}

/// The candidates in the rooms `$2` of the app `$1`, newest first from the cursor
/// `($3, $4, $5)`, `CHUNK` at a time; each term's pattern from `$6` on. With `indexed`, they
/// are the trigram index's matches and the tail's items, each then read by key (see the
/// module's docs); without, the rooms' items, walked newest first.
fn candidates(indexed: bool, terms: usize) -> String {
    let likes = |col: &str| -> String {
        (0..terms)
            .map(|i| format!(" AND {col}.folded LIKE ${}", i + 6))
            .collect()
    };
    let (with, from) = if indexed {
        // Only the trigram index is asked (`+ 0` hides the key of search_items from the
        // planner: without statistics it would read every indexed item of the rooms, or of
        // the app), and the items are read by key for each candidate (LATERAL, kept apart by
        // OFFSET 0), never walked in the hope of meeting the candidates.
        (
            format!(
                "WITH mark AS (SELECT COALESCE((SELECT last_offset FROM search_marks
                     WHERE app_id = $1), 0) AS last_offset),
                 found AS (
                     SELECT s.room_no, s.seq FROM search_items s
                     WHERE s.app_id + 0 = $1 AND s.room_no + 0 = ANY($2){slikes}
                     UNION
                     SELECT e.room_no, e.seq FROM events e, mark m
                     WHERE e.app_id = $1 AND e.\"offset\" > m.last_offset
                       AND e.room_no = ANY($2)
                       AND e.type IN ('message_posted', 'message_edited'))
                 ",
                slikes = likes("s"),
            ),
            "found f CROSS JOIN LATERAL (SELECT * FROM items i0 WHERE i0.app_id = $1
                 AND i0.room_no = f.room_no AND i0.seq = f.seq OFFSET 0) i",
        )
    } else {
        (String::new(), "items i")
    };
    format!(
        "{with}SELECT i.room_no, {cols} FROM {from}
         WHERE i.app_id = $1 AND i.room_no = ANY($2) AND i.kind = 'message' AND NOT i.deleted
           AND i.folded IS NOT NULL{ilikes}
           AND (i.created_at, i.room_no, i.seq) < ($3, $4, $5)
         ORDER BY i.created_at DESC, i.room_no DESC, i.seq DESC LIMIT {CHUNK}",
        cols = rows::prefixed(ITEM_COLS, "i"),
        ilikes = likes("i"),
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

/// Search over `rooms`: the newest `WINDOW` items of each room from the cursor
/// (`items_newest`, room by room), then the trigram index if they do not settle it.
async fn among(
    c: &Client,
    app: AppId,
    rooms: &[i64],
    patterns: &[String],
    query: &Query,
    cursor: Key,
    limit: usize,
) -> StoreResult<Page<Hit>> {
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
    let sql = candidates(indexed(query), patterns.len());
    chunks(c, &sql, app, &rooms, patterns, query, cursor, limit).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_characters_are_escaped() {
        assert_eq!(super::pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
