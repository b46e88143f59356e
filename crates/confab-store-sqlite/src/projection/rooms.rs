//! The room rows: created (with the app's room counter), updated, deleted.

use super::{Cx, R, misrouted};
use crate::rows::{direct_key, kind_str, visibility_str};
use confab_core::event::EventBody;
use confab_core::ids::UserId;
use rusqlite::params;

pub(super) fn apply(cx: &Cx<'_>) -> R {
    let (conn, app, at) = (cx.conn, cx.app(), cx.at());
    match &cx.ev.body {
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
                cx.announce(cx.rid(*room)?, *seq, creator.as_ref())?;
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
                cx.announce(cx.rid(*room)?, *seq, Some(by))?;
            }
        }
        EventBody::RoomDeleted { room, pos, .. } => {
            let rid = cx.rid(*room)?;
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
        other => return Err(misrouted(other)),
    }
    Ok(())
}
