//! Message search with the SQLite store's semantics (see `confab_core::search`): every term
//! must occur in the text, inside words too, ignoring case the way the core folds it; newest
//! first by (created_at, room, seq); the index proposes, [`Query::spans`] decides.
//!
//! Items keep `folded`, their text folded by the core at write time, so `folded LIKE '%term%'`
//! with the core-folded term is exactly "the term occurs", whatever the database's locale.
//! The pg_trgm GIN index serves each `LIKE` of a term of 3+ characters; shorter terms are
//! checked row by row while PostgreSQL walks the newest items first (`items_newest`). The
//! index has no pending list, so a committed send is found by the very next search.

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

pub async fn search(
    c: &Client,
    app: AppId,
    scope: Scope,
    query: Query,
    before: Option<Cursor>,
    limit: usize,
) -> StoreResult<Page<Hit>> {
    let patterns: Vec<String> = query.terms().iter().map(|t| pattern(t)).collect();
    let (scope_sql, key): (&str, Box<dyn ToSql + Sync + Send>) = match &scope {
        Scope::Room(n) => (
            "i.room_no = $2 AND EXISTS (SELECT 1 FROM rooms r
                 WHERE r.app_id = $1 AND r.number = $2 AND NOT r.deleted)",
            Box::new(n.0),
        ),
        Scope::Joined(user) => (
            "i.room_no IN (SELECT m.room_no FROM members m
                 JOIN rooms r ON r.app_id = m.app_id AND r.number = m.room_no
                 WHERE m.app_id = $1 AND m.user_id = $2 AND m.state = 'joined'
                   AND NOT r.deleted)",
            Box::new(user.0.clone()),
        ),
    };
    let likes: String = (0..patterns.len())
        .map(|i| format!(" AND i.folded LIKE ${}", i + 6))
        .collect();
    let sql = format!(
        "SELECT i.room_no, {cols} FROM items i
         WHERE i.app_id = $1 AND {scope_sql} AND i.kind = 'message' AND NOT i.deleted
           AND i.folded IS NOT NULL{likes}
           AND (i.created_at, i.room_no, i.seq) < ($3, $4, $5)
         ORDER BY i.created_at DESC, i.room_no DESC, i.seq DESC LIMIT {CHUNK}",
        cols = rows::prefixed(ITEM_COLS, "i"),
    );
    let mut cursor = before.map_or((i64::MAX, i64::MAX, i64::MAX), |b| {
        (b.created_at.0, b.room.0, b.seq.0)
    });
    let mut hits = Vec::new();
    loop {
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&app.0, key.as_ref(), &cursor.0, &cursor.1, &cursor.2];
        params.extend(patterns.iter().map(|p| p as &(dyn ToSql + Sync)));
        let found = run(c, &sql, &params).await?;
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
    let has_more = hits.len() > limit;
    hits.truncate(limit);
    Ok(Page {
        rows: hits,
        has_more,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_characters_are_escaped() {
        assert_eq!(super::pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
