//! The physical limits of this disk, measured without Confab: one fsync, one SQLite commit, and
//! a raw SQLite group-commit insert loop. All blocking; run them off the async workers.

use anyhow::Context;
use rusqlite::{Connection, params};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::message_text;
use crate::stats::Samples;

/// Opens a fresh database the way the store does: WAL, `synchronous=FULL`.
fn open(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "cache_size", -32_000)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS items (
             id INTEGER PRIMARY KEY, room_id INTEGER NOT NULL, seq INTEGER NOT NULL,
             sender TEXT, text TEXT, created_at INTEGER NOT NULL)",
    )?;
    Ok(conn)
}

fn insert(conn: &Connection, seq: i64, sender: usize) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO items (id, room_id, seq, sender, text, created_at) VALUES (?1, 1, ?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        seq,
        format!("u{sender}"),
        message_text(sender, seq as u64),
        seq
    ])?;
    Ok(())
}

/// What one fsync costs here: 4 KiB written then `sync_data` (fdatasync), `reps` times.
pub struct FsyncCost {
    /// Overwriting the same 4 KiB (like a WAL being reused after a checkpoint).
    pub overwrite: Samples,
    /// Appending 4 KiB each time (the file grows, so its size is synced too).
    pub append: Samples,
    /// Overwrite then `sync_all` (fsync): what bundled SQLite calls, as it is built without
    /// `HAVE_FDATASYNC`.
    pub overwrite_fsync: Samples,
}

pub fn fsync_cost(dir: &Path, reps: usize) -> anyhow::Result<FsyncCost> {
    let block = vec![0x5au8; 4096];
    let path = dir.join("fsync.probe");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(&block)?;
    f.sync_all()?;
    let mut overwrite = Vec::with_capacity(reps);
    let mut overwrite_fsync = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&block)?;
        f.sync_data()?;
        overwrite.push(t.elapsed());
        let t = Instant::now();
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&block)?;
        f.sync_all()?;
        overwrite_fsync.push(t.elapsed());
    }
    let mut append = Vec::with_capacity(reps);
    f.seek(SeekFrom::End(0))?;
    for _ in 0..reps {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        append.push(t.elapsed());
    }
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(FsyncCost {
        overwrite: Samples::new(overwrite),
        append: Samples::new(append),
        overwrite_fsync: Samples::new(overwrite_fsync),
    })
}

/// One row per transaction, autocommit, WAL + FULL: the floor of a durable single write.
pub fn single_insert_commit(dir: &Path, reps: usize) -> anyhow::Result<Samples> {
    let conn = open(&dir.join("raw-single.db"))?;
    let mut v = Vec::with_capacity(reps);
    for i in 0..(reps + reps / 10) {
        let t = Instant::now();
        insert(&conn, i as i64 + 1, 0)?;
        if i >= reps / 10 {
            v.push(t.elapsed());
        }
    }
    Ok(Samples::new(v))
}

/// The result of a raw insert loop.
pub struct RawRate {
    pub rows: u64,
    pub commits: u64,
    pub elapsed: Duration,
}

impl RawRate {
    pub fn per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64()
    }
    pub fn mean_batch(&self) -> f64 {
        self.rows as f64 / self.commits.max(1) as f64
    }
}

/// `producers` threads each insert one row at a time and wait for it to be durable; one writer
/// thread drains whatever is queued (at most `max_batch`), inserts it in one transaction and
/// commits once: the server's write path with everything but SQLite taken away.
pub fn group_commit(
    dir: &Path,
    producers: usize,
    max_batch: usize,
    run_for: Duration,
) -> anyhow::Result<RawRate> {
    let conn = open(&dir.join("raw-group.db"))?;
    type Job = (usize, mpsc::SyncSender<()>);
    let (tx, rx) = mpsc::sync_channel::<Job>(4096);
    let start = Instant::now();
    let end = start + run_for;
    let mut handles = Vec::with_capacity(producers);
    for p in 0..producers {
        let tx = tx.clone();
        handles.push(std::thread::spawn(move || {
            let (ack_tx, ack_rx) = mpsc::sync_channel::<()>(1);
            while Instant::now() < end {
                if tx.send((p, ack_tx.clone())).is_err() || ack_rx.recv().is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut rows = 0u64;
    let mut commits = 0u64;
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for (p, _) in &batch {
            rows += 1;
            insert(&conn, rows as i64, *p)?;
        }
        conn.execute_batch("COMMIT")?;
        commits += 1;
        for (_, ack) in batch.drain(..) {
            let _ = ack.send(());
        }
    }
    let elapsed = start.elapsed();
    for h in handles {
        let _ = h.join();
    }
    Ok(RawRate {
        rows,
        commits,
        elapsed,
    })
}

/// One thread, `batch` inserts per transaction, back to back: no waiting on anybody.
pub fn batched(dir: &Path, batch: usize, run_for: Duration) -> anyhow::Result<RawRate> {
    let conn = open(&dir.join("raw-batched.db"))?;
    let start = Instant::now();
    let mut rows = 0u64;
    let mut commits = 0u64;
    while start.elapsed() < run_for {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for i in 0..batch {
            rows += 1;
            insert(&conn, rows as i64, i)?;
        }
        conn.execute_batch("COMMIT")?;
        commits += 1;
    }
    Ok(RawRate {
        rows,
        commits,
        elapsed: start.elapsed(),
    })
}
