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
//! 5. then the rules run and write projections row by row (user rows are locked as they are
//!    written: the one place where two nodes may meet in different orders; PostgreSQL then
//!    reports a deadlock, a conflict, and the commands are retried one by one);
//! 6. last, the app rows, in app id order: one `UPDATE apps … RETURNING` per app applies the
//!    counter deltas and takes the batch's log offsets; the events are inserted with them and
//!    the transaction commits at once. The app row is thus held only across the commit, and
//!    since PostgreSQL makes a commit visible before releasing its locks, offsets become
//!    visible in order: a reader of `offset > X` never later finds a smaller one.
//!
//! No savepoints: the rules validate before they append, so a refused command has written
//! nothing. A command that fails any other way (or after writing) aborts the transaction; the
//! batch's commands are then run again one per transaction, so only the bad one fails.
//! Nothing is acknowledged or published before COMMIT.

use crate::conn::Conn;
use crate::projection::{self, Deltas};
use crate::rows::{self, MEMBER_COLS, ROOM_COLS};
use crate::schema::{self, LOCK_APPS, LOCK_CLASS, LOCK_REBUILD, ROOMS_CLASS};
use crate::tx::{Batch, PgTx};
use confab_core::command::{Command, Outcome};
use confab_core::command::{CreateApp, CreateGroup};
use confab_core::error::StoreError;
use confab_core::event::{EVENT_VERSION, Event, EventBody};
use confab_core::ids::{AppId, Offset, RoomNumber, Timestamp, UserId};
use confab_core::store::{Progress, RoomState, StoreResult};
use std::collections::{BTreeSet, HashMap};
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
    config: postgres::Config,
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
    pub fn new(config: postgres::Config, publish: broadcast::Sender<Arc<Event>>) -> Writer {
        Writer {
            config,
            conn: None,
            publish,
        }
    }

    /// The connection, made again if it was lost.
    pub fn conn(&mut self) -> StoreResult<&mut Conn> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let client = self
                .config
                .connect(postgres::NoTls)
                .map_err(|e| StoreError::unavailable(format!("connecting: {e}")))?;
            self.conn = Some(Conn::new(client));
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
        if r.is_err() && self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
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
    c.batch("BEGIN")?;
    let r = attempt_in(c, cmds);
    if r.is_err() {
        let _ = c.batch("ROLLBACK");
    }
    r
}

fn attempt_in(
    c: &mut Conn,
    cmds: &[Command],
) -> StoreResult<(Vec<StoreResult<Outcome>>, Vec<Event>)> {
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
    Ok((results, events))
}

/// The room a command names, with the users whose memberships its rules read there.
fn room_of(cmd: &Command) -> Option<(AppId, RoomNumber, Vec<&UserId>)> {
    use Command::*;
    Some(match cmd {
        UpdateRoom(confab_core::UpdateRoom {
            app, actor, room, ..
        })
        | Edit(confab_core::EditMessage {
            app, actor, room, ..
        })
        | Delete(confab_core::DeleteMessage {
            app, actor, room, ..
        })
        | MarkRead(confab_core::MarkRead {
            app, actor, room, ..
        })
        | DeleteRoom { app, actor, room }
        | Join { app, actor, room }
        | Leave { app, actor, room } => (*app, *room, vec![actor]),
        Invite(confab_core::Invite {
            app,
            actor,
            room,
            target,
        })
        | Decide(confab_core::Decide {
            app,
            actor,
            room,
            target,
            ..
        })
        | SetRole(confab_core::SetRole {
            app,
            actor,
            room,
            target,
            ..
        }) => (*app, *room, vec![actor, target]),
        Send(confab_core::SendMessage {
            app, actor, room, ..
        }) => (*app, *room, actor.iter().collect()),
        CreateApp(_)
        | RenameApp { .. }
        | UpsertUser(_)
        | UpdateProfile(_)
        | RecordLogin { .. }
        | RecordSeen { .. }
        | CreateDirect { .. }
        | CreateGroup(_) => return None,
    })
}

