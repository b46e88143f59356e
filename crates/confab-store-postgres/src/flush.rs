//! The set-based statements that write what a batch owes (`pending`): one per table touched,
//! each over arrays (`UNNEST`), all sent in one round trip (`Conn::pipeline`), and only those
//! with rows to write.

use crate::conn::Step;
use crate::pending::Pending;
use crate::plans::{PlanParams, PlanRows};
use confab_core::model::{ItemKind, direct_key};
use confab_core::search::fold;
use tokio_postgres::types::ToSql;

/// New rooms, as a room is first inserted (as `projection::rooms` does): what the batch did
/// to them since (announcements, memberships, sends) moves them in `ITEMS_SQL`, which runs
/// after this.
pub const NEW_ROOMS_SQL: &str = "INSERT INTO rooms (app_id, number, kind, name, image_url,
        visibility, alias, creator, direct_key, created_at, updated_at, last_pos, last_seq,
        activity)
    SELECT a, n, k, nm, img, vis, al, cr, dk, at, at, p, 0, at
    FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
        $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::BIGINT[], $11::BIGINT[])
        AS u(a, n, k, nm, img, vis, al, cr, dk, at, p)";

/// The items (messages and announcements), the stored items' changes (reply counts, edits,
/// deletions), the rooms' counters and settings.
/// Data-modifying CTEs all see the statement's snapshot, not each other's rows, so the stored
/// items updated here are only items stored before; changes to the items inserted here are
/// made in memory (`Pending`). Each stored item has one row of changes: a row updated twice
/// in one statement would keep only one of the updates.
pub const ITEMS_SQL: &str = "WITH new_items AS (
        INSERT INTO items (app_id, room_no, seq, pos, kind, sender, text, folded, reply_to,
            reply_count, created_at, client_id, edited_at, deleted, announcement)
        SELECT a, r, s, p, k, snd, t, f, rt, n, at, cid, e, d, an
        FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[],
            $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[], $11::BIGINT[],
            $12::TEXT[], $13::BIGINT[], $14::BOOL[], $15::TEXT[])
            AS u(a, r, s, p, k, snd, t, f, rt, n, at, cid, e, d, an)
    ), stored AS (
        UPDATE items i SET reply_count = i.reply_count + u.n,
            text = CASE WHEN u.ch THEN u.t ELSE i.text END,
            folded = CASE WHEN u.ch THEN u.f ELSE i.folded END,
            edited_at = CASE WHEN u.ch THEN u.e ELSE i.edited_at END,
            pos = CASE WHEN u.ch THEN u.p ELSE i.pos END,
            deleted = i.deleted OR u.d
        FROM UNNEST($16::BIGINT[], $17::BIGINT[], $18::BIGINT[], $19::BIGINT[], $20::BOOL[],
            $21::TEXT[], $22::TEXT[], $23::BIGINT[], $24::BIGINT[], $25::BOOL[])
            AS u(a, r, s, n, ch, t, f, e, p, d)
        WHERE i.app_id = u.a AND i.room_no = u.r AND i.seq = u.s
    )
    UPDATE rooms o SET last_seq = COALESCE(u.s, o.last_seq), last_pos = u.p,
        messages_count = o.messages_count + u.n, member_count = o.member_count + u.m,
        activity = COALESCE(u.at, o.activity), name = COALESCE(u.nm, o.name),
        image_url = COALESCE(u.img, o.image_url), visibility = COALESCE(u.vis, o.visibility),
        updated_at = COALESCE(u.up, o.updated_at)
    FROM UNNEST($26::BIGINT[], $27::BIGINT[], $28::BIGINT[], $29::BIGINT[], $30::BIGINT[],
        $31::BIGINT[], $32::BIGINT[], $33::TEXT[], $34::TEXT[], $35::TEXT[], $36::BIGINT[])
        AS u(a, r, s, p, n, m, at, nm, img, vis, up)
    WHERE o.app_id = u.a AND o.number = u.r";

