//! Projection of rooms: creation, settings, deletion.

use super::{Delta, announce};
use crate::conn::Conn;
use crate::rows::{direct_key, kind_str, visibility_str};
use confab_core::event::{Event, EventBody};
use confab_core::ids::UserId;
use confab_core::store::StoreResult;

/// Applies `ev`, one of this area's events.
pub(super) fn apply(c: &mut Conn, ev: &Event, d: &mut Delta) -> StoreResult<()> {
    let (app, at) = (ev.app.0, ev.at.0);
    match &ev.body {
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
            c.exec(
                "INSERT INTO rooms (app_id, number, kind, name, image_url, visibility, alias, \
                    creator, direct_key, created_at, updated_at, last_pos, last_seq, activity)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, 0, $10)",
                &[
                    &app,
                    &room.0,
                    &kind_str(*kind),
                    name,
                    image_url,
                    &visibility_str(*visibility),
                    alias,
                    &creator.as_ref().map(UserId::as_str),
                    &dkey,
                    &at,
                    &pos.0,
                ],
            )?;
            d.rooms += 1;
            if let Some(seq) = seq {
                announce(c, ev, *seq, creator.as_ref())?;
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
            c.exec(
                "UPDATE rooms SET name = COALESCE($3, name), image_url = COALESCE($4, image_url),
                    visibility = COALESCE($5, visibility), updated_at = $6, last_pos = $7
                 WHERE app_id = $1 AND number = $2",
                &[
                    &app,
                    &room.0,
                    name,
                    image_url,
                    &visibility.map(visibility_str),
                    &at,
                    &pos.0,
                ],
            )?;
            if let Some(seq) = seq {
                announce(c, ev, *seq, Some(by))?;
            }
        }
        EventBody::RoomDeleted { room, pos, .. } => {
            let row = c.one(
                "UPDATE rooms SET deleted = TRUE, alias = NULL, last_pos = $3, updated_at = $4
                 WHERE app_id = $1 AND number = $2 RETURNING messages_count",
                &[&app, &room.0, &pos.0, &at],
            )?;
            let messages: i64 = crate::rows::get(&row, 0)?;
            d.rooms -= 1;
            d.messages -= messages;
        }
        other => return Err(super::misrouted(other, "rooms")),
    }
    Ok(())
}
