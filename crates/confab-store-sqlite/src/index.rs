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

use crate::schema;
use rusqlite::{Connection, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Events read per indexing transaction.
const BATCH: i64 = 4096;
/// How often the indexer looks at the log when nobody woke it.
const POLL: Duration = Duration::from_millis(500);
/// Least time between two batches unless someone is waiting (see `Shared::hurry`): messages
/// gather into larger batches, which cost the index less per message.
const PACE: Duration = Duration::from_millis(200);

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

/// Opens the index file; one that cannot be read (damaged, truncated, not a database) is
/// derived data, so it is deleted and made again from the log, with a warning naming it,
/// rather than stopping the server.
fn open_or_recreate(path: &Path) -> rusqlite::Result<Connection> {
    let check = |conn: Connection| {
        conn.query_row("SELECT last_event FROM index_state", [], |r| {
            r.get::<_, i64>(0)
        })?;
        conn.query_row("SELECT COUNT(*) FROM items_fts_data", [], |_| Ok(()))?;
        Ok(conn)
    };
    match open(path).and_then(check) {
        Ok(conn) => Ok(conn),
        Err(e) => {
            tracing::warn!(
                index = %path.display(),
                error = %e,
                "the search index cannot be read; deleting it and building it again from the log"
            );
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                if let Err(e) = std::fs::remove_file(&p)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(file = ?p, error = %e, "cannot delete a damaged index file");
                }
            }
            open(path)
        }
    }
}

/// What the writer, the indexer and rebuilds share.
pub struct Shared {
    pub path: PathBuf,
    /// Held by the indexer for each batch and by a rebuild while it resets the index.
    pub lock: Mutex<()>,
    /// Whether the indexer thread runs.
    pub enabled: bool,
    /// Whether the indexer is merging segments (see `settle`).
    pub merging: AtomicBool,
    wake: SyncSender<()>,
    hurry: SyncSender<()>,
}

impl Shared {
    /// Tells the indexer there is something new (never blocks).
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    /// Tells the indexer someone waits for it: index at once, without pacing.
    pub fn hurry(&self) {
        let _ = self.hurry.try_send(());
        self.wake();
    }
}

/// Starts the indexer thread for the database at `db`. It stops when `Shared` is dropped.
pub fn start(db: &Path, enabled: bool) -> Result<Arc<Shared>, Box<dyn std::error::Error>> {
    let path = path_for(db);
    let mut conn = open_or_recreate(&path)?;
    let (wake, rx) = std::sync::mpsc::sync_channel(1);
    let (hurry, hurried) = std::sync::mpsc::sync_channel(1);
    let shared = Arc::new(Shared {
        path,
        lock: Mutex::new(()),
        enabled,
        merging: AtomicBool::new(false),
        wake,
        hurry,
    });
    if enabled {
        conn.execute("ATTACH DATABASE ?1 AS m", params![db.to_string_lossy()])?;
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("confab-search-indexer".into())
            .spawn(move || {
                indexer_loop(&mut conn, &rx, &hurried, &weak);
            })?;
    }
    Ok(shared)
}

fn indexer_loop(
    conn: &mut Connection,
    rx: &Receiver<()>,
    hurried: &Receiver<()>,
    shared: &std::sync::Weak<Shared>,
) {
    lower_priority();
    let mut last_batch;
    // Whether a merge of the index's segments is under way.
    let mut merging = false;
    let mut checked = std::time::Instant::now();
    // Whether anything was indexed since the segments were last looked at.
    let mut grown = false;
    loop {
        let Some(s) = shared.upgrade() else { return };
        // Whether the log had nothing new this time: the moment for merging.
        let mut quiet = false;
        loop {
            let step = {
                let Ok(_guard) = s.lock.lock() else { return };
                last_batch = std::time::Instant::now();
                index_batch(conn)
            };
            match step {
                Ok(n) if n < BATCH as usize => {
                    grown |= n > 0;
                    quiet = n == 0;
                    break;
                }
                Ok(_) => {
                    grown = true;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "search indexing failed; retrying");
                    break;
                }
            }
        }
        // Caught up: one step of merging, if worth it, then back to new messages first.
        let merged = {
            let Ok(_guard) = s.lock.lock() else { return };
            let check = !merging && quiet && grown && checked.elapsed() >= MERGE_CHECK;
            if check {
                checked = std::time::Instant::now();
                grown = false;
            }
            if merging || (check && wants_merge(conn).unwrap_or(false)) {
                merge_step(conn, !merging)
            } else {
                Ok(false)
            }
        };
        merging = match merged {
            Ok(more) => more,
            Err(e) => {
                tracing::error!(error = %e, "search index merge failed");
                false
            }
        };
        s.merging.store(merging, Ordering::Release);
        drop(s);
        if merging {
            continue;
        }
        match rx.recv_timeout(POLL) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if let Some(rest) = PACE.checked_sub(last_batch.elapsed()) {
            match hurried.recv_timeout(rest) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// The indexer runs at a low CPU priority: it uses idle time and gives way to the writer and
/// the request handlers when the machine is busy (searches stay exact meanwhile: they read
/// what it has not indexed yet directly).
fn lower_priority() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    // 22 of 0..=99 maps to a nice value of 10.
    let Ok(value) = ThreadPriorityValue::try_from(22u8) else {
        return;
    };
    let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
    if let Err(e) = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(value),
        policy,
    ) {
        tracing::debug!(error = ?e, "cannot lower the search indexer's priority");
    }
}

