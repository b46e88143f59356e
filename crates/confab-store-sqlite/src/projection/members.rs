//! Memberships: every membership change (with the room's joined count and a new owner) and
//! read markers.

use super::{Cx, R, misrouted};
use crate::rows::{self, role_str};
use confab_core::event::EventBody;
use confab_core::ids::UserId;
use confab_core::model::MemberState;
use rusqlite::{Connection, params};

pub(super) fn apply(cx: &Cx<'_>) -> R {
    let (conn, app, at) = (cx.conn, cx.app(), cx.at());
    match &cx.ev.body {
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
            let rid = cx.rid(*room)?;
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
                cx.announce(rid, *seq, Some(by))?;
            }
        }
        EventBody::ReadMarkerSet { room, user, seq } => {
            let rid = cx.rid(*room)?;
            conn.prepare_cached(
                "UPDATE members SET read_seq = MAX(read_seq, ?3) WHERE room_id = ?1 AND user_id = ?2",
            )?
            .execute(params![rid, user.as_str(), seq.0])?;
        }
        other => return Err(misrouted(other)),
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
