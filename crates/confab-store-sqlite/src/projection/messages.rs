//! Timeline messages: posted (with the reply count of their parent), edited, deleted.

use super::{Cx, R, misrouted};
use crate::rows::item_key;
use confab_core::event::EventBody;
use confab_core::ids::UserId;
use rusqlite::params;

pub(super) fn apply(cx: &Cx<'_>) -> R {
    let (conn, at) = (cx.conn, cx.at());
    match &cx.ev.body {
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
            let rid = cx.rid(*room)?;
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
            let rid = cx.rid(*room)?;
            conn.prepare_cached(
                "UPDATE items SET text = ?2, edited_at = ?3, pos = ?4 WHERE id = ?1",
            )?
            .execute(params![item_key(rid, seq.0), text, at, pos.0])?;
            conn.prepare_cached("UPDATE rooms SET last_pos = ?2 WHERE id = ?1")?
                .execute(params![rid, pos.0])?;
        }
        EventBody::MessageDeleted { room, seq, pos, .. } => {
            let rid = cx.rid(*room)?;
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
        other => return Err(misrouted(other)),
    }
    Ok(())
}