/// Empties the text the log holds for deleted messages (see `EventBody::MessagePosted`), in
/// the events of earlier transactions; this batch's events are redacted in memory and
/// inserted after this runs.
pub const REDACT_SQL: &str = "UPDATE events e
    SET body = jsonb_set(jsonb_set(e.body::jsonb, '{text}', '\"\"'), '{redacted}', 'true')::text
    FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[]) AS u(a, r, s)
    WHERE e.app_id = u.a AND e.room_no = u.r AND e.seq = u.s
      AND e.type IN ('message_posted', 'message_edited')";

/// Membership rows written whole, as the transaction decided them (each key once: a row
/// cannot be upserted twice in one statement).
pub const MEMBERS_SQL: &str = "INSERT INTO members (app_id, room_no, user_id, role, state,
        read_seq, since, updated_at)
    SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
        $6::BIGINT[], $7::BIGINT[], $8::BIGINT[])
    ON CONFLICT (app_id, room_no, user_id) DO UPDATE SET role = EXCLUDED.role,
        state = EXCLUDED.state, read_seq = EXCLUDED.read_seq, since = EXCLUDED.since,
        updated_at = EXCLUDED.updated_at";

/// Read markers only move forward.
pub const MARKS_SQL: &str = "UPDATE members m SET read_seq = GREATEST(m.read_seq, u.s)
    FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[]) AS u(a, r, id, s)
    WHERE m.app_id = u.a AND m.room_no = u.r AND m.user_id = u.id";

/// A login is also a sighting; a sighting leaves the last login as it is.
pub const USERS_SQL: &str = "UPDATE users us
    SET last_login_at = COALESCE(u.l, us.last_login_at), last_seen_at = u.s
    FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[]) AS u(a, id, l, s)
    WHERE us.app_id = u.a AND us.user_id = u.id";

/// The statements' parameters, owned.
#[derive(Default)]
pub struct Flush {
    n_app: Vec<i64>,
    n_number: Vec<i64>,
    n_kind: Vec<&'static str>,
    n_name: Vec<Option<String>>,
    n_image: Vec<Option<String>>,
    n_visibility: Vec<&'static str>,
    n_alias: Vec<Option<String>>,
    n_creator: Vec<Option<String>>,
    n_direct: Vec<Option<String>>,
    n_at: Vec<i64>,
    n_pos: Vec<i64>,
    i_app: Vec<i64>,
    i_room: Vec<i64>,
    i_seq: Vec<i64>,
    i_pos: Vec<i64>,
    i_kind: Vec<&'static str>,
    i_sender: Vec<Option<String>>,
    i_text: Vec<Option<String>>,
    i_folded: Vec<Option<String>>,
    i_reply_to: Vec<Option<i64>>,
    i_replies: Vec<i64>,
    i_at: Vec<i64>,
    i_client: Vec<Option<String>>,
    i_edited: Vec<Option<i64>>,
    i_deleted: Vec<bool>,
    i_announcement: Vec<Option<String>>,
    o_app: Vec<i64>,
    o_room: Vec<i64>,
    o_seq: Vec<i64>,
    o_replies: Vec<i64>,
    o_changed: Vec<bool>,
    o_text: Vec<Option<String>>,
    o_folded: Vec<Option<String>>,
    o_edited: Vec<Option<i64>>,
    o_pos: Vec<Option<i64>>,
    o_deleted: Vec<bool>,
    r_app: Vec<i64>,
    r_room: Vec<i64>,
    r_seq: Vec<Option<i64>>,
    r_pos: Vec<i64>,
    r_n: Vec<i64>,
    r_members: Vec<i64>,
    r_at: Vec<Option<i64>>,
    r_name: Vec<Option<String>>,
    r_image: Vec<Option<String>>,
    r_visibility: Vec<Option<&'static str>>,
    r_updated: Vec<Option<i64>>,
    x_app: Vec<i64>,
    x_room: Vec<i64>,
    x_seq: Vec<i64>,
    j_app: Vec<i64>,
    j_room: Vec<i64>,
    j_user: Vec<String>,
    j_role: Vec<&'static str>,
    j_state: Vec<&'static str>,
    j_read: Vec<i64>,
    j_since: Vec<i64>,
    j_at: Vec<i64>,
    m_app: Vec<i64>,
    m_room: Vec<i64>,
    m_user: Vec<String>,
    m_seq: Vec<i64>,
    u_app: Vec<i64>,
    u_user: Vec<String>,
    u_login: Vec<Option<i64>>,
    u_seen: Vec<i64>,
    plans: PlanRows,
}

