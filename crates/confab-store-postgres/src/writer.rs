//! The node's one writer: a thread that owns a blocking connection and commits many commands
//! per transaction (group commit), in READ COMMITTED, correct with other nodes writing the same
//! database at the same time.
//!
//! # Lock order
//! Every write transaction takes its locks in this order, so two nodes never wait on each
//! other in a cycle:
//! 1. the rebuild lock, shared (`rebuild` takes it exclusively, so a replay never interleaves
//!    with writes of any node);
//! 2. if the batch creates apps: the app-creation advisory lock (new app ids and tokens);
//! 3. the rows of every room the batch's commands name, `SELECT … FOR UPDATE` in
//!    (app id, room number) order. A room's counters (`last_seq`, `last_pos`) and its
//!    memberships are read only after that, so seqs and positions are gapless and decided
//!    on the latest committed state;
//! 4. for each app in which the batch creates rooms, in app id order: that app's
//!    room-creation advisory lock. Room numbers (the app's highest + 1), aliases and direct
//!    pairs are checked and taken only under it, so two nodes can never create the same
//!    number, alias or pair (the unique indexes stay as a last line: a violation is a
//!    conflict, retried);
//! 5. then the rules run. Sends, edits, deletions, read markers, membership changes, room
//!    creations and settings, logins and sightings, meetups, answers, polls, votes and
//!    closings are projected in memory (`pending`) and written together with set-based
//!    statements (`flush`);
//!    other events (room deletions, apps, user upserts) are projected row by row as they
//!    come, after the buffered writes before them are made (user rows are locked as they
//!    are written: the one place where two nodes may meet in different orders; PostgreSQL
//!    then reports a deadlock, a conflict, and the commands are retried one by one);
//! 6. last, the app rows, in app id order: one `UPDATE apps … RETURNING` per app applies the
//!    counter deltas and takes the batch's log offsets; the events are inserted with them and
//!    the transaction commits at once. A batch of one app does this in one statement
//!    (`stages::finish`). The app row is thus held only across the commit, and
//!    since PostgreSQL makes a commit visible before releasing its locks, offsets become
//!    visible in order: a reader of `offset > X` never later finds a smaller one.
//!
//! # Round trips
//! The room locks are what two nodes writing one room queue on, so a batch holds them for as
//! few round trips as it can. Statements that do not depend on each other's answers go out
//! together (`Conn::pipeline`; the server still runs them one after the other, in order):
//! BEGIN and steps 1 to 4 with the reads of memberships, client-id items, the items edited,
//! deleted or replied to, and the users seen or named; then, after the rules, the buffered
//! writes, step 6 and COMMIT. A batch of sends, edits, deletions, read markers, membership
//! changes, logins and sightings thus costs two round trips whatever its size (an owner
//! leaving adds two: the buffered rows are written out to choose the next owner, whose row is
//! then read); creating a room adds a read of its alias or pair, and of the app's highest
//! room number for the batch's first new room. Meetup and poll commands add the reads of
//! rows the transaction does not know yet (each meetup, poll, answer and ballot is read once,
//! then known; a new poll reads the room's joined members and its meetup's answers, a
//! cancellation the meetup's open polls), but write nothing out. A room deletion writes out
//! what is buffered before it (one round trip) and is projected row by row (one more); other
//! commands add theirs while the rules run (and one more to write out what is buffered
//! before them). Each batch's count is logged (`debug`).
//!
//! No savepoints: the rules validate before they append, so a refused command has written
//! nothing. A command that fails any other way (or after writing) aborts the transaction; the
//! batch's commands are then run again one per transaction, so only the bad one fails.
//! Nothing is acknowledged or published before COMMIT.

use crate::conn::Conn;
use crate::replay::{import, rebuild};
use crate::stages::{finish, lock};
use crate::tx::{Batch, PgTx};
use confab_core::command::{Command, Outcome};
use confab_core::error::StoreError;
use confab_core::event::Event;
use confab_core::ids::Timestamp;
use confab_core::store::{Progress, StoreResult};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Most commands committed in one transaction.
pub const MAX_BATCH: usize = 256;
/// How often a command that lost a race is tried again on its own.
const CONFLICT_RETRIES: usize = 4;

pub type Reply<T> = oneshot::Sender<StoreResult<T>>;

pub enum Job {
    Command(Command, Reply<Outcome>),
    Rebuild(Progress, Reply<u64>),
    /// The readiness probe: answered by the writer itself, so a stopped or stuck writer (or
    /// a database it cannot reach) shows.
    Ping(Reply<()>),
    /// Events of another store's log (see `Store::import`).
    Import(Vec<Event>, Reply<()>),
}

pub struct Writer {
    config: tokio_postgres::Config,
    conn: Option<Conn>,
    publish: broadcast::Sender<Arc<Event>>,
}

/// A copy of a fault for each caller of a failed batch.
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Domain(d) => StoreError::Domain(d.clone()),
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Internal(m) => StoreError::Internal(m.clone()),
    }
}

impl Writer {
    pub fn new(config: tokio_postgres::Config, publish: broadcast::Sender<Arc<Event>>) -> Writer {
        Writer {
            config,
            conn: None,
            publish,
        }
    }

