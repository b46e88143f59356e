//! Projection of messages one at a time (the reference for the writer's set-based sends,
//! `pending`): posted, edited, deleted, and read markers.

use super::Delta;
use crate::conn::Conn;
use confab_core::event::{Event, EventBody};
use confab_core::ids::UserId;
use confab_core::search::fold;
use confab_core::store::StoreResult;

/// Applies `ev`, one of this area's events.
pub(super) fn apply(c: &mut Conn, ev: &Event, d: &mut Delta) -> StoreResult<()> {
    let (app, at) = (ev.app.0, ev.at.0);
    match &ev.body {
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
            // One round trip for the whole send: the item, its parent's reply count and the
            // room's counters.
            c.exec(
                "WITH item AS (
                     INSERT INTO items (app_id, room_no, seq, pos, kind, sender, text, folded,
                         reply_to, created_at, client_id)
                     VALUES ($1, $2, $3, $4, 'message', $5, $6, $7, $8, $9, $10)
                 ), parent AS (
                     UPDATE items SET reply_count = reply_count + 1
                     WHERE $8::BIGINT IS NOT NULL AND app_id = $1 AND room_no = $2 AND seq = $8
                 )
                 UPDATE rooms SET last_seq = $3, last_pos = $4,
                     messages_count = messages_count + 1, activity = $9
                 WHERE app_id = $1 AND number = $2",
                &[
                    &app,
                    &room.0,
                    &seq.0,
                    &pos.0,
                    &sender.as_ref().map(UserId::as_str),
                    text,
                    &fold(text),
                    &reply_to.map(|s| s.0),
                    &at,
                    client_id,
                ],
            )?;
            d.messages += 1;
        }
        EventBody::MessageEdited {
            room,
            seq,
            pos,
            text,
            ..
        } => {
            c.exec(
                "WITH item AS (
                     UPDATE items SET text = $4, folded = $5, edited_at = $6, pos = $7
                     WHERE app_id = $1 AND room_no = $2 AND seq = $3
                 )
                 UPDATE rooms SET last_pos = $7 WHERE app_id = $1 AND number = $2",
                &[&app, &room.0, &seq.0, text, &fold(text), &at, &pos.0],
            )?;
        }
        EventBody::MessageDeleted { room, seq, pos, .. } => {
            let row = c.one(
                "UPDATE items SET text = NULL, folded = NULL, deleted = TRUE, pos = $4,
                     edited_at = $5
                 WHERE app_id = $1 AND room_no = $2 AND seq = $3 RETURNING reply_to",
                &[&app, &room.0, &seq.0, &pos.0, &at],
            )?;
            let parent: Option<i64> = crate::rows::get(&row, 0)?;
            c.exec(
                "WITH parent AS (
                     UPDATE items SET reply_count = reply_count - 1
                     WHERE $4::BIGINT IS NOT NULL AND app_id = $1 AND room_no = $2 AND seq = $4
                 )
                 UPDATE rooms SET last_pos = $3, messages_count = messages_count - 1
                 WHERE app_id = $1 AND number = $2",
                &[&app, &room.0, &pos.0, &parent],
            )?;
            d.messages -= 1;
        }
        EventBody::ReadMarkerSet { room, user, seq } => {
            c.exec(
                "UPDATE members SET read_seq = GREATEST(read_seq, $4)
                 WHERE app_id = $1 AND room_no = $2 AND user_id = $3",
                &[&app, &room.0, &user.as_str(), &seq.0],
            )?;
        }
        other => return Err(super::misrouted(other, "messages")),
    }
    Ok(())
}
