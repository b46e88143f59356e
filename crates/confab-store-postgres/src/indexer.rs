//! The search index's upkeep, off the sends' transactions: each node runs an indexer, a task
//! on its own connection that follows every app's log and keeps `search_items` (the trigram
//! index's table) equal to the items' `folded` up to the app's mark in `search_marks`.
//!
//! Trigram upkeep inside the writer's transactions cost about a third of the writer backend's
//! CPU; here it is paid in large batches after the sends are acknowledged. Searches read the
//! mark with the index in one snapshot and look at the messages posted or edited after it
//! directly (`search`), so results never lag a committed send, however far behind this is.
//!
//! One transaction per app and batch (up to [`BATCH`] events): the app's mark row is locked
//! (`FOR UPDATE SKIP LOCKED`: an app another node's indexer is at is left to it, so no event is
//! applied twice), the items named by the message events after the mark are written from
//! their current `folded` (upserted, or deleted when it is gone), and the mark moves on. Per
//! app, offsets are gapless and become visible in commit order (see `writer`), so every event
//! up to the new mark was read: a mark never skips one. The items are read in a snapshot no
//! older than the events', so a row may hold a newer text than its mark says, never an older
//! one; every candidate is checked against the current text anyway. Room deletions change no
//! item: searches leave deleted rooms out themselves.
//!
//! The indexer takes the rebuild lock shared like a writer, but only if it is free, so it
//! skips its round while a replay runs (which empties both tables: it then starts over from
//! 0). It wakes on this node's commits (the store's commit feed) and looks every [`POLL`] for
//! other nodes' ones (`PgStore::settle` hurries it); batches are at least [`PACE`] apart
//! unless it is catching up. Every statement has a deadline; an error drops the connection and
//! it reconnects after a pause. It ends when the store is dropped (the commit feed closes).

use crate::schema::{LOCK_CLASS, LOCK_REBUILD};
use crate::{PgStore, read, rows};
use confab_core::error::StoreError;
use confab_core::event::Event;
use confab_core::store::StoreResult;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::Instant;

/// Events read per indexing transaction.
const BATCH: i64 = 4096;
/// How often the indexer looks at the log when this node's commits did not wake it.
const POLL: Duration = Duration::from_millis(500);
/// Least time between two rounds unless the last one left work: messages gather into larger
/// batches, which cost the index less per message.
const PACE: Duration = Duration::from_millis(200);
/// How long a round may take before the connection is given up (a statement's own deadline is
/// set on the connection too).
const ROUND_DEADLINE: Duration = Duration::from_secs(60);
/// The wait before reconnecting after an error.
const PAUSE: Duration = Duration::from_secs(1);

/// Apps whose log is past their mark (no mark row: 0).
const BEHIND_SQL: &str = "SELECT a.id FROM apps a LEFT JOIN search_marks m ON m.app_id = a.id
    WHERE a.last_offset > COALESCE(m.last_offset, 0) ORDER BY a.id";

/// The items named by the app's (`$1`) message events in `($2, $3]`.
const TOUCHED: &str = "SELECT DISTINCT room_no, seq FROM events
    WHERE app_id = $1 AND \"offset\" > $2 AND \"offset\" <= $3
      AND type IN ('message_posted', 'message_edited', 'message_deleted')";

/// Starts the indexer on the runtime the store was opened on; the `Notify` hurries it (a
/// round at once, see `PgStore::settle`).
pub fn spawn(config: tokio_postgres::Config, feed: broadcast::Receiver<Arc<Event>>) -> Arc<Notify> {
    let hurry = Arc::new(Notify::new());
    let wake = Wake {
        feed,
        hurry: hurry.clone(),
    };
    tokio::spawn(run(config, wake));
    hurry
}

async fn run(mut config: tokio_postgres::Config, mut wake: Wake) {
    config.application_name("confab-indexer");
    crate::open::set_options(&mut config, "-c statement_timeout=30000 -c jit=off");
    loop {
        let client = match config.connect(tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "the indexer's connection ended");
                    }
                });
                client
            }
            Err(e) => {
                tracing::warn!(error = %e, "the search indexer cannot connect; retrying");
                if !wake.pace(PAUSE).await {
                    return;
                }
                continue;
            }
        };
        match follow(client, &mut wake).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "the search indexer failed; reconnecting");
                if !wake.pace(PAUSE).await {
                    return;
                }
            }
        }
    }
}

/// Rounds on one connection until the feed closes (`Ok`) or something fails.
async fn follow(mut client: tokio_postgres::Client, wake: &mut Wake) -> Result<(), String> {
    loop {
        let started = Instant::now();
        let more = tokio::time::timeout(ROUND_DEADLINE, round(&mut client))
            .await
            .map_err(|_| "a round took too long".to_owned())?
            .map_err(|e| e.to_string())?;
        if more {
            continue;
        }
        if !wake.commit(POLL).await {
            return Ok(());
        }
        let rest = PACE.saturating_sub(started.elapsed());
        if !rest.is_zero() && !wake.pace(rest).await {
            return Ok(());
        }
    }
}

