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
use crate::pending::FLUSH_SQL;
use crate::projection::{self, Delta, Deltas};
use crate::rows::{self, ITEM_COLS, MEMBER_COLS, ROOM_COLS};
use crate::schema::{self, LOCK_APPS, LOCK_CLASS, LOCK_REBUILD, ROOMS_CLASS};
use crate::tx::{Batch, PgTx};
use confab_core::command::{Command, Outcome};
use confab_core::error::StoreError;
use confab_core::event::{EVENT_VERSION, Event, EventBody};
use confab_core::ids::{AppId, Offset, RoomNumber, Timestamp, UserId};
use confab_core::model::Item;
use confab_core::store::{Progress, RoomState, StoreResult};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::types::ToSql;

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
        UpdateRoom {
            app, actor, room, ..
        }
        | DeleteRoom { app, actor, room }
        | Join { app, actor, room }
        | Leave { app, actor, room }
        | Edit {
            app, actor, room, ..
        }
        | Delete {
            app, actor, room, ..
        }
        | MarkRead {
            app, actor, room, ..
        } => (*app, *room, vec![actor]),
        Invite {
            app,
            actor,
            room,
            target,
        }
        | Decide {
            app,
            actor,
            room,
            target,
            ..
        }
        | SetRole {
            app,
            actor,
            room,
            target,
            ..
        } => (*app, *room, vec![actor, target]),
        Send {
            app, actor, room, ..
        } => (*app, *room, actor.iter().collect()),
        CreateApp { .. }
        | RenameApp { .. }
        | UpsertUser { .. }
        | UpdateProfile { .. }
        | RecordLogin { .. }
        | RecordSeen { .. }
        | CreateDirect { .. }
        | CreateGroup { .. } => return None,
    })
}

/// What a batch reads when it starts: the rooms its commands name (locked), the memberships
/// its rules will look at there, the items its sends' client ids name.
#[derive(Default)]
struct Wanted<'a> {
    rooms: BTreeSet<(i64, i64)>,
    members: BTreeSet<(i64, i64, &'a str)>,
    clients: BTreeSet<(i64, i64, Option<&'a str>, &'a str)>,
}