/// Steps 1 to 4 of the lock order (module docs), with what they let the batch read at once:
/// the locked rooms and the memberships its commands will look at.
fn lock(c: &mut Conn, cmds: &[Command], batch: &mut Batch) -> StoreResult<()> {
    c.exec(
        "SELECT pg_advisory_xact_lock_shared($1, $2)",
        &[&LOCK_CLASS, &LOCK_REBUILD],
    )?;
    if cmds
        .iter()
        .any(|c| matches!(c, Command::CreateApp(CreateApp { .. })))
    {
        c.exec(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&LOCK_CLASS, &LOCK_APPS],
        )?;
    }
    let mut rooms = BTreeSet::new();
    let mut wanted = BTreeSet::new();
    for cmd in cmds {
        if let Some((app, room, users)) = room_of(cmd) {
            rooms.insert((app.0, room.0));
            for u in users {
                wanted.insert((app.0, room.0, u.as_str()));
            }
        }
    }
    if !rooms.is_empty() {
        let (apps, numbers): (Vec<i64>, Vec<i64>) = rooms.iter().copied().unzip();
        let found = c.query(
            &format!(
                "SELECT app_id, {ROOM_COLS} FROM rooms
                 WHERE (app_id, number) IN (SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[]))
                 ORDER BY app_id, number FOR UPDATE"
            ),
            &[&apps, &numbers],
        )?;
        for r in &found {
            let app = AppId(rows::get(r, 0)?);
            let row = rows::room_at(r, 1)?;
            batch.rooms.insert(
                (app, row.room.number),
                RoomState {
                    room: row.room,
                    direct: row.direct,
                },
            );
        }
        let wanted: Vec<_> = wanted
            .into_iter()
            .filter(|(a, r, _)| batch.rooms.contains_key(&(AppId(*a), RoomNumber(*r))))
            .collect();
        if !wanted.is_empty() {
            let mut apps = Vec::with_capacity(wanted.len());
            let mut numbers = Vec::with_capacity(wanted.len());
            let mut users = Vec::with_capacity(wanted.len());
            for (a, r, u) in &wanted {
                apps.push(*a);
                numbers.push(*r);
                users.push(*u);
            }
            let found = c.query(
                &format!(
                    "SELECT m.app_id, m.room_no, {} FROM members m
                     JOIN UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[]) AS k(a, r, u)
                       ON m.app_id = k.a AND m.room_no = k.r AND m.user_id = k.u",
                    rows::prefixed(MEMBER_COLS, "m")
                ),
                &[&apps, &numbers, &users],
            )?;
            let mut members = HashMap::new();
            for r in &found {
                let key = (rows::get::<i64>(r, 0)?, rows::get::<i64>(r, 1)?);
                let m = rows::member_at(r, 2)?;
                members.insert((key.0, key.1, m.user.0.clone()), m);
            }
            for (a, r, u) in wanted {
                let m = members.remove(&(a, r, u.to_owned()));
                batch
                    .members
                    .insert((AppId(a), RoomNumber(r), UserId(u.to_owned())), m);
            }
        }
    }
    let creating: BTreeSet<AppId> =
        cmds.iter()
            .filter_map(|c| match c {
                Command::CreateDirect { app, .. }
                | Command::CreateGroup(CreateGroup { app, .. }) => Some(*app),
                _ => None,
            })
            .collect();
    for app in creating {
        c.exec(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&ROOMS_CLASS, &(app.0 as i32)],
        )?;
        batch.creating.insert(app);
    }
    Ok(())
}

/// Step 6: take the apps' offsets (app id order), insert the events with them, COMMIT.
fn finish(c: &mut Conn, mut batch: Batch) -> StoreResult<Vec<Event>> {
    let mut next: HashMap<AppId, i64> = HashMap::new();
    for (app, d) in &batch.deltas {
        if d.events > 0 {
            next.insert(*app, projection::settle_app(c, *app, *d)?);
        }
    }
    for ev in &mut batch.events {
        let n = next
            .get_mut(&ev.app)
            .ok_or_else(|| StoreError::internal("an event of an app without offsets"))?;
        ev.offset = Offset(*n);
        *n += 1;
    }
    insert_events(c, &batch.events)?;
    c.batch("COMMIT")?;
    Ok(batch.events)
}

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
fn import(c: &mut Conn, events: &[Event]) -> StoreResult<()> {
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
fn rebuild(c: &mut Conn, progress: &Progress) -> StoreResult<u64> {
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
