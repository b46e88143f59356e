//! Meetups and RSVPs: created (the organizer answering `yes`), updated, cancelled, answered.
//! Each is a change of its room (its position); creations, moves and cancellations are
//! announcements too.

use super::{Cx, R, misrouted};
use confab_core::event::EventBody;
use confab_core::meetups::Rsvp;
use rusqlite::params;

pub(super) fn apply(cx: &Cx<'_>) -> R {
    let (conn, at) = (cx.conn, cx.at());
    match &cx.ev.body {
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
            let rid = cx.rid(*room)?;
            conn.prepare_cached(
                "INSERT INTO meetups (room_id, number, name, location, takes_place_on, image_url,
                    organizer, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            )?
            .execute(params![
                rid,
                meetup.0,
                name,
                location,
                takes_place_on.0,
                image_url,
                organizer.as_str(),
                at
            ])?;
            set_rsvp(cx, rid, meetup.0, organizer.as_str(), Rsvp::Yes)?;
            cx.advance(rid, *pos)?;
            cx.announce(rid, *seq, Some(organizer))?;
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
            let rid = cx.rid(*room)?;
            conn.prepare_cached(
                "UPDATE meetups SET name = COALESCE(?3, name), location = COALESCE(?4, location),
                    takes_place_on = COALESCE(?5, takes_place_on),
                    image_url = COALESCE(?6, image_url), updated_at = ?7
                 WHERE room_id = ?1 AND number = ?2",
            )?
            .execute(params![
                rid,
                meetup.0,
                name,
                location,
                takes_place_on.map(|t| t.0),
                image_url,
                at
            ])?;
            cx.advance(rid, *pos)?;
            if let Some(seq) = seq {
                cx.announce(rid, *seq, Some(by))?;
            }
        }
        EventBody::MeetupCancelled {
            room,
            meetup,
            by,
            pos,
            seq,
        } => {
            let rid = cx.rid(*room)?;
            conn.prepare_cached(
                "UPDATE meetups SET cancelled = 1, updated_at = ?3 WHERE room_id = ?1 AND number = ?2",
            )?
            .execute(params![rid, meetup.0, at])?;
            cx.advance(rid, *pos)?;
            cx.announce(rid, *seq, Some(by))?;
        }
        EventBody::RsvpChanged {
            room,
            meetup,
            user,
            rsvp,
            pos,
        } => {
            let rid = cx.rid(*room)?;
            set_rsvp(cx, rid, meetup.0, user.as_str(), *rsvp)?;
            cx.advance(rid, *pos)?;
        }
        other => return Err(misrouted(other)),
    }
    Ok(())
}

/// `none` is the absence of a row.
fn set_rsvp(cx: &Cx<'_>, rid: i64, meetup: i64, user: &str, rsvp: Rsvp) -> R {
    if rsvp == Rsvp::None {
        cx.conn
            .prepare_cached(
                "DELETE FROM rsvps WHERE room_id = ?1 AND meetup = ?2 AND user_id = ?3",
            )?
            .execute(params![rid, meetup, user])?;
    } else {
        cx.conn
            .prepare_cached(
                "INSERT INTO rsvps (room_id, meetup, user_id, rsvp) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (room_id, meetup, user_id) DO UPDATE SET rsvp = ?4",
            )?
            .execute(params![rid, meetup, user, rsvp.as_str()])?;
    }
    Ok(())
}
