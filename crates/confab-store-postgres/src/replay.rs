//! Writes that are not commands: a rebuild replays the log into empty projections, an import
//! takes another store's events as they are. Both project one event at a time
//! (`projection::apply`), the reference the writer's set-based writes must equal.

use crate::conn::Conn;
use crate::projection::{self, Deltas};
use crate::rows;
use crate::schema::{self, LOCK_CLASS, LOCK_REBUILD};
use confab_core::error::StoreError;
use confab_core::event::{EVENT_VERSION, Event, EventBody};
use confab_core::ids::{AppId, Offset, Timestamp};
use confab_core::store::{Progress, StoreResult};
use std::collections::HashMap;

fn insert_events(c: &mut Conn, events: &[Event]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len();
    let (mut app, mut offset, mut room, mut pos, mut seq) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut kind, mut v, mut at, mut body) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for ev in events {
        let (r, p) = ev
            .body
            .room_pos()
            .map_or((None, None), |(r, p)| (Some(r.0), Some(p.0)));
        app.push(ev.app.0);
        offset.push(ev.offset.0);
        room.push(r.or(ev.body.room().map(|r| r.0)));
        pos.push(p);
        seq.push(ev.body.item_seq().map(|s| s.0));
        kind.push(ev.body.type_name());
        v.push(EVENT_VERSION);
        at.push(ev.at.0);
        body.push(ev.body.encode());
    }
    c.exec(
        "INSERT INTO events (app_id, \"offset\", room_no, pos, seq, type, v, at, body)
         SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[],
             $5::BIGINT[], $6::TEXT[], $7::BIGINT[], $8::BIGINT[], $9::TEXT[])",
        &[&app, &offset, &room, &pos, &seq, &kind, &v, &at, &body],
    )?;
    Ok(())
}

/// Inserts events of another store's log as they are and applies them, in one transaction,
/// beside writers as a batch would (the rebuild lock shared). An event already present (same app
/// and offset) fails the insert, so a copy never mixes two logs; the app rows' offsets follow
/// the imported events because pages come in each app's offset order.
pub fn import(c: &mut Conn, events: &[Event]) -> StoreResult<()> {
    c.batch("BEGIN")?;
    let r = (|| {
        c.exec(
            "SELECT pg_advisory_xact_lock_shared($1, $2)",
            &[&LOCK_CLASS, &LOCK_REBUILD],
        )?;
        let mut deltas = Deltas::new();
        for ev in events {
            projection::apply(c, ev, &mut deltas)?;
        }
        for (app, d) in deltas {
            projection::settle_app(c, app, d)?;
        }
        insert_events(c, events)
    })();
    match r.and_then(|()| c.batch("COMMIT")) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = c.batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Empties every projection and replays the log, app by app in offset order (each app's
/// commit order), in one transaction that holds the rebuild lock exclusively: writers of
/// every node wait for it, and it waits for the write transactions already running.
/// Readers see the old projections until it commits.
pub fn rebuild(c: &mut Conn, progress: &Progress) -> StoreResult<u64> {
    c.batch("BEGIN")?;
    let r = rebuild_in(c, progress);
    match r {
        Ok(n) => {
            c.batch("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = c.batch("ROLLBACK");
            Err(e)
        }
    }
}

fn rebuild_in(c: &mut Conn, progress: &Progress) -> StoreResult<u64> {
    c.exec(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_CLASS, &LOCK_REBUILD],
    )?;
    let total: i64 = rows::get(&c.one("SELECT COUNT(*) FROM events", &[])?, 0)?;
    let total = total as u64;
    for table in schema::PROJECTIONS {
        c.batch(&format!("DELETE FROM {table}"))?;
    }
    c.batch(
        "DECLARE replay NO SCROLL CURSOR FOR
         SELECT app_id, \"offset\", at, v, body FROM events ORDER BY app_id, \"offset\"",
    )?;
    let mut deltas = Deltas::new();
    let mut last: HashMap<AppId, i64> = HashMap::new();
    let mut done = 0u64;
    loop {
        let chunk = c.query("FETCH 1000 FROM replay", &[])?;
        if chunk.is_empty() {
            break;
        }
        for r in &chunk {
            let ev = Event {
                app: AppId(rows::get(r, 0)?),
                offset: Offset(rows::get(r, 1)?),
                at: Timestamp(rows::get(r, 2)?),
                body: EventBody::decode(rows::get(r, 3)?, rows::get(r, 4)?)
                    .map_err(StoreError::Internal)?,
            };
            projection::apply(c, &ev, &mut deltas)?;
            last.insert(ev.app, ev.offset.0);
            done += 1;
            if done.is_multiple_of(10_000) || done == total {
                progress(done, total);
            }
        }
    }
    c.batch("CLOSE replay")?;
    for (app, d) in deltas {
        // The rows start at zero: the deltas are the counts, and the offset is the log's.
        let events = last.get(&app).copied().unwrap_or(0);
        projection::settle_app(c, app, projection::Delta { events, ..d })?;
    }
    Ok(done)
}
