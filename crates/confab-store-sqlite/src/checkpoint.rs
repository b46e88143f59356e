//! Checkpoints: copying the write-ahead log back into the database file, mostly off the writer.
//!
//! SQLite's automatic checkpoint runs inside the commit that makes the log cross its threshold:
//! that batch's callers, and every caller queued behind them, wait while the whole log is copied
//! and the database file synced. Here the writer only notes how long the log is after each commit
//! (a WAL hook, which also switches the automatic checkpoint off) and wakes a thread of its own,
//! which copies the log on its own connection (`PASSIVE`: it never takes the write lock, so
//! commits go on meanwhile).
//!
//! SQLite starts the log over only when a write transaction begins with every frame copied. A
//! thread that copies while commits go on never gets there alone: each pass leaves the frames
//! committed during it. So once the thread has copied all but a small tail, the writer copies the
//! tail itself between two batches, and its next commit starts the log over (unless a reader
//! still reads the old frames; then the next batch tries again). If the log reaches the cap
//! anyway (readers keep old frames pinned, or the thread falls behind a slow disk), the writer
//! copies all of it and waits for the readers (`RESTART`), so the log cannot grow without bound.
//!
//! Crash safety is SQLite's: a checkpoint only copies committed frames, and a log that was being
//! copied when the process died is replayed on the next open.

use crate::schema::{self, Durability};
use rusqlite::hooks::Wal;
use rusqlite::{Connection, MAIN_DB, wal::CheckpointMode};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// When the checkpoints run, in bytes of log (turned into frames by the database's page size).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Log length at which the thread starts copying.
    pub every: i64,
    /// Log still to copy small enough for the writer to copy it itself between batches.
    pub tail: i64,
    /// Log length at which the writer copies everything and waits for readers.
    pub cap: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            every: schema::CHECKPOINT_BYTES,
            tail: schema::CHECKPOINT_BYTES / 16,
            cap: schema::CHECKPOINT_BYTES * 4,
        }
    }
}

/// What the writer and the checkpoint thread share.
#[derive(Default)]
struct Shared {
    /// Frames in the log after the writer's last commit (set by the WAL hook).
    frames: AtomicI64,
    /// How many times the writer has seen the log start over; a pass is tagged with the value
    /// it began under, so one that copied an older log is not taken for progress on this one.
    generation: AtomicU64,
    /// The thread's last pass: (generation, frames of the log copied).
    copied: Mutex<(u64, i64)>,
    /// Frames copied by the thread and by the writer (for tests and diagnostics).
    by_thread: AtomicI64,
    by_writer: AtomicI64,
}

/// The most the writer waits for readers when the log has reached the cap; if they still hold
/// old frames, the next batch tries again.
const CAP_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The writer's side: decides after each batch whether to wake the thread or copy itself.
pub(crate) struct Checkpoints {
    shared: Arc<Shared>,
    wake: SyncSender<()>,
    /// Frames in the log when the writer last looked.
    seen: i64,
    every: i64,
    tail: i64,
    cap: i64,
}

/// Hooks the writer's connection and starts the checkpoint thread on a connection of its own.
/// The thread stops when the returned value is dropped.
pub(crate) fn start(
    path: &Path,
    durability: Durability,
    writer: &mut Connection,
    limits: Limits,
) -> Result<Checkpoints, Box<dyn std::error::Error>> {
    let page: i64 = writer.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let frames = |bytes: i64| (bytes / page.max(512)).max(1);
    let shared = Arc::new(Shared::default());
    let hooked = shared.clone();
    writer.wal_hook(Some(move |_: &mut Wal, pages: std::ffi::c_int| {
        hooked.frames.store(i64::from(pages), Ordering::Relaxed);
        Ok(())
    }))?;
    let conn = Connection::open(path)?;
    schema::configure(&conn, durability)?;
    let (wake, woken) = std::sync::mpsc::sync_channel(1);
    let thread_shared = shared.clone();
    std::thread::Builder::new()
        .name("confab-sqlite-checkpoint".into())
        .spawn(move || checkpoint_loop(&conn, &woken, &thread_shared))?;
    Ok(Checkpoints {
        shared,
        wake,
        seen: 0,
        every: frames(limits.every),
        tail: frames(limits.tail),
        cap: frames(limits.cap),
    })
}

fn checkpoint_loop(conn: &Connection, woken: &Receiver<()>, shared: &Shared) {
    while woken.recv().is_ok() {
        let generation = shared.generation.load(Ordering::Acquire);
        match conn.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE) {
            Ok((_, copied)) => {
                if let Ok(mut last) = shared.copied.lock() {
                    let before = if last.0 == generation { last.1 } else { 0 };
                    shared
                        .by_thread
                        .fetch_add((i64::from(copied) - before).max(0), Ordering::Relaxed);
                    *last = (generation, i64::from(copied));
                }
            }
            // The writer is copying the tail or the whole log: nothing to do.
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
            Err(e) => tracing::warn!(error = %e, "a background checkpoint failed"),
        }
    }
}