/// Index pages written per merge step; between steps, new messages are indexed first.
const MERGE_PAGES: i64 = 1000;
/// How often, at most, the indexer looks at the index's segments.
const MERGE_CHECK: Duration = Duration::from_secs(2);

/// Whether the index should be merged into one segment. A search walks a term's list of
/// messages in every segment, so segments of similar size cost it several walks of about the
/// same length; small ones cost little. Merging everything rewrites the largest segment, so
/// it waits until the others add up to an eighth of it: each message is rewritten a bounded
/// number of times, and the walks beyond the largest segment's stay short.
fn wants_merge(conn: &Connection) -> rusqlite::Result<bool> {
    // One row of `_idx` per leaf page: a segment's row count is its size in pages.
    let mut stmt = conn.prepare_cached("SELECT count(*) FROM items_fts_idx GROUP BY segid")?;
    let sizes: Vec<i64> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let rest: i64 = sizes.iter().sum::<i64>() - largest;
    Ok(sizes.len() > 1 && rest * 8 >= largest)
}

/// One step of merging all segments into one; returns whether there is more to do.
fn merge_step(conn: &Connection, start: bool) -> rusqlite::Result<bool> {
    let before = conn.total_changes();
    // A negative amount starts a merge of every segment; a positive one continues it.
    let pages = if start { -MERGE_PAGES } else { MERGE_PAGES };
    conn.execute(
        "INSERT INTO items_fts (items_fts, rank) VALUES ('merge', ?1)",
        params![pages],
    )?;
    // Fewer than two rows changed: nothing was left to merge.
    Ok(conn.total_changes() - before >= 2)
}

/// What one message needs in the index: its rowid, whether an older version may be there,
/// and its current text (`None`: not searchable any more).
struct Change {
    id: i64,
    replaces: bool,
    text: Option<String>,
}

/// Indexes the next events after the mark; returns how many events it read.
///
/// Reading and writing are two transactions: the read one, on the main database, is short, so
/// the indexer never holds a snapshot of the main database while it does the slow part (a long
/// reader would keep the main write-ahead log from being reset, and it would grow).
pub fn index_batch(conn: &mut Connection) -> rusqlite::Result<usize> {
    let (mark, read, changes) = read_batch(conn)?;
    let Some(last) = read else {
        return Ok(0);
    };
    // In rowid order: FTS5 writes out what it holds in memory whenever a rowid is not above
    // the previous one, so out of order every message would make a segment of its own.
    let mut changes = changes;
    changes.sort_unstable_by_key(|c| c.id);
    let tx = conn.transaction()?;
    for c in &changes {
        if c.replaces {
            tx.prepare_cached("DELETE FROM main.items_fts WHERE rowid = ?1")?
                .execute(params![c.id])?;
        }
        if let Some(text) = &c.text {
            tx.prepare_cached("INSERT INTO main.items_fts (rowid, text) VALUES (?1, ?2)")?
                .execute(params![c.id, text])?;
        }
    }
    // Only this thread moves the mark (a reset holds the lock this thread indexes under).
    tx.execute(
        "UPDATE main.index_state SET last_event = ?1 WHERE last_event = ?2",
        params![last.0, mark],
    )?;
    tx.commit()?;
    Ok(last.1)
}

/// The mark, then (last event id, events read) and the changes of the next batch.
type Batch = (i64, Option<(i64, usize)>, Vec<Change>);

fn read_batch(conn: &mut Connection) -> rusqlite::Result<Batch> {
    let tx = conn.transaction()?;
    let mark: i64 = tx.query_row("SELECT last_event FROM main.index_state", [], |r| r.get(0))?;
    // Every event of the batch (to move the mark past it); for message events also the item's
    // key and its current text, if it is a live message.
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT e.id, e.type = 'message_posted', i.id, i.text
         FROM m.events e
         LEFT JOIN m.rooms r
           ON e.type IN ('message_posted', 'message_edited', 'message_deleted')
          AND r.app_id = e.app_id AND r.number = e.room_no
         LEFT JOIN m.items i ON i.id = ((r.id << 32) | e.seq)
         WHERE e.id > ?1 ORDER BY e.id LIMIT {BATCH}"
    ))?;
    let mut rows = stmt.query(params![mark])?;
    let (mut last, mut read) = (mark, 0usize);
    let mut changes: Vec<Change> = Vec::new();
    let mut done = std::collections::HashSet::new();
    while let Some(row) = rows.next()? {
        last = row.get(0)?;
        read += 1;
        let Some(id) = row.get::<_, Option<i64>>(2)? else {
            continue;
        };
        // The current text goes in once per batch, whatever happened to it in between.
        if !done.insert(id) {
            continue;
        }
        let posted: bool = row.get(1)?;
        changes.push(Change {
            id,
            replaces: !posted,
            text: row.get(3)?,
        });
    }
    drop(rows);
    drop(stmt);
    tx.commit()?;
    if read == 0 {
        return Ok((mark, None, changes));
    }
    Ok((mark, Some((last, read)), changes))
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
