//! `Store::joins`: an app's joinings after an offset, from the log. One statement reads the
//! app row's `last_offset` and the membership events of the range together, so they agree;
//! the range is walked through the log's primary key and is at most `span` offsets long.

use crate::read::query;
use crate::rows;
use confab_core::error::StoreError;
use confab_core::event::EventBody;
use confab_core::ids::{AppId, Offset};
use confab_core::joinings::{Joining, Joins, span_end};
use confab_core::store::StoreResult;
use deadpool_postgres::Client;

/// The range's bounds are given apart (`<= $2 + $3`, `<= last_offset`), not as one `LEAST`:
/// only so are both index bounds, whatever the plan (with `LEAST` over the app row's column,
/// PostgreSQL scanned the whole table: 125–170 ms against 1.8 ms on a log of 2,000,000).
const JOINS_SQL: &str = "SELECT a.last_offset, e.\"offset\", e.v, e.body
    FROM (SELECT last_offset FROM apps WHERE id = $1) a
    LEFT JOIN events e
      ON e.app_id = $1 AND e.\"offset\" > $2 AND e.\"offset\" <= $2 + $3
     AND e.\"offset\" <= a.last_offset AND e.type = 'membership'
    ORDER BY e.\"offset\"";

pub async fn joins(
    c: &Client,
    app: AppId,
    after: Option<Offset>,
    span: usize,
) -> StoreResult<Joins> {
    let Some(after) = after else {
        let found = query(c, "SELECT last_offset FROM apps WHERE id = $1", &[&app.0]).await?;
        let head = found.first().map(|r| rows::get(r, 0)).transpose()?;
        return Ok(Joins {
            rows: Vec::new(),
            next: Offset(head.unwrap_or(0)),
            has_more: false,
        });
    };
    let span = span.max(1);
    let width = i64::try_from(span).unwrap_or(i64::MAX);
    let found = query(c, JOINS_SQL, &[&app.0, &after.0, &width]).await?;
    let Some(first) = found.first() else {
        // No such app: nothing to read, ever.
        return Ok(Joins {
            rows: Vec::new(),
            next: after,
            has_more: false,
        });
    };
    let (next, has_more) = span_end(after, Offset(rows::get(first, 0)?), span);
    let mut out = Vec::new();
    for r in &found {
        let Some(offset) = rows::get::<Option<i64>>(r, 1)? else {
            continue;
        };
        let body =
            EventBody::decode(rows::get(r, 2)?, rows::get(r, 3)?).map_err(StoreError::Internal)?;
        out.extend(Joining::of(Offset(offset), &body));
    }
    Ok(Joins {
        rows: out,
        next,
        has_more,
    })
}