impl<'a> Wanted<'a> {
    fn of(cmds: &'a [Command]) -> Wanted<'a> {
        let mut w = Wanted::default();
        for cmd in cmds {
            if let Some((app, room, users)) = room_of(cmd) {
                w.rooms.insert((app.0, room.0));
                for u in users {
                    w.members.insert((app.0, room.0, u.as_str()));
                }
            }
            if let Command::Send {
                app,
                actor,
                room,
                client_id: Some(cid),
                ..
            } = cmd
            {
                w.clients
                    .insert((app.0, room.0, actor.as_ref().map(UserId::as_str), cid));
            }
        }
        w
    }
}

/// Steps 1 to 4 of the lock order (module docs), with what they let the batch read at once,
/// all in one round trip with BEGIN: the server runs them in order, so the reads (each a
/// snapshot of its own, READ COMMITTED) come after the room locks are held and see the
/// latest committed state of those rooms.
fn lock(c: &mut Conn, cmds: &[Command], batch: &mut Batch) -> StoreResult<()> {
    use crate::conn::Step::{Batch as Plain, Query};
    let w = Wanted::of(cmds);
    let (r_app, r_no): (Vec<i64>, Vec<i64>) = w.rooms.iter().copied().unzip();
    let (mut m_app, mut m_no, mut m_user) = (vec![], vec![], vec![]);
    for (a, r, u) in &w.members {
        m_app.push(*a);
        m_no.push(*r);
        m_user.push(*u);
    }
    let clients: Vec<_> = w.clients.iter().copied().collect();
    let (mut c_app, mut c_no, mut c_sender, mut c_id) = (vec![], vec![], vec![], vec![]);
    for (a, r, s, id) in &clients {
        c_app.push(*a);
        c_no.push(*r);
        c_sender.push(*s);
        c_id.push(*id);
    }
    let creating: Vec<i32> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::CreateDirect { app, .. } | Command::CreateGroup { app, .. } => {
                Some(app.0 as i32)
            }
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let members_sql = format!(
        "SELECT m.app_id, m.room_no, {} FROM members m
         JOIN UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[]) AS k(a, r, u)
           ON m.app_id = k.a AND m.room_no = k.r AND m.user_id = k.u",
        rows::prefixed(MEMBER_COLS, "m")
    );
    let clients_sql = format!(
        "SELECT k.n, {} FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[])
             WITH ORDINALITY AS k(a, r, s, c, n)
         JOIN items it ON it.app_id = k.a AND it.room_no = k.r AND it.client_id = k.c
           AND it.sender IS NOT DISTINCT FROM k.s",
        rows::prefixed(ITEM_COLS, "it")
    );
    let rooms_sql = format!(
        "SELECT app_id, {ROOM_COLS} FROM rooms
         WHERE (app_id, number) IN (SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[]))
         ORDER BY app_id, number FOR UPDATE"
    );
    let room_params: [&(dyn ToSql + Sync); 2] = [&r_app, &r_no];
    let member_params: [&(dyn ToSql + Sync); 3] = [&m_app, &m_no, &m_user];
    let client_params: [&(dyn ToSql + Sync); 4] = [&c_app, &c_no, &c_sender, &c_id];
    let rebuild_lock: [&(dyn ToSql + Sync); 2] = [&LOCK_CLASS, &LOCK_REBUILD];
    let apps_lock: [&(dyn ToSql + Sync); 2] = [&LOCK_CLASS, &LOCK_APPS];
    let creation_locks: Vec<[&(dyn ToSql + Sync); 2]> = creating
        .iter()
        .map(|a| [&ROOMS_CLASS as _, a as _])
        .collect();

    let mut steps = vec![
        Plain("BEGIN"),
        Query("SELECT pg_advisory_xact_lock_shared($1, $2)", &rebuild_lock),
    ];
    if cmds.iter().any(|c| matches!(c, Command::CreateApp { .. })) {
        steps.push(Query("SELECT pg_advisory_xact_lock($1, $2)", &apps_lock));
    }
    let rooms_at = steps.len();
    if !w.rooms.is_empty() {
        steps.push(Query(&rooms_sql, &room_params));
    }
    for l in &creation_locks {
        steps.push(Query("SELECT pg_advisory_xact_lock($1, $2)", l));
    }
    let members_at = steps.len();
    if !w.members.is_empty() {
        steps.push(Query(&members_sql, &member_params));
    }
    let clients_at = steps.len();
    if !clients.is_empty() {
        steps.push(Query(&clients_sql, &client_params));
    }
    let mut answers = c.pipeline(&steps)?;

    if !w.rooms.is_empty() {
        for r in &answers[rooms_at] {
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
    }
    let locked = |a: i64, r: i64| batch.rooms.contains_key(&(AppId(a), RoomNumber(r)));
    if !w.members.is_empty() {
        let mut found = HashMap::new();
        for r in &answers[members_at] {
            let key = (rows::get::<i64>(r, 0)?, rows::get::<i64>(r, 1)?);
            let m = rows::member_at(r, 2)?;
            found.insert((key.0, key.1, m.user.0.clone()), m);
        }
        let mut members = Vec::new();
        for (a, r, u) in &w.members {
            if locked(*a, *r) {
                let m = found.remove(&(*a, *r, (*u).to_owned()));
                members.push(((AppId(*a), RoomNumber(*r), UserId((*u).to_owned())), m));
            }
        }
        batch.members.extend(members);
    }
    if !clients.is_empty() {
        let mut found: HashMap<usize, Item> = HashMap::new();
        for r in std::mem::take(&mut answers[clients_at]) {
            let n: i64 = rows::get(&r, 0)?;
            found.entry(n as usize - 1).or_insert(rows::item_at(&r, 1)?);
        }
        for (i, (a, r, s, id)) in clients.iter().enumerate() {
            if locked(*a, *r) {
                let key = (
                    AppId(*a),
                    RoomNumber(*r),
                    s.map(|s| UserId(s.to_owned())),
                    (*id).to_owned(),
                );
                batch.pending.prefetched(key, found.remove(&i));
            }
        }
    }
    batch
        .creating
        .extend(creating.into_iter().map(|a| AppId(i64::from(a))));
    Ok(())
}

const INSERT_EVENTS_SQL: &str =
    "INSERT INTO events (app_id, \"offset\", room_no, pos, seq, type, v,
        at, body)
    SELECT u.a, (SELECT last_offset FROM apps WHERE id = u.a) - u.back, u.r, u.p, u.s, u.t, u.v,
        u.at, u.b
    FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[],
        $6::TEXT[], $7::BIGINT[], $8::BIGINT[], $9::TEXT[]) AS u(a, back, r, p, s, t, v, at, b)";