/// The parameters of a `Flush`, borrowed as the statements take them.
pub struct FlushParams<'a> {
    new_rooms: Option<[&'a (dyn ToSql + Sync); 11]>,
    items: Option<[&'a (dyn ToSql + Sync); 36]>,
    redact: Option<[&'a (dyn ToSql + Sync); 3]>,
    members: Option<[&'a (dyn ToSql + Sync); 8]>,
    marks: Option<[&'a (dyn ToSql + Sync); 4]>,
    users: Option<[&'a (dyn ToSql + Sync); 4]>,
    plans: PlanParams<'a>,
}

impl FlushParams<'_> {
    /// The statements with rows to write, in a fixed order.
    pub fn steps(&self) -> Vec<Step<'_>> {
        let mut steps = Vec::with_capacity(14);
        if let Some(p) = &self.new_rooms {
            steps.push(Step::Query(NEW_ROOMS_SQL, p));
        }
        if let Some(p) = &self.items {
            steps.push(Step::Query(ITEMS_SQL, p));
        }
        if let Some(p) = &self.redact {
            steps.push(Step::Query(REDACT_SQL, p));
        }
        if let Some(p) = &self.members {
            steps.push(Step::Query(MEMBERS_SQL, p));
        }
        if let Some(p) = &self.marks {
            steps.push(Step::Query(MARKS_SQL, p));
        }
        if let Some(p) = &self.users {
            steps.push(Step::Query(USERS_SQL, p));
        }
        self.plans.steps(&mut steps);
        steps
    }
}

impl Flush {
    /// Empties what `p` owes into parameters.
    pub(crate) fn of(p: &mut Pending) -> Flush {
        use std::mem::take;
        let mut f = Flush::default();
        for (app, rs) in take(&mut p.new_rooms) {
            let r = rs.room;
            f.n_app.push(app.0);
            f.n_number.push(r.number.0);
            f.n_kind.push(r.kind.as_str());
            f.n_name.push(r.name);
            f.n_image.push(r.image_url);
            f.n_visibility.push(r.visibility.as_str());
            f.n_alias.push(r.alias);
            f.n_creator.push(r.creator.map(|u| u.0));
            f.n_direct.push(rs.direct.map(|(a, b)| direct_key(&a, &b)));
            f.n_at.push(r.created_at.0);
            f.n_pos.push(r.last_pos.0);
        }
        for (app, room, item) in take(&mut p.items) {
            f.i_app.push(app.0);
            f.i_room.push(room.0);
            f.i_seq.push(item.seq.0);
            f.i_pos.push(item.pos.0);
            // Only messages are searched: an announcement's text is not folded.
            let message = item.kind == ItemKind::Message;
            f.i_kind
                .push(if message { "message" } else { "announcement" });
            f.i_folded
                .push(item.text.as_deref().filter(|_| message).map(fold));
            f.i_announcement
                .push(item.announcement.as_ref().map(|a| a.to_string()));
            f.i_sender.push(item.sender.map(|u| u.0));
            f.i_text.push(item.text);
            f.i_reply_to.push(item.reply_to.map(|s| s.0));
            f.i_replies.push(item.reply_count);
            f.i_at.push(item.created_at.0);
            f.i_client.push(item.client_id);
            f.i_edited.push(item.edited_at.map(|t| t.0));
            f.i_deleted.push(item.deleted);
        }
        for ((app, room, seq), o) in take(&mut p.owed) {
            f.o_app.push(app.0);
            f.o_room.push(room.0);
            f.o_seq.push(seq.0);
            f.o_replies.push(o.replies);
            f.o_changed.push(o.change.is_some());
            let c = o.change.as_ref();
            f.o_folded.push(c.and_then(|c| c.text.as_deref()).map(fold));
            f.o_edited.push(c.map(|c| c.at.0));
            f.o_pos.push(c.map(|c| c.pos.0));
            f.o_deleted.push(c.is_some_and(|c| c.text.is_none()));
            f.o_text.push(o.change.and_then(|c| c.text));
        }
        for ((app, room), b) in take(&mut p.rooms) {
            f.r_app.push(app.0);
            f.r_room.push(room.0);
            f.r_seq.push(b.last_seq.map(|s| s.0));
            f.r_pos.push(b.last_pos.0);
            f.r_n.push(b.messages);
            f.r_members.push(b.members);
            f.r_at.push(b.activity.map(|t| t.0));
            f.r_name.push(b.name);
            f.r_image.push(b.image_url);
            f.r_visibility.push(b.visibility.map(|v| v.as_str()));
            f.r_updated.push(b.updated_at.map(|t| t.0));
        }
        for (app, room, seq) in take(&mut p.redact) {
            f.x_app.push(app.0);
            f.x_room.push(room.0);
            f.x_seq.push(seq.0);
        }
        for ((app, room, user), m) in take(&mut p.members) {
            f.j_app.push(app.0);
            f.j_room.push(room.0);
            f.j_user.push(user.0);
            f.j_role.push(m.role.as_str());
            f.j_state.push(m.state.as_str());
            f.j_read.push(m.read_seq.0);
            f.j_since.push(m.since.0);
            f.j_at.push(m.updated_at.0);
        }
        for ((app, room, user), seq) in take(&mut p.marks) {
            f.m_app.push(app.0);
            f.m_room.push(room.0);
            f.m_user.push(user.0);
            f.m_seq.push(seq.0);
        }
        for ((app, user), s) in take(&mut p.users) {
            f.u_app.push(app.0);
            f.u_user.push(user.0);
            f.u_login.push(s.login.map(|t| t.0));
            f.u_seen.push(s.seen.0);
        }
        f.plans = p.plans.take();
        f
    }

    pub fn params(&self) -> FlushParams<'_> {
        let items = !(self.i_app.is_empty() && self.o_app.is_empty() && self.r_app.is_empty());
        FlushParams {
            new_rooms: (!self.n_app.is_empty()).then_some([
                &self.n_app,
                &self.n_number,
                &self.n_kind,
                &self.n_name,
                &self.n_image,
                &self.n_visibility,
                &self.n_alias,
                &self.n_creator,
                &self.n_direct,
                &self.n_at,
                &self.n_pos,
            ]),
            items: items.then_some([
                &self.i_app,
                &self.i_room,
                &self.i_seq,
                &self.i_pos,
                &self.i_kind,
                &self.i_sender,
                &self.i_text,
                &self.i_folded,
                &self.i_reply_to,
                &self.i_replies,
                &self.i_at,
                &self.i_client,
                &self.i_edited,
                &self.i_deleted,
                &self.i_announcement,
                &self.o_app,
                &self.o_room,
                &self.o_seq,
                &self.o_replies,
                &self.o_changed,
                &self.o_text,
                &self.o_folded,
                &self.o_edited,
                &self.o_pos,
                &self.o_deleted,
                &self.r_app,
                &self.r_room,
                &self.r_seq,
                &self.r_pos,
                &self.r_n,
                &self.r_members,
                &self.r_at,
                &self.r_name,
                &self.r_image,
                &self.r_visibility,
                &self.r_updated,
            ]),
            redact: (!self.x_app.is_empty()).then_some([&self.x_app, &self.x_room, &self.x_seq]),
            members: (!self.j_app.is_empty()).then_some([
                &self.j_app,
                &self.j_room,
                &self.j_user,
                &self.j_role,
                &self.j_state,
                &self.j_read,
                &self.j_since,
                &self.j_at,
            ]),
            marks: (!self.m_app.is_empty()).then_some([
                &self.m_app,
                &self.m_room,
                &self.m_user,
                &self.m_seq,
            ]),
            users: (!self.u_app.is_empty()).then_some([
                &self.u_app,
                &self.u_user,
                &self.u_login,
                &self.u_seen,
            ]),
            plans: self.plans.params(),
        }
    }
}
