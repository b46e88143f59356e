//! The projections: `apply` turns one event into read-model updates. The live write path and
//! `rebuild` both call it, so a replayed store equals the live one.

use crate::cache::messages_delta;
use crate::rows::{self, direct_key, item_key, kind_str, role_str, visibility_str};
use confab_core::event::{Event, EventBody};
use confab_core::ids::{AppId, RoomNumber, Seq, UserId};
use confab_core::model::MemberState;
use confab_core::rules::announcement;
use rusqlite::{Connection, params};

type R = rusqlite::Result<()>;

fn missing(what: &str) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(format!("projection: {what} missing").into())
}

fn room_id(conn: &Connection, app: AppId, room: RoomNumber) -> rusqlite::Result<i64> {
    rows::room_id(conn, app, room)?.ok_or_else(|| missing("room"))
}

/// Applies `ev` to every projection.
pub fn apply(conn: &Connection, ev: &Event) -> R {
    apply_rows(conn, ev, None)?;
    conn.prepare_cached(
        "UPDATE apps SET last_offset = ?2, messages_count = messages_count + ?3 WHERE id = ?1",
    )?
    .execute(params![ev.app.0, ev.offset.0, messages_delta(&ev.body)])?;
    Ok(())
}

/// Applies `ev` to every projection except the app row's `last_offset` and `messages_count`,
/// which the caller owes (the writer updates them once per batch). `rid` is the id of the
/// event's room when the caller knows it.
pub fn apply_rows(conn: &Connection, ev: &Event, rid: Option<i64>) -> R {
    let (app, at) = (ev.app.0, ev.at.0);
    let rid_of = |conn: &Connection, app: AppId, room: RoomNumber| match rid {
        Some(id) => Ok(id),
        None => room_id(conn, app, room),
    };
    match &ev.body {
        EventBody::AppCreated {
            name,
            token,
            secret_hash,
            signing_key,
        } => {
            conn.prepare_cached(
                "INSERT INTO apps (id, name, token, secret_hash, signing_key, key_id, created_at, \
                 updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            )?
            .execute(params![
                app,
                name,
                token,
                secret_hash,
                signing_key,
                confab_core::model::key_id(signing_key),
                at
            ])?;
        }
        EventBody::AppRenamed { name } => {
            conn.prepare_cached("UPDATE apps SET name = ?2, updated_at = ?3 WHERE id = ?1")?
                .execute(params![app, name, at])?;
        }
        EventBody::UserUpserted {
            user,
            name,
            image_url,
            email,
        } => {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO users (app_id, user_id, name, image_url, email, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                     ON CONFLICT (app_id, user_id) DO NOTHING",
                )?
                .execute(params![app, user.as_str(), name, image_url, email, at])?;
            if inserted == 1 {
                conn.prepare_cached("UPDATE apps SET users_count = users_count + 1 WHERE id = ?1")?
                    .execute(params![app])?;
            } else {
                conn.prepare_cached(
                    "UPDATE users SET name = ?3, image_url = ?4, email = ?5, updated_at = ?6
                     WHERE app_id = ?1 AND user_id = ?2",
                )?
                .execute(params![
                    app,
                    user.as_str(),
                    name,
                    image_url,
                    email,
                    at
                ])?;
            }
        }
        EventBody::UserLoggedIn { user } => {
            conn.prepare_cached(
                "UPDATE users SET last_login_at = ?3, last_seen_at = ?3 WHERE app_id = ?1 AND user_id = ?2",
            )?
            .execute(params![app, user.as_str(), at])?;
        }
        EventBody::UserSeen { user } => {
            conn.prepare_cached(
                "UPDATE users SET last_seen_at = ?3 WHERE app_id = ?1 AND user_id = ?2",
            )?
            .execute(params![app, user.as_str(), at])?;
        }
        EventBody::RoomCreated {
            room,
            kind,
            name,
            image_url,
            visibility,
            alias,
            creator,
            direct,
            pos,
            seq,
        } => {
            let dkey = direct.as_ref().map(|(a, b)| direct_key(a, b));
            conn.prepare_cached(
                "INSERT INTO rooms (app_id, number, kind, name, image_url, visibility, alias, creator,
                    direct_key, created_at, updated_at, last_pos, last_seq, activity)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, 0, ?12)",
            )?
            .execute(params![
                app, room.0, kind_str(*kind), name, image_url, visibility_str(*visibility), alias,
                creator.as_ref().map(UserId::as_str), dkey, at, pos.0, at
            ])?;
            conn.prepare_cached(
                "UPDATE apps SET last_room = ?2, rooms_count = rooms_count + 1 WHERE id = ?1",
            )?
            .execute(params![app, room.0])?;
            if let Some(seq) = seq {
                announce(
                    conn,
                    ev,
                    rid_of(conn, ev.app, *room)?,
                    *seq,
                    creator.as_ref(),
                )?;
            }
        }
        EventBody::RoomUpdated {
            room,
            by,
            name,
            image_url,
            visibility,
            pos,
            seq,
        } => {
            conn.prepare_cached(
                "UPDATE rooms SET name = COALESCE(?3, name), image_url = COALESCE(?4, image_url),
                    visibility = COALESCE(?5, visibility), updated_at = ?6, last_pos = ?7
                 WHERE app_id = ?1 AND number = ?2",
            )?
            .execute(params![
                app,
                room.0,
                name,
                image_url,
                visibility.map(visibility_str),
                at,
                pos.0
            ])?;
            if let Some(seq) = seq {
                announce(conn, ev, rid_of(conn, ev.app, *room)?, *seq, Some(by))?;
            }
        }
        EventBody::RoomDeleted { room, pos, .. } => {
            let rid = rid_of(conn, ev.app, *room)?;
            conn.prepare_cached(
                "UPDATE apps SET rooms_count = rooms_count - 1,
                    messages_count = messages_count - (SELECT messages_count FROM rooms WHERE id = ?2)
                 WHERE id = ?1",
            )?
            .execute(params![app, rid])?;
            conn.prepare_cached(
                "UPDATE rooms SET deleted = 1, alias = NULL, last_pos = ?2, updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![rid, pos.0, at])?;
        }
        EventBody::Membership {
            room,
            user,
            by,
            state,
            role,
            new_owner,
            pos,
            seq,
            ..
        } => {
            let rid = rid_of(conn, ev.app, *room)?;
            let before = rows::member_of(conn, rid, user)?;
            let was_joined = before
                .as_ref()
                .is_some_and(|m| m.state == MemberState::Joined);
            let joined = *state == MemberState::Joined;
            // A member who joins has read everything up to the moment they joined.
            let read_seq = match (&before, joined && !was_joined) {
                (_, true) => seq.map_or_else(|| last_seq(conn, rid), |s| Ok(s.0))?,
                (Some(m), false) => m.read_seq.0,
                (None, false) => 0,
            };
            // Seniority (for choosing a new owner) survives role changes of a joined member.
            // It is the room position of the joining: compared only within the room, and taken
            // under the room's own counter rather than the app's log offset.
            let since = match joined && was_joined {
                true => since_of(conn, rid, user).unwrap_or(pos.0),
                false => pos.0,
            };
            conn.prepare_cached(
                "INSERT INTO members (room_id, user_id, app_id, role, state, read_seq, since, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (room_id, user_id) DO UPDATE SET role = ?4, state = ?5, read_seq = ?6,
                    since = ?7, updated_at = ?8",
            )?
            .execute(params![rid, user.as_str(), app, role_str(*role), state.as_str(), read_seq, since, at])?;
            let delta = i64::from(joined) - i64::from(was_joined);
            conn.prepare_cached(
                "UPDATE rooms SET member_count = member_count + ?2, last_pos = ?3 WHERE id = ?1",
            )?
            .execute(params![rid, delta, pos.0])?;
            if let Some(owner) = new_owner {
                conn.prepare_cached(
                    "UPDATE members SET role = 'owner', updated_at = ?3 WHERE room_id = ?1 AND user_id = ?2",
                )?
                .execute(params![rid, owner.as_str(), at])?;
            }
            if let Some(seq) = seq {
                announce(conn, ev, rid_of(conn, ev.app, *room)?, *seq, Some(by))?;
            }
        }
        EventBody::MessagePosted {
            room,
            seq,
            pos,
            sender,
            text,
            reply_to,
            client_id,
            ..
        } => {
            let rid = rid_of(conn, ev.app, *room)?;
            conn.prepare_cached(
                "INSERT INTO items (id, room_id, seq, pos, posted_pos, kind, sender, text, reply_to,
                    created_at, client_id)
                 VALUES (?1, ?2, ?3, ?4, ?4, 'message', ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                item_key(rid, seq.0), rid, seq.0, pos.0, sender.as_ref().map(UserId::as_str), text,
                reply_to.map(|s| s.0), at, client_id
            ])?;
            conn.prepare_cached(
                "UPDATE rooms SET last_seq = ?2, last_pos = ?3, messages_count = messages_count + 1,
                    activity = ?4 WHERE id = ?1",
            )?
            .execute(params![rid, seq.0, pos.0, at])?;
            if let Some(parent) = reply_to {
                conn.prepare_cached(
                    "UPDATE items SET reply_count = reply_count + 1 WHERE id = ?1",
                )?
                .execute(params![item_key(rid, parent.0)])?;
            }
        }
        EventBody::MessageEdited {
            room,
            seq,
            pos,
            text,
            ..
        } => {
            let rid = rid_of(conn, ev.app, *room)?;
            conn.prepare_cached(
                "UPDATE items SET text = ?2, edited_at = ?3, pos = ?4 WHERE id = ?1",
            )?
            .execute(params![item_key(rid, seq.0), text, at, pos.0])?;
            conn.prepare_cached("UPDATE rooms SET last_pos = ?2 WHERE id = ?1")?
                .execute(params![rid, pos.0])?;
        }
        EventBody::MessageDeleted { room, seq, pos, .. } => {
            let rid = rid_of(conn, ev.app, *room)?;
            let key = item_key(rid, seq.0);
            let parent: Option<i64> = conn
                .prepare_cached("SELECT reply_to FROM items WHERE id = ?1")?
                .query_row(params![key], |r| r.get(0))?;
            conn.prepare_cached(
                "UPDATE items SET text = NULL, deleted = 1, pos = ?2, edited_at = ?3 WHERE id = ?1",
            )?
            .execute(params![key, pos.0, at])?;
            conn.prepare_cached(
                "UPDATE rooms SET last_pos = ?2, messages_count = messages_count - 1 WHERE id = ?1",
            )?
            .execute(params![rid, pos.0])?;
            if let Some(parent) = parent {
                conn.prepare_cached(
                    "UPDATE items SET reply_count = reply_count - 1 WHERE id = ?1",
                )?
                .execute(params![item_key(rid, parent)])?;
            }
        }
        EventBody::ReadMarkerSet { room, user, seq } => {
            let rid = rid_of(conn, ev.app, *room)?;
            conn.prepare_cached(
                "UPDATE members SET read_seq = MAX(read_seq, ?3) WHERE room_id = ?1 AND user_id = ?2",
            )?
            .execute(params![rid, user.as_str(), seq.0])?;
        }
    }
    Ok(())
}

