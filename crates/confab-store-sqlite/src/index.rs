//! The search index: an FTS5 trigram index over message texts, kept in its own SQLite file
//! (`<database>-search`) by a background thread that follows the event log.
//!
//! Indexing a message costs more CPU than committing it, so it is kept off the writer: sends are
//! acknowledged at commit as always, and the indexer catches up in large batches on its own
//! connection and file (its own write lock), with `synchronous=NORMAL` since it can always be
//! rebuilt from the log. The file records the last event it has indexed (`index_state`);
//! searches read that mark first and then look at the messages posted or edited after it
//! directly, so a search sees every acknowledged write however far behind the indexer is.
//!
//! Row ids are item ids (`room_id << 32 | seq`). The index only proposes candidates; every one
//! is checked against the current text, so stale entries can never produce a wrong hit.

use crate::rows::item_key;
use crate::schema;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Events read per indexing transaction.
const BATCH: i64 = 4096;
/// How often the indexer looks at the log when nobody woke it.
const POLL: Duration = Duration::from_millis(500);

pub fn path_for(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-search");
    PathBuf::from(s)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS index_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    last_event INTEGER NOT NULL
);
INSERT OR IGNORE INTO index_state (id, last_event) VALUES (1, 0);
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(
    text,
    content = '',
    contentless_delete = 1,
    tokenize = 'trigram case_sensitive 0',
    detail = none
);
";

/// Opens (creating if needed) the index file.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    schema::configure(&conn, schema::Durability::Normal)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// What the writer, the indexer and rebuilds share.
pub struct Shared {
    pub path: PathBuf,
    /// Held by the indexer for each batch and by a rebuild while it resets the index.
    pub lock: Mutex<()>,
    /// Whether the indexer thread runs.
    pub enabled: bool,
    wake: SyncSender<()>,
}

impl Shared {
    /// Tells the indexer there is something new (never blocks).
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }
}

/// Starts the indexer thread for the database at `db`. It stops when `Shared` is dropped.
pub fn start(db: &Path, enabled: bool) -> Result<Arc<Shared>, Box<dyn std::error::Error>> {
    let path = path_for(db);
    let mut conn = open(&path)?;
    let (wake, rx) = std::sync::mpsc::sync_channel(1);
    let shared = Arc::new(Shared {
        path,
        lock: Mutex::new(()),
        enabled,
        wake,
    });
    if enabled {
        conn.execute("ATTACH DATABASE ?1 AS m", params![db.to_string_lossy()])?;
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("confab-search-indexer".into())
            .spawn(move || {
                indexer_loop(&mut conn, &rx, &weak);
            })?;
    }
    Ok(shared)
}

fn indexer_loop(conn: &mut Connection, rx: &Receiver<()>, shared: &std::sync::Weak<Shared>) {
    loop {
        let Some(s) = shared.upgrade() else { return };
        loop {
            let step = {
                let Ok(_guard) = s.lock.lock() else { return };
                index_batch(conn)
            };
            match step {
                Ok(n) if n < BATCH as usize => break,
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "search indexing failed; retrying");
                    break;
                }
            }
        }
        drop(s);
        match rx.recv_timeout(POLL) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// An event as the indexer reads it: id, type, app, room number, seq.
type LogRow = (i64, String, i64, Option<i64>, Option<i64>);

/// Indexes the next events after the mark; returns how many events it read.
pub fn index_batch(conn: &mut Connection) -> rusqlite::Result<usize> {
    // A deferred transaction: it reads the main database and writes only the index file.
    let tx = conn.transaction()?;
    let mark: i64 = tx.query_row("SELECT last_event FROM main.index_state", [], |r| r.get(0))?;
    let events: Vec<LogRow> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, type, app_id, room_no, seq FROM m.events WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![mark, BATCH], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let Some(last) = events.last().map(|e| e.0) else {
        return Ok(0);
    };
    let mut done = std::collections::HashSet::new();
    for (_, kind, app, room, seq) in &events {
        let posted = kind == "message_posted";
        if !posted && kind != "message_edited" && kind != "message_deleted" {
            continue;
        }
        let (Some(room), Some(seq)) = (room, seq) else {
            continue;
        };
        let room_id: Option<i64> = tx
            .prepare_cached("SELECT id FROM m.rooms WHERE app_id = ?1 AND number = ?2")?
            .query_row(params![app, room], |r| r.get(0))
            .optional()?;
        let Some(room_id) = room_id else { continue };
        let id = item_key(room_id, *seq);
        // The current text goes in once per batch, whatever happened to it in between.
        if !done.insert(id) {
            continue;
        }
        if !posted {
            tx.prepare_cached("DELETE FROM main.items_fts WHERE rowid = ?1")?
                .execute(params![id])?;
        }
        let text: Option<String> = tx
            .prepare_cached(
                "SELECT text FROM m.items WHERE id = ?1 AND kind = 'message' AND deleted = 0",
            )?
            .query_row(params![id], |r| r.get(0))
            .optional()?
            .flatten();
        if let Some(text) = text {
            tx.prepare_cached("INSERT INTO main.items_fts (rowid, text) VALUES (?1, ?2)")?
                .execute(params![id, text])?;
        }
    }
    tx.execute("UPDATE main.index_state SET last_event = ?1", params![last])?;
    tx.commit()?;
    Ok(events.len())
}

/// Empties the index (before a replay renumbers the items); the indexer then starts over.
pub fn reset(shared: &Shared) -> rusqlite::Result<()> {
    let conn = open(&shared.path)?;
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         INSERT INTO items_fts (items_fts) VALUES ('delete-all');
         UPDATE index_state SET last_event = 0;
         COMMIT;",
    )
}