    /// The connection, made again if it was lost.
    pub fn conn(&mut self) -> StoreResult<&mut Conn> {
        if self.conn.as_ref().is_some_and(Conn::is_closed) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(Conn::connect(&self.config)?);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::internal("no connection"))
    }

    /// Runs `f` on the connection; a connection that broke meanwhile is dropped so the next
    /// job connects again.
    fn with_conn<T>(&mut self, f: impl FnOnce(&mut Conn) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.conn()?;
        let r = f(conn);
        if r.is_err() && self.conn.as_ref().is_some_and(Conn::is_closed) {
            self.conn = None;
        }
        r
    }

    pub fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.blocking_recv() {
            jobs.push(first);
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            let batch = std::mem::take(&mut jobs);
            // A panic on a batch (a bug) must not take the node's only writer with it: its
            // callers get an error (their reply channels are dropped), the connection with its
            // open transaction is dropped (PostgreSQL rolls it back), and the writer goes on.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(batch)));
            if run.is_err() {
                tracing::error!("the writer failed on a batch; nothing in it was committed");
                self.conn = None;
            }
        }
    }

    fn handle(&mut self, jobs: Vec<Job>) {
        let mut commands = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job {
                Job::Command(cmd, reply) => commands.push((cmd, reply)),
                Job::Rebuild(progress, reply) => {
                    let r = self.with_conn(|c| rebuild(c, &progress));
                    let _ = reply.send(r);
                }
                Job::Ping(reply) => {
                    let r = self.with_conn(|c| c.batch("SELECT 1"));
                    let _ = reply.send(r);
                }
                Job::Import(events, reply) => {
                    let r = self.with_conn(|c| import(c, &events));
                    let _ = reply.send(r);
                }
            }
        }
        if !commands.is_empty() {
            self.commit(commands);
        }
    }

    fn commit(&mut self, jobs: Vec<(Command, Reply<Outcome>)>) {
        let cmds: Vec<Command> = jobs.iter().map(|(c, _)| c.clone()).collect();
        let failed = match self.with_conn(|c| attempt(c, &cmds)) {
            Ok((results, events)) => {
                self.done(events, jobs.into_iter().map(|(_, r)| r).zip(results));
                return;
            }
            Err(e) => e,
        };
        if matches!(failed, StoreError::Unavailable(_)) || jobs.len() == 1 && !failed.is_transient()
        {
            // The database is gone (every command would fail alike), or the one command failed
            // for good.
            if !matches!(failed, StoreError::Domain(_)) {
                tracing::warn!(error = %failed, commands = jobs.len(), "a write batch failed");
            }
            for (_, reply) in jobs {
                let _ = reply.send(Err(copy(&failed)));
            }
            return;
        }
        tracing::warn!(error = %failed, commands = jobs.len(),
            "a write batch failed; its commands run again one by one");
        for (cmd, reply) in jobs {
            let mut tries = 0;
            let r = loop {
                tries += 1;
                match self.with_conn(|c| attempt(c, std::slice::from_ref(&cmd))) {
                    Ok((mut results, events)) => break Ok((results.pop(), events)),
                    Err(e) if matches!(e, StoreError::Conflict(_)) && tries < CONFLICT_RETRIES => {}
                    Err(e) => break Err(e),
                }
            };
            match r {
                Ok((Some(result), events)) => self.done(events, std::iter::once((reply, result))),
                Ok((None, _)) => {
                    let _ = reply.send(Err(StoreError::internal("a command had no result")));
                }
                Err(e) => {
                    if !matches!(e, StoreError::Domain(_)) {
                        tracing::error!(error = %e, "a command failed in the store");
                    }
                    let _ = reply.send(Err(e));
                }
            }
        }
    }

    /// After COMMIT: publish the events, then answer the callers.
    fn done(
        &self,
        events: Vec<Event>,
        answers: impl Iterator<Item = (Reply<Outcome>, StoreResult<Outcome>)>,
    ) {
        for ev in events {
            let _ = self.publish.send(Arc::new(ev));
        }
        for (reply, result) in answers {
            let _ = reply.send(result);
        }
    }
}

/// Decides and commits `cmds` in one transaction. On error the transaction is rolled back
/// and nothing of it stays.
fn attempt(c: &mut Conn, cmds: &[Command]) -> StoreResult<(Vec<StoreResult<Outcome>>, Vec<Event>)> {
    let r = attempt_in(c, cmds);
    if r.is_err() {
        // Also when BEGIN or COMMIT was what failed: outside a transaction this only warns.
        let _ = c.batch("ROLLBACK");
    }
    r
}

fn attempt_in(
    c: &mut Conn,
    cmds: &[Command],
) -> StoreResult<(Vec<StoreResult<Outcome>>, Vec<Event>)> {
    let trips = c.round_trips();
    let mut batch = Batch::default();
    lock(c, cmds, &mut batch)?;
    let now = Timestamp::now();
    let mut results = Vec::with_capacity(cmds.len());
    for cmd in cmds {
        let before = batch.events.len();
        let mut tx = PgTx {
            c: &mut *c,
            now,
            batch: &mut batch,
        };
        match confab_core::rules::handle(&mut tx, cmd.clone()) {
            Ok(outcome) => results.push(Ok(outcome)),
            // A refusal before any write: nothing to undo, the batch goes on.
            Err(StoreError::Domain(e)) if batch.events.len() == before => {
                results.push(Err(StoreError::Domain(e)));
            }
            Err(e) => return Err(e),
        }
    }
    let events = finish(c, batch)?;
    let round_trips = c.round_trips() - trips;
    tracing::debug!(
        commands = cmds.len(),
        round_trips,
        "a write batch committed"
    );
    Ok((results, events))
}