fn last_seq(conn: &Connection, rid: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT last_seq FROM rooms WHERE id = ?1")?
        .query_row(params![rid], |r| r.get(0))
}

fn since_of(conn: &Connection, rid: i64, user: &UserId) -> Option<i64> {
    conn.prepare_cached("SELECT since FROM members WHERE room_id = ?1 AND user_id = ?2")
        .ok()?
        .query_row(params![rid, user.as_str()], |r| r.get(0))
        .ok()
}

/// Writes the announcement item an event carries at `seq`.
fn announce(conn: &Connection, ev: &Event, rid: i64, seq: Seq, by: Option<&UserId>) -> R {
    let Some((text, data)) = announcement(&ev.body) else {
        return Err(missing("announcement text"));
    };
    let pos = ev.body.room_pos().map_or(0, |(_, p)| p.0);
    conn.prepare_cached(
        "INSERT INTO items (id, room_id, seq, pos, kind, sender, text, created_at, announcement)
         VALUES (?1, ?2, ?3, ?4, 'announcement', ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        item_key(rid, seq.0),
        rid,
        seq.0,
        pos,
        by.map(UserId::as_str),
        text,
        ev.at.0,
        data.to_string()
    ])?;
    conn.prepare_cached("UPDATE rooms SET last_seq = ?2, activity = ?3 WHERE id = ?1")?
        .execute(params![rid, seq.0, ev.at.0])?;
    Ok(())
}
