//! `Store::joins`: an app's joinings after an offset, from the log. One statement reads the
//! app row's `last_offset` and the membership events of the range together, so they agree;
//! the range is walked through the log's `(app_id, offset)` index and is at most `span`
//! offsets long.

use crate::fault::sql as be;
use confab_core::error::StoreError;
use confab_core::event::EventBody;
use confab_core::ids::{AppId, Offset};
use confab_core::joinings::{Joining, Joins, span_end};
use confab_core::store::StoreResult;
use rusqlite::{Connection, OptionalExtension, params};

const JOINS_SQL: &str = "SELECT a.last_offset, e.\"offset\", e.v, e.body
    FROM apps a
    LEFT JOIN events e
      ON e.app_id = a.id AND e.\"offset\" > ?2
     AND e.\"offset\" <= ?2 + ?3 AND e.\"offset\" <= a.last_offset AND e.type = 'membership'
    WHERE a.id = ?1
    ORDER BY e.\"offset\"";

type Row = (i64, Option<i64>, Option<i64>, Option<String>);

pub fn joins(
    conn: &Connection,
    app: AppId,
    after: Option<Offset>,
    span: usize,
) -> StoreResult<Joins> {
    let Some(after) = after else {
        let head = conn
            .prepare_cached("SELECT last_offset FROM apps WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row(params![app.0], |r| r.get::<_, i64>(0))
                    .optional()
            })
            .map_err(be)?;
        return Ok(Joins {
            rows: Vec::new(),
            next: Offset(head.unwrap_or(0)),
            has_more: false,
        });
    };
    let span = span.max(1);
    let width = i64::try_from(span).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(JOINS_SQL).map_err(be)?;
    let found: Vec<Row> = stmt
        .query_map(params![app.0, after.0, width], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .map_err(be)?
        .collect::<Result<_, _>>()
        .map_err(be)?;
    let Some(first) = found.first() else {
        // No such app: nothing to read, ever.
        return Ok(Joins {
            rows: Vec::new(),
            next: after,
            has_more: false,
        });
    };
    let (next, has_more) = span_end(after, Offset(first.0), span);
    let mut out = Vec::new();
    for (_, offset, v, body) in found {
        let (Some(offset), Some(v), Some(body)) = (offset, v, body) else {
            continue;
        };
        let body = EventBody::decode(v, &body).map_err(StoreError::Internal)?;
        out.extend(Joining::of(Offset(offset), &body));
    }
    Ok(Joins {
        rows: out,
        next,
        has_more,
    })
}