impl Checkpoints {
    /// Called by the writer after each batch, once its callers have their answers. Never waits
    /// for the thread; waits for readers only when the log has reached the cap.
    pub(crate) fn after_batch(&mut self, conn: &Connection) {
        let frames = self.shared.frames.load(Ordering::Relaxed);
        if frames < self.seen {
            self.shared.generation.fetch_add(1, Ordering::AcqRel);
        }
        self.seen = frames;
        if frames < self.every {
            return;
        }
        let generation = self.shared.generation.load(Ordering::Acquire);
        let copied = match self.shared.copied.lock() {
            Ok(last) if last.0 == generation => last.1,
            _ => 0,
        };
        let mode = if frames >= self.cap {
            CheckpointMode::RESTART
        } else if frames - copied <= self.tail {
            CheckpointMode::PASSIVE
        } else {
            let _ = self.wake.try_send(());
            return;
        };
        let restart = matches!(mode, CheckpointMode::RESTART);
        if restart {
            let _ = conn.busy_timeout(CAP_WAIT);
        }
        let result = conn.wal_checkpoint_v2(Some(MAIN_DB), mode);
        if restart {
            let _ = conn.busy_timeout(schema::BUSY_TIMEOUT);
        }
        match result {
            Ok((_, done)) => {
                self.shared
                    .by_writer
                    .fetch_add((i64::from(done) - copied).max(0), Ordering::Relaxed);
                if let Ok(mut last) = self.shared.copied.lock() {
                    *last = (generation, i64::from(done));
                }
            }
            // The thread holds the checkpoint lock: it is copying, try again after the next batch.
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
            Err(e) => tracing::warn!(error = %e, "a checkpoint by the writer failed"),
        }
    }

    /// Frames copied so far by the thread and by the writer.
    #[cfg(test)]
    fn copied_by(&self) -> (i64, i64) {
        (
            self.shared.by_thread.load(Ordering::Relaxed),
            self.shared.by_writer.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    /// Log frames of 1 KiB pages: every 64, a tail of 16, a cap of 512.
    const SMALL: Limits = Limits {
        every: 64 * 1024,
        tail: 16 * 1024,
        cap: 512 * 1024,
    };
    /// Bytes of one frame of the log: its page and a 24-byte header.
    const FRAME: u64 = 1024 + 24;

    fn writer(path: &Path) -> (Connection, Checkpoints) {
        let mut conn = Connection::open(path).expect("open");
        schema::new_page_size(&conn).expect("page size");
        schema::configure(&conn, Durability::Full).expect("configure");
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, x BLOB NOT NULL)")
            .expect("table");
        let checkpoints = start(path, Durability::Full, &mut conn, SMALL).expect("start");
        (conn, checkpoints)
    }

    /// One commit of about four pages, then the writer's turn after a batch.
    fn commit(conn: &Connection, checkpoints: &mut Checkpoints, i: i64) {
        conn.execute(
            "INSERT INTO t (id, x) VALUES (?1, zeroblob(3000))",
            params![i],
        )
        .expect("insert");
        checkpoints.after_batch(conn);
    }

    fn log_len(path: &Path) -> u64 {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn under_steady_commits_the_thread_copies_the_log_and_it_starts_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let (conn, mut checkpoints) = writer(&path);
        let commits = 3000;
        for i in 0..commits {
            commit(&conn, &mut checkpoints, i);
        }
        // Some 12,000 frames were written; the log file only ever grew to the cap and a bit
        // (the file keeps its largest size: SQLite writes a log that starts over from its top).
        let cap = (SMALL.cap / 1024) as u64;
        assert!(
            log_len(&path) <= 2 * cap * FRAME,
            "log file of {} bytes, cap {} frames",
            log_len(&path),
            cap
        );
        let (by_thread, by_writer) = checkpoints.copied_by();
        assert!(
            by_thread > 0,
            "the thread copied nothing (writer: {by_writer})"
        );
        drop(checkpoints);
        drop(conn);
        let conn = Connection::open(&path).expect("open again");
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, commits);
    }

    #[test]
    fn a_reader_holding_old_frames_holds_the_log_only_until_it_lets_go() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let (conn, mut checkpoints) = writer(&path);
        commit(&conn, &mut checkpoints, 0);
        let reader = Connection::open(&path).expect("reader");
        reader.execute_batch("BEGIN").expect("begin");
        let seen: i64 = reader
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("read");
        assert_eq!(seen, 1);

        // Past the cap with the reader still on its snapshot: commits go on (the writer waits
        // for the reader a bounded time per batch), and the log cannot start over.
        let cap = SMALL.cap / 1024;
        let mut i = 1;
        while checkpoints.shared.frames.load(Ordering::Relaxed) < cap + 8 {
            commit(&conn, &mut checkpoints, i);
            i += 1;
            assert!(i < 1000, "the log never reached the cap");
        }
        let pinned: i64 = reader
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("read");
        assert_eq!(pinned, 1, "the reader still sees its snapshot");
        reader.execute_batch("COMMIT").expect("end the read");

        // Let go: within a few commits the log starts over.
        for _ in 0..4 {
            commit(&conn, &mut checkpoints, i);
            i += 1;
        }
        let frames = checkpoints.shared.frames.load(Ordering::Relaxed);
        assert!(
            frames < SMALL.every / 1024,
            "the log is still {frames} frames long"
        );
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, i);
    }
}
