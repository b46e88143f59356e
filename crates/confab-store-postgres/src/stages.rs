//! The start and the end of a batch's write transaction (steps 1 to 4 and 6 of the lock order
//! in `writer`): each one round trip, its statements pipelined.

use crate::conn::Conn;
use crate::projection::{self, Delta};
use crate::rows::{self, ITEM_COLS, MEMBER_COLS, ROOM_COLS, USER_COLS};
use crate::schema::{LOCK_APPS, LOCK_CLASS, LOCK_REBUILD, ROOMS_CLASS};
use crate::tx::Batch;
use confab_core::command::Command;
use confab_core::command::{CreateApp, CreateGroup, DeleteMessage, EditMessage, SendMessage};
use confab_core::error::StoreError;
use confab_core::event::{EVENT_VERSION, Event};
use confab_core::ids::{AppId, Offset, RoomNumber, UserId};
use confab_core::model::Item;
use confab_core::store::{RoomState, StoreResult};
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;
use tokio_postgres::types::ToSql;

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
        CreateMeetup(confab_core::CreateMeetup {
            app, actor, room, ..
        })
        | UpdateMeetup(confab_core::UpdateMeetup {
            app, actor, room, ..
        })
        | CancelMeetup(confab_core::CancelMeetup {
            app, actor, room, ..
        })
        | SetRsvp(confab_core::SetRsvp {
            app, actor, room, ..
        })
        | CreatePoll(confab_core::CreatePoll {
            app, actor, room, ..
        })
        | Vote(confab_core::Vote {
            app, actor, room, ..
        }) => (*app, *room, vec![actor]),
        // The server closing a poll at its deadline has no actor.
        ClosePoll(confab_core::ClosePoll {
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

/// What a batch reads when it starts: the rooms its commands name (locked), the memberships
/// its rules will look at there, the items its sends' client ids name, the items edited,
/// deleted or replied to, the users whose logins and sightings it records, and those who
/// must exist to be invited, decided on, or put in a new room.
#[derive(Default)]
struct Wanted<'a> {
    rooms: BTreeSet<(i64, i64)>,
    members: BTreeSet<(i64, i64, &'a str)>,
    clients: BTreeSet<(i64, i64, Option<&'a str>, &'a str)>,
    items: BTreeSet<(i64, i64, i64)>,
    users: BTreeSet<(i64, &'a str)>,
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
            if let Command::Send(SendMessage {
                app,
                actor,
                room,
                client_id: Some(cid),
                ..
            }) = cmd
            {
                w.clients
                    .insert((app.0, room.0, actor.as_ref().map(UserId::as_str), cid));
            }
            match cmd {
                Command::Send(SendMessage {
                    app,
                    room,
                    reply_to: Some(seq),
                    ..
                })
                | Command::Edit(EditMessage { app, room, seq, .. })
                | Command::Delete(DeleteMessage { app, room, seq, .. }) => {
                    w.items.insert((app.0, room.0, seq.0));
                }
                // The users these record, or whose existence the rules check.
                Command::RecordLogin { app, user }
                | Command::RecordSeen { app, user }
                | Command::Invite(confab_core::Invite {
                    app, target: user, ..
                })
                | Command::Decide(confab_core::Decide {
                    app, target: user, ..
                }) => {
                    w.users.insert((app.0, user.as_str()));
                }
                Command::CreateDirect { app, actor, with } => {
                    w.users.insert((app.0, actor.as_str()));
                    w.users.insert((app.0, with.as_str()));
                }
                Command::CreateGroup(CreateGroup {
                    app,
                    actor,
                    members,
                    ..
                }) => {
                    for u in actor.iter().chain(members) {
                        w.users.insert((app.0, u.as_str()));
                    }
                }
                _ => {}
            }
        }
        w
    }
}

// The statements of `lock`, each made once (the writer finds its prepared statements by
// their text).

/// The memberships the batch's rules will read.
static READ_MEMBERS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT m.app_id, m.room_no, {} FROM members m
     JOIN UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[]) AS k(a, r, u)
       ON m.app_id = k.a AND m.room_no = k.r AND m.user_id = k.u",
        rows::prefixed(MEMBER_COLS, "m")
    )
});
/// The items the batch's sends' client ids name, by the key's place in the arrays.
static READ_CLIENTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT k.n, {} FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[])
         WITH ORDINALITY AS k(a, r, s, c, n)
     JOIN items it ON it.app_id = k.a AND it.room_no = k.r AND it.client_id = k.c
       AND it.sender IS NOT DISTINCT FROM k.s",
        rows::prefixed(ITEM_COLS, "it")
    )
});
/// The items edited, deleted or replied to.
static READ_ITEMS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT it.app_id, it.room_no, {} FROM items it
     JOIN UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[]) AS k(a, r, s)
       ON it.app_id = k.a AND it.room_no = k.r AND it.seq = k.s",
        rows::prefixed(ITEM_COLS, "it")
    )
});
/// The users seen or named.
static READ_USERS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT us.app_id, {} FROM users us
     JOIN UNNEST($1::BIGINT[], $2::TEXT[]) AS k(a, id) ON us.app_id = k.a AND us.user_id = k.id",
        rows::prefixed(USER_COLS, "us")
    )
});
/// Step 3: the rooms, locked in (app id, room number) order.
static READ_ROOMS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT app_id, {ROOM_COLS} FROM rooms
     WHERE (app_id, number) IN (SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[]))
     ORDER BY app_id, number FOR UPDATE"
    )
});

