//! The writer thread: the only write connection. It takes queued jobs in batches and commits
//! each batch of commands in one transaction (group commit), each command in a savepoint so a
//! refused one leaves no trace; it also runs rebuilds, imports and readiness probes, so nothing
//! else ever writes.

use crate::fault::{self, sql as be};
use crate::{cache, checkpoint, index, projection, schema, tx};
use confab_core::command::{Command, Outcome};
use confab_core::error::StoreError;
use confab_core::event::{Event, EventBody};
use confab_core::ids::{AppId, Offset, Timestamp};
use confab_core::store::{Progress, StoreResult};
use rusqlite::{Connection, params};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Most commands committed in one transaction.
const MAX_BATCH: usize = 512;
/// Bytes of padding the readiness probe writes after a failed commit (see `Writer::ping`).
const PROBE_BYTES: i64 = 64 * 1024;

pub(crate) enum Job {
    Command(Command, oneshot::Sender<StoreResult<Outcome>>),
    Rebuild(Progress, oneshot::Sender<StoreResult<u64>>),
    /// The readiness probe: answered by the writer itself, so a stopped or stuck writer shows.
    Ping(oneshot::Sender<StoreResult<()>>),
    /// Events of another store's log (see `Store::import`).
    Import(Vec<Event>, oneshot::Sender<StoreResult<()>>),
    /// A write of operational state (identity providers and links): not an event, run in a
    /// transaction of its own; the closure answers its caller itself.
    Operational(Box<dyn FnOnce(&Connection) + Send>),
}

pub(crate) fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    publish: broadcast::Sender<Arc<Event>>,
    index: Arc<index::Shared>,
    checkpoints: checkpoint::Checkpoints,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut writer = Writer {
        conn,
        cache: cache::WriterCache::default(),
        publish,
        index,
        checkpoints,
        failing: false,
    };
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A panic while handling a batch (a bug) must not take the only writer with it: the
        // batch's callers get an error (their reply channels are dropped), the open
        // transaction is rolled back, and the writer goes on with the next batch.
        let jobs = std::mem::take(&mut batch);
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.run(jobs)));
        if run.is_err() {
            tracing::error!(
                "the writer failed on a batch; it was rolled back and nothing in it was acknowledged"
            );
            let _ = writer.conn.execute_batch("ROLLBACK");
            writer.cache.forget();
            writer.failing = true;
        }
        // After the batch's callers have their answers: what it costs delays the next batch.
        writer.checkpoints.after_batch(&writer.conn);
    }
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    cache: cache::WriterCache,
    publish: broadcast::Sender<Arc<Event>>,
    index: Arc<index::Shared>,
    checkpoints: checkpoint::Checkpoints,
    /// The last commit failed (a full disk, say): readiness probes then try a write.
    failing: bool,
}

impl Writer {
    fn run(&mut self, jobs: Vec<Job>) {
        let mut commands = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job {
                Job::Command(cmd, reply) => commands.push((cmd, reply)),
                Job::Rebuild(progress, reply) => {
                    // The replay renumbers items: the index starts over, and the indexer
                    // waits until the replay is committed.
                    let index = self.index.clone();
                    let result = match index.lock.lock() {
                        Ok(_guard) => index::reset(&index)
                            .map_err(be)
                            .and_then(|()| rebuild(&self.conn, &progress)),
                        Err(e) => Err(StoreError::internal(e)),
                    };
                    self.cache.forget();
                    let _ = reply.send(result);
                    self.index.wake();
                }
                Job::Operational(write) => write(&self.conn),
                Job::Ping(reply) => {
                    let _ = reply.send(self.ping());
                }
                Job::Import(events, reply) => {
                    let result = import(&self.conn, &events);
                    self.cache.forget();
                    self.failing = result.is_err();
                    let _ = reply.send(result);
                    self.index.wake();
                }
            }
        }
        if !commands.is_empty() {
            self.failing = !commit_batch(&self.conn, &mut self.cache, commands, &self.publish);
            self.index.wake();
        }
    }

    /// The database answers the writer; after a failed commit, a small write must work too.
    fn ping(&mut self) -> StoreResult<()> {
        if !self.failing {
            return self
                .conn
                .query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))
                .map_err(be);
        }
        let probe = self
            .conn
            .execute_batch("BEGIN IMMEDIATE")
            .and_then(|()| {
                // The probe must need space the disk really has. A commit that failed on a full
                // disk can leave a little room at the end of the log (a block partly written); a
                // probe of one small page would fit there and report ready while every send
                // still fails. The padding takes well over a block of new log.
                self.conn.execute(
                    "INSERT OR REPLACE INTO health (id, probe, pad) VALUES (1, ?1, zeroblob(?2))",
                    params![Timestamp::now().0, PROBE_BYTES],
                )
            })
            .and_then(|_| self.conn.execute_batch("COMMIT"));
        if let Err(e) = probe {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(be(e));
        }
        self.failing = false;
        Ok(())
    }
}