/// What starts a round: this node's commits, a hurry, or time.
struct Wake {
    feed: broadcast::Receiver<Arc<Event>>,
    hurry: Arc<Notify>,
}

impl Wake {
    /// Waits for a commit of this node, a hurry or `limit`; false when the feed is closed.
    async fn commit(&mut self, limit: Duration) -> bool {
        tokio::select! {
            r = tokio::time::timeout(limit, self.feed.recv()) => {
                if matches!(r, Ok(Err(RecvError::Closed))) {
                    return false;
                }
            }
            () = self.hurry.notified() => {}
        }
        self.drain()
    }

    /// Sleeps `limit` unless hurried (commits meanwhile are taken by the next round); false
    /// when the feed closes.
    async fn pace(&mut self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return self.drain(),
                () = self.hurry.notified() => return self.drain(),
                r = self.feed.recv() => {
                    if matches!(r, Err(RecvError::Closed)) {
                        return false;
                    }
                }
            }
        }
    }

    /// Takes the commits already announced (the coming round covers them); false when the
    /// feed is closed.
    fn drain(&mut self) -> bool {
        loop {
            match self.feed.try_recv() {
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Closed) => return false,
            }
        }
    }
}

/// One batch for every app that is behind; true if some app has more to do.
async fn round(client: &mut tokio_postgres::Client) -> Result<bool, tokio_postgres::Error> {
    let apps: Vec<i64> = client
        .query(BEHIND_SQL, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut more = false;
    for app in apps {
        more |= index_app(client, app).await?;
    }
    Ok(more)
}

/// Applies the app's next batch of events in one transaction; true if it was full.
async fn index_app(
    client: &mut tokio_postgres::Client,
    app: i64,
) -> Result<bool, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let free: bool = tx
        .query_one(
            "SELECT pg_try_advisory_xact_lock_shared($1, $2)",
            &[&LOCK_CLASS, &LOCK_REBUILD],
        )
        .await?
        .get(0);
    if !free {
        // A replay is running; it empties the index, so this round has nothing to add.
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO search_marks (app_id, last_offset) VALUES ($1, 0)
         ON CONFLICT (app_id) DO NOTHING",
        &[&app],
    )
    .await?;
    let Some(row) = tx
        .query_opt(
            "SELECT last_offset FROM search_marks WHERE app_id = $1 FOR UPDATE SKIP LOCKED",
            &[&app],
        )
        .await?
    else {
        // Another node's indexer is at it.
        return Ok(false);
    };
    let mark: i64 = row.get(0);
    let Some(row) = tx
        .query_opt(
            "SELECT LEAST(last_offset, $2) FROM apps WHERE id = $1",
            &[&app, &(mark + BATCH)],
        )
        .await?
    else {
        return Ok(false);
    };
    let upto: i64 = row.get(0);
    if upto <= mark {
        return Ok(false);
    }
    tx.execute(
        &format!(
            "DELETE FROM search_items s USING ({TOUCHED}) t
             WHERE s.app_id = $1 AND s.room_no = t.room_no AND s.seq = t.seq
               AND NOT EXISTS (SELECT 1 FROM items i WHERE i.app_id = $1
                   AND i.room_no = t.room_no AND i.seq = t.seq AND i.folded IS NOT NULL)"
        ),
        &[&app, &mark, &upto],
    )
    .await?;
    tx.execute(
        &format!(
            "INSERT INTO search_items (app_id, room_no, seq, folded)
             SELECT $1, i.room_no, i.seq, i.folded FROM ({TOUCHED}) t
             JOIN items i ON i.app_id = $1 AND i.room_no = t.room_no AND i.seq = t.seq
             WHERE i.folded IS NOT NULL
             ON CONFLICT (app_id, room_no, seq) DO UPDATE SET folded = EXCLUDED.folded
             WHERE search_items.folded <> EXCLUDED.folded"
        ),
        &[&app, &mark, &upto],
    )
    .await?;
    tx.execute(
        "UPDATE search_marks SET last_offset = $2 WHERE app_id = $1",
        &[&app, &upto],
    )
    .await?;
    tx.commit().await?;
    Ok(upto - mark == BATCH)
}

/// How long `settle` waits for the indexer to reach the end of every app's log.
const SETTLE_DEADLINE: Duration = Duration::from_secs(30);

/// Waits until every app's mark is at its log's end (at once without an indexer on this node:
/// nothing here would move them).
pub async fn settle(store: &PgStore) -> StoreResult<()> {
    let Some(hurry) = &store.indexer else {
        return Ok(());
    };
    let until = Instant::now() + SETTLE_DEADLINE;
    let sql = format!("SELECT EXISTS ({BEHIND_SQL})");
    loop {
        let behind: bool = {
            let c = store.client().await?;
            let found = read::query(&c, &sql, &[]).await?;
            found
                .first()
                .map(|r| rows::get(r, 0))
                .transpose()?
                .unwrap_or(false)
        };
        if !behind {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(StoreError::unavailable(
                "the search indexer did not catch up in time",
            ));
        }
        hurry.notify_one();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