/// BEGIN and step 1, one message of the simple protocol: one statement fewer to bind and
/// answer than a parameterized lock.
static BEGIN_SQL: LazyLock<String> = LazyLock::new(|| {
    format!("BEGIN; SELECT pg_advisory_xact_lock_shared({LOCK_CLASS}, {LOCK_REBUILD})")
});

/// Steps 1 to 4 of the lock order (module docs), with what they let the batch read at once,
/// all in one round trip with BEGIN: the server runs them in order, so the reads (each a
/// snapshot of its own, READ COMMITTED) come after the room locks are held and see the
/// latest committed state of those rooms.
pub fn lock(c: &mut Conn, cmds: &[Command], batch: &mut Batch) -> StoreResult<()> {
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
    let creating: Vec<i32> =
        cmds.iter()
            .filter_map(|c| match c {
                Command::CreateDirect { app, .. }
                | Command::CreateGroup(CreateGroup { app, .. }) => Some(app.0 as i32),
                _ => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
    let (mut i_app, mut i_no, mut i_seq) = (vec![], vec![], vec![]);
    for (a, r, s) in &w.items {
        i_app.push(*a);
        i_no.push(*r);
        i_seq.push(*s);
    }
    let (u_app, u_id): (Vec<i64>, Vec<&str>) = w.users.iter().copied().unzip();
    let room_params: [&(dyn ToSql + Sync); 2] = [&r_app, &r_no];
    let member_params: [&(dyn ToSql + Sync); 3] = [&m_app, &m_no, &m_user];
    let client_params: [&(dyn ToSql + Sync); 4] = [&c_app, &c_no, &c_sender, &c_id];
    let item_params: [&(dyn ToSql + Sync); 3] = [&i_app, &i_no, &i_seq];
    let user_params: [&(dyn ToSql + Sync); 2] = [&u_app, &u_id];
    let apps_lock: [&(dyn ToSql + Sync); 2] = [&LOCK_CLASS, &LOCK_APPS];
    let creation_locks: Vec<[&(dyn ToSql + Sync); 2]> = creating
        .iter()
        .map(|a| [&ROOMS_CLASS as _, a as _])
        .collect();

    let mut steps = vec![Plain(BEGIN_SQL.as_str())];
    if cmds
        .iter()
        .any(|c| matches!(c, Command::CreateApp(CreateApp { .. })))
    {
        steps.push(Query("SELECT pg_advisory_xact_lock($1, $2)", &apps_lock));
    }
    let rooms_at = steps.len();
    if !w.rooms.is_empty() {
        steps.push(Query(&READ_ROOMS_SQL, &room_params));
    }
    for l in &creation_locks {
        steps.push(Query("SELECT pg_advisory_xact_lock($1, $2)", l));
    }
    let members_at = steps.len();
    if !w.members.is_empty() {
        steps.push(Query(&READ_MEMBERS_SQL, &member_params));
    }
    let clients_at = steps.len();
    if !clients.is_empty() {
        steps.push(Query(&READ_CLIENTS_SQL, &client_params));
    }
    let items_at = steps.len();
    if !w.items.is_empty() {
        steps.push(Query(&READ_ITEMS_SQL, &item_params));
    }
    let users_at = steps.len();
    if !w.users.is_empty() {
        steps.push(Query(&READ_USERS_SQL, &user_params));
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
    if !w.items.is_empty() {
        for r in std::mem::take(&mut answers[items_at]) {
            let (a, no): (i64, i64) = (rows::get(&r, 0)?, rows::get(&r, 1)?);
            if locked(a, no) {
                let item = rows::item_at(&r, 2)?;
                batch
                    .pending
                    .remember((AppId(a), RoomNumber(no), item.seq), item);
            }
        }
    }
    if !w.users.is_empty() {
        // Users are not locked: what another node writes meanwhile may be missed, as a read
        // of a moment earlier would.
        let mut found = HashMap::new();
        for r in &answers[users_at] {
            let user = rows::user_at(r, 1)?;
            found.insert((rows::get::<i64>(r, 0)?, user.id.0.clone()), user);
        }
        for (a, u) in &w.users {
            let key = (AppId(*a), UserId((*u).to_owned()));
            let user = found.remove(&(*a, (*u).to_owned()));
            batch.users.insert(key, user);
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

/// Step 6 for a batch whose events are all of one app, in one statement: the app's counters
/// and offsets ($1 to $5, as `SETTLE_SQL`), then its events ($6 to $14, as
/// `INSERT_EVENTS_SQL`) numbered from the app row just updated. Its answer is the app's new
/// `last_offset`.
const ONE_APP_SQL: &str = "WITH settled AS (
        UPDATE apps SET last_offset = last_offset + $2, messages_count = messages_count + $3,
            users_count = users_count + $4, rooms_count = rooms_count + $5
        WHERE id = $1 RETURNING last_offset
    ), logged AS (
        INSERT INTO events (app_id, \"offset\", room_no, pos, seq, type, v, at, body)
        SELECT u.a, st.last_offset - u.back, u.r, u.p, u.s, u.t, u.v, u.at, u.b
        FROM settled st, UNNEST($6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::BIGINT[],
            $10::BIGINT[], $11::TEXT[], $12::BIGINT[], $13::BIGINT[], $14::TEXT[])
            AS u(a, back, r, p, s, t, v, at, b)
    )
    SELECT last_offset FROM settled";

/// Step 6 and the end, in one round trip: the buffered writes, the apps' counters and offsets
/// (app id order), the events (numbered from the app rows just updated: an event's offset is
/// its app's new `last_offset` less the app's events after it in the batch), COMMIT.
///
/// Each statement has a cost of its own (an answer sent, a plan started), so a batch of one
/// app (the common case) takes its offsets and writes its events in one statement
/// (`ONE_APP_SQL`). A batch of several apps updates their rows one statement each, in app id
/// order: one statement could lock them in any order, and two nodes could then deadlock.
/// The items' writes stay a statement of their own, before: in one statement with the app's
/// row, PostgreSQL may lock the row first, and every node writing to the app would then wait
/// on it for as long as the batch's items take to insert, not just for the commit.
pub fn finish(c: &mut Conn, mut batch: Batch) -> StoreResult<Vec<Event>> {
    use crate::conn::Step::{Batch as Plain, Query};
    let flush = batch.pending.take();
    let flush_params = flush.params();
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
    let one_app: Vec<&(dyn ToSql + Sync)> = match settle_params.as_slice() {
        [settle] => settle.iter().chain(&event_params).copied().collect(),
        _ => vec![],
    };

    let mut steps = flush_params.steps();
    let settles_at = steps.len();
    if one_app.is_empty() {
        for p in &settle_params {
            steps.push(Query(projection::SETTLE_SQL, p));
        }
        if !batch.events.is_empty() {
            steps.push(Query(INSERT_EVENTS_SQL, &event_params));
        }
    } else {
        steps.push(Query(ONE_APP_SQL, &one_app));
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