/// Runs each command in its own savepoint inside one transaction, commits once, then answers.
/// Returns whether the transaction committed.
fn commit_batch(
    conn: &Connection,
    cache: &mut cache::WriterCache,
    commands: Vec<(Command, oneshot::Sender<StoreResult<Outcome>>)>,
    publish: &broadcast::Sender<Arc<Event>>,
) -> bool {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        for (_, reply) in commands {
            let _ = reply.send(Err(fault::sql_ref(&e)));
        }
        return false;
    }
    let mut results = Vec::with_capacity(commands.len());
    let mut events = Vec::new();
    for (cmd, reply) in commands {
        let r = run_one(conn, cache, cmd);
        match r {
            Ok((outcome, appended)) => {
                events.extend(appended);
                results.push((reply, Ok(outcome)));
            }
            Err(e) => results.push((reply, Err(e))),
        }
    }
    // The app rows' offsets and counts owed by the batch, then the one durable commit.
    let committed = cache
        .flush(conn)
        .and_then(|()| conn.execute_batch("COMMIT"));
    if let Err(e) = committed {
        tracing::error!(error = %e, "commit failed");
        cache.forget();
        let _ = conn.execute_batch("ROLLBACK");
        for (reply, _) in results {
            let _ = reply.send(Err(fault::sql_ref(&e)));
        }
        return false;
    }
    for ev in events {
        let _ = publish.send(Arc::new(ev));
    }
    for (reply, r) in results {
        let _ = reply.send(r);
    }
    true
}

fn exec_cached(conn: &Connection, sql: &str) -> StoreResult<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(be)
}

fn run_one(
    conn: &Connection,
    cache: &mut cache::WriterCache,
    cmd: Command,
) -> StoreResult<(Outcome, Vec<Event>)> {
    exec_cached(conn, "SAVEPOINT cmd")?;
    let mut tx = tx::SqliteTx {
        conn,
        now: Timestamp::now(),
        appended: Vec::new(),
        cache,
    };
    let result = confab_core::rules::handle(&mut tx, cmd);
    let appended = std::mem::take(&mut tx.appended);
    let released = result.is_ok() && exec_cached(conn, "RELEASE cmd").is_ok();
    if released || appended.is_empty() {
        // Nothing this command read or wrote is rolled back (a refusal that wrote nothing).
        cache.command_done();
    } else {
        cache.command_undone();
    }
    match result {
        Ok(outcome) if released => Ok((outcome, appended)),
        Ok(_) => {
            exec_cached(conn, "ROLLBACK TO cmd")?;
            exec_cached(conn, "RELEASE cmd")?;
            Err(StoreError::internal("could not release the savepoint"))
        }
        Err(e) => {
            if !matches!(e, StoreError::Domain(_)) {
                tracing::error!(error = %e, "command failed in the store");
            }
            exec_cached(conn, "ROLLBACK TO cmd")?;
            exec_cached(conn, "RELEASE cmd")?;
            Err(e)
        }
    }
}

/// Inserts events of another store's log as they are and applies them, in one transaction.
fn import(conn: &Connection, events: &[Event]) -> StoreResult<()> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(be)?;
    let result = events.iter().try_for_each(|ev| {
        tx::insert_event(conn, ev).map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::internal(format!(
                    "the target already holds event {} of app {}",
                    ev.offset.0, ev.app.0
                ))
            }
            other => be(other),
        })?;
        projection::apply(conn, ev).map_err(be)
    });
    match result.and_then(|()| conn.execute_batch("COMMIT").map_err(be)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Empties every projection and replays the log in commit order, in one transaction.
fn rebuild(conn: &Connection, progress: &Progress) -> StoreResult<u64> {
    let total: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .map_err(be)?;
    let total = total as u64;
    conn.execute_batch("BEGIN IMMEDIATE").map_err(be)?;
    let result = (|| -> StoreResult<u64> {
        for table in schema::PROJECTIONS {
            conn.execute(&format!("DELETE FROM {table}"), [])
                .map_err(be)?;
        }
        let mut stmt = conn
            .prepare("SELECT app_id, \"offset\", at, v, body FROM events ORDER BY id")
            .map_err(be)?;
        let mut rows = stmt.query([]).map_err(be)?;
        let mut done = 0u64;
        while let Some(r) = rows.next().map_err(be)? {
            let v: i64 = r.get(3).map_err(be)?;
            let body: String = r.get(4).map_err(be)?;
            let ev = Event {
                app: AppId(r.get(0).map_err(be)?),
                offset: Offset(r.get(1).map_err(be)?),
                at: Timestamp(r.get(2).map_err(be)?),
                body: EventBody::decode(v, &body).map_err(StoreError::Internal)?,
            };
            projection::apply(conn, &ev).map_err(be)?;
            done += 1;
            if done.is_multiple_of(10_000) || done == total {
                progress(done, total);
            }
        }
        Ok(done)
    })();
    match result {
        Ok(n) => {
            conn.execute_batch("COMMIT").map_err(be)?;
            Ok(n)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