/// Step 6 and the end, in one round trip: the buffered sends, the apps' counters and offsets
/// (app id order), the events (numbered from the app rows just updated: an event's offset is
/// its app's new `last_offset` less the app's events after it in the batch), COMMIT.
fn finish(c: &mut Conn, mut batch: Batch) -> StoreResult<Vec<Event>> {
    use crate::conn::Step::{Batch as Plain, Query};
    let flush = (!batch.pending.is_empty()).then(|| batch.pending.take());
    let flush_params = flush.as_ref().map(|f| f.params());
    let mut per_app: HashMap<AppId, i64> = HashMap::new();
    for ev in &batch.events {
        *per_app.entry(ev.app).or_default() += 1;
    }
    let settles: Vec<(AppId, Delta)> = batch
        .deltas
        .iter()
        .filter(|(_, d)| d.events > 0)
        .map(|(a, d)| (*a, *d))
        .collect();
    for (app, d) in &settles {
        if per_app.get(app).copied().unwrap_or(0) != d.events {
            return Err(StoreError::internal(
                "an app's events and its offsets disagree",
            ));
        }
    }
    let settle_params: Vec<[&(dyn ToSql + Sync); 5]> = settles
        .iter()
        .map(|(app, d)| -> [&(dyn ToSql + Sync); 5] {
            [&app.0, &d.events, &d.messages, &d.users, &d.rooms]
        })
        .collect();
    let cols = EventCols::of(&batch.events, &per_app);
    let event_params = cols.params();

    let mut steps = Vec::with_capacity(settles.len() + 3);
    if let Some(p) = &flush_params {
        steps.push(Query(FLUSH_SQL, p));
    }
    let settles_at = steps.len();
    for p in &settle_params {
        steps.push(Query(projection::SETTLE_SQL, p));
    }
    if !batch.events.is_empty() {
        steps.push(Query(INSERT_EVENTS_SQL, &event_params));
    }
    steps.push(Plain("COMMIT"));
    let answers = c.pipeline(&steps)?;

    let mut next: HashMap<AppId, i64> = HashMap::new();
    for (i, (app, d)) in settles.iter().enumerate() {
        let row = answers[settles_at + i]
            .first()
            .ok_or_else(|| StoreError::internal("projection: app row missing"))?;
        let last: i64 = rows::get(row, 0)?;
        next.insert(*app, last - d.events + 1);
    }
    for ev in &mut batch.events {
        let n = next
            .get_mut(&ev.app)
            .ok_or_else(|| StoreError::internal("an event of an app without offsets"))?;
        ev.offset = Offset(*n);
        *n += 1;
    }
    Ok(batch.events)
}

/// The events as columns for `INSERT_EVENTS_SQL`.
struct EventCols {
    app: Vec<i64>,
    back: Vec<i64>,
    room: Vec<Option<i64>>,
    pos: Vec<Option<i64>>,
    seq: Vec<Option<i64>>,
    kind: Vec<&'static str>,
    v: Vec<i64>,
    at: Vec<i64>,
    body: Vec<String>,
}

impl EventCols {
    fn of(events: &[Event], per_app: &HashMap<AppId, i64>) -> EventCols {
        let n = events.len();
        let mut seen: HashMap<AppId, i64> = HashMap::new();
        let mut c = EventCols {
            app: Vec::with_capacity(n),
            back: Vec::with_capacity(n),
            room: Vec::with_capacity(n),
            pos: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            v: Vec::with_capacity(n),
            at: Vec::with_capacity(n),
            body: Vec::with_capacity(n),
        };
        for ev in events {
            let i = seen.entry(ev.app).or_default();
            let total = per_app.get(&ev.app).copied().unwrap_or(0);
            c.back.push(total - 1 - *i);
            *i += 1;
            let (r, p) = ev
                .body
                .room_pos()
                .map_or((None, None), |(r, p)| (Some(r.0), Some(p.0)));
            c.app.push(ev.app.0);
            c.room.push(r.or(ev.body.room().map(|r| r.0)));
            c.pos.push(p);
            c.seq.push(ev.body.item_seq().map(|s| s.0));
            c.kind.push(ev.body.type_name());
            c.v.push(EVENT_VERSION);
            c.at.push(ev.at.0);
            c.body.push(ev.body.encode());
        }
        c
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 9] {
        [
            &self.app, &self.back, &self.room, &self.pos, &self.seq, &self.kind, &self.v, &self.at,
            &self.body,
        ]
    }
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
