//! Projection of meetups and RSVPs. Each event moves its room's `last_pos`; the announced
//! ones also write their timeline item (`announce`).

use super::announce;
use crate::conn::Conn;
use confab_core::event::{Event, EventBody};
use confab_core::meetups::Rsvp;
use confab_core::store::StoreResult;

/// Applies `ev`, one of this area's events.
pub(super) fn apply(c: &mut Conn, ev: &Event) -> StoreResult<()> {
    let (app, at) = (ev.app.0, ev.at.0);
    match &ev.body {
        EventBody::MeetupCreated {
            room,
            meetup,
            organizer,
            name,
            location,
            takes_place_on,
            image_url,
            pos,
            seq,
        } => {
            // The organizer's answer starts at `yes`.
            c.exec(
                "WITH meetup AS (
                     INSERT INTO meetups (app_id, room_no, number, name, location,
                         takes_place_on, image_url, organizer, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
                 ), answer AS (
                     INSERT INTO rsvps (app_id, room_no, meetup_no, user_id, rsvp)
                     VALUES ($1, $2, $3, $8, 'yes')
                 )
                 UPDATE rooms SET last_pos = $10 WHERE app_id = $1 AND number = $2",
                &[
                    &app,
                    &room.0,
                    &meetup.0,
                    name,
                    location,
                    &takes_place_on.0,
                    image_url,
                    &organizer.as_str(),
                    &at,
                    &pos.0,
                ],
            )?;
            announce(c, ev, *seq, Some(organizer))?;
        }
        EventBody::MeetupUpdated {
            room,
            meetup,
            by,
            name,
            location,
            takes_place_on,
            image_url,
            pos,
            seq,
            ..
        } => {
            c.exec(
                "WITH meetup AS (
                     UPDATE meetups SET name = COALESCE($4, name),
                         location = COALESCE($5, location),
                         takes_place_on = COALESCE($6, takes_place_on),
                         image_url = COALESCE($7, image_url), updated_at = $8
                     WHERE app_id = $1 AND room_no = $2 AND number = $3
                 )
                 UPDATE rooms SET last_pos = $9 WHERE app_id = $1 AND number = $2",
                &[
                    &app,
                    &room.0,
                    &meetup.0,
                    name,
                    location,
                    &takes_place_on.map(|t| t.0),
                    image_url,
                    &at,
                    &pos.0,
                ],
            )?;
            if let Some(seq) = seq {
                announce(c, ev, *seq, Some(by))?;
            }
        }
        EventBody::MeetupCancelled {
            room,
            meetup,
            by,
            pos,
            seq,
        } => {
            c.exec(
                "WITH meetup AS (
                     UPDATE meetups SET cancelled = TRUE, updated_at = $4
                     WHERE app_id = $1 AND room_no = $2 AND number = $3
                 )
                 UPDATE rooms SET last_pos = $5 WHERE app_id = $1 AND number = $2",
                &[&app, &room.0, &meetup.0, &at, &pos.0],
            )?;
            announce(c, ev, *seq, Some(by))?;
        }
        EventBody::RsvpChanged {
            room,
            meetup,
            user,
            rsvp,
            pos,
        } => {
            // `none` is the absence of a row.
            let (user, rsvp_str) = (user.as_str(), rsvp.as_str());
            match rsvp {
                Rsvp::None => c.exec(
                    "WITH answer AS (
                         DELETE FROM rsvps
                         WHERE app_id = $1 AND room_no = $2 AND meetup_no = $3 AND user_id = $4
                     )
                     UPDATE rooms SET last_pos = $5 WHERE app_id = $1 AND number = $2",
                    &[&app, &room.0, &meetup.0, &user, &pos.0],
                )?,
                Rsvp::Yes | Rsvp::No | Rsvp::Maybe => c.exec(
                    "WITH answer AS (
                         INSERT INTO rsvps (app_id, room_no, meetup_no, user_id, rsvp)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (app_id, room_no, meetup_no, user_id) DO UPDATE SET rsvp = $5
                     )
                     UPDATE rooms SET last_pos = $6 WHERE app_id = $1 AND number = $2",
                    &[&app, &room.0, &meetup.0, &user, &rsvp_str, &pos.0],
                )?,
            };
        }
        other => return Err(super::misrouted(other, "meetups")),
    }
    Ok(())
}
