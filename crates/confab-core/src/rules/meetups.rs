//! Meetups: creation by any joined member, edits and cancellation by the organizer or a room
//! admin, RSVPs by joined members.

use super::load::{load_room, next, require_joined};
use super::polls;
use crate::command::{CancelMeetup, CreateMeetup, Outcome, SetRsvp, UpdateMeetup};
use crate::error::{DomainError, ErrorCode};
use crate::event::EventBody;
use crate::ids::{AppId, MeetupNumber, Pos, RoomNumber};
use crate::meetups::{CloseReason, Meetup};
use crate::model::{Member, Role};
use crate::store::{StoreResult, Tx};

/// The meetup, which must exist; `live` also refuses a cancelled one.
pub(super) fn load_meetup(
    tx: &mut dyn Tx,
    app: AppId,
    room: RoomNumber,
    number: MeetupNumber,
    live: bool,
) -> StoreResult<Meetup> {
    let m = tx
        .meetup(app, room, number)?
        .ok_or_else(|| DomainError::new(ErrorCode::MeetupNotFound, "meetup not found"))?;
    if live && m.cancelled {
        return Err(
            DomainError::new(ErrorCode::MeetupCancelled, "the meetup was cancelled").into(),
        );
    }
    Ok(m)
}

fn require_organizer_or_admin(meetup: &Meetup, me: &Member) -> Result<(), DomainError> {
    if meetup.organizer != me.user && me.role < Role::Admin {
        return Err(DomainError::not_allowed(
            "only the organizer or a room admin may change this meetup",
        ));
    }
    Ok(())
}

pub(super) fn create(tx: &mut dyn Tx, cmd: CreateMeetup) -> StoreResult<Outcome> {
    let CreateMeetup {
        app,
        actor,
        room,
        name,
        location,
        takes_place_on,
        image_url,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    require_joined(tx, app, &rs, &actor)?;
    let number = MeetupNumber(tx.last_meetup_number(app, room)?.0 + 1);
    let (seq, pos) = next(&rs);
    tx.append(
        app,
        EventBody::MeetupCreated {
            room,
            meetup: number,
            organizer: actor,
            name,
            location,
            takes_place_on,
            image_url,
            pos,
            seq,
        },
    )?;
    Ok(Outcome::Meetup(number))
}

pub(super) fn update(tx: &mut dyn Tx, cmd: UpdateMeetup) -> StoreResult<Outcome> {
    let UpdateMeetup {
        app,
        actor,
        room,
        meetup,
        name,
        location,
        takes_place_on,
        image_url,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    let me = require_joined(tx, app, &rs, &actor)?;
    let m = load_meetup(tx, app, room, meetup, true)?;
    require_organizer_or_admin(&m, &me)?;
    // Only what differs is recorded; an edit that changes nothing logs nothing.
    let name = name.filter(|n| *n != m.name);
    let location = location.filter(|l| *l != m.location);
    let takes_place_on = takes_place_on.filter(|t| *t != m.takes_place_on);
    let image_url = image_url.filter(|u| Some(u) != m.image_url.as_ref());
    if name.is_none() && location.is_none() && takes_place_on.is_none() && image_url.is_none() {
        return Ok(Outcome::Meetup(meetup));
    }
    let moved = location.is_some() || takes_place_on.is_some();
    let (seq, pos) = next(&rs);
    tx.append(
        app,
        EventBody::MeetupUpdated {
            room,
            meetup,
            by: actor,
            name,
            location,
            takes_place_on,
            image_url,
            poll: None,
            pos,
            seq: moved.then_some(seq),
        },
    )?;
    Ok(Outcome::Meetup(meetup))
}

/// Cancels the meetup and closes its open polls (nothing moves a cancelled meetup).
/// Cancelling a cancelled meetup changes nothing.
pub(super) fn cancel(tx: &mut dyn Tx, cmd: CancelMeetup) -> StoreResult<Outcome> {
    let CancelMeetup {
        app,
        actor,
        room,
        meetup,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    let me = require_joined(tx, app, &rs, &actor)?;
    let m = load_meetup(tx, app, room, meetup, false)?;
    require_organizer_or_admin(&m, &me)?;
    if m.cancelled {
        return Ok(Outcome::Meetup(meetup));
    }
    let (seq, pos) = next(&rs);
    tx.append(
        app,
        EventBody::MeetupCancelled {
            room,
            meetup,
            by: actor.clone(),
            pos,
            seq,
        },
    )?;
    for poll in tx.open_polls(app, room, meetup)? {
        polls::close_now(
            tx,
            app,
            room,
            poll,
            Some(actor.clone()),
            CloseReason::MeetupCancelled,
        )?;
    }
    Ok(Outcome::Meetup(meetup))
}

pub(super) fn rsvp(tx: &mut dyn Tx, cmd: SetRsvp) -> StoreResult<Outcome> {
    let SetRsvp {
        app,
        actor,
        room,
        meetup,
        rsvp,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    require_joined(tx, app, &rs, &actor)?;
    load_meetup(tx, app, room, meetup, true)?;
    if tx.rsvp(app, room, meetup, &actor)? == rsvp {
        return Ok(Outcome::Meetup(meetup));
    }
    tx.append(
        app,
        EventBody::RsvpChanged {
            room,
            meetup,
            user: actor,
            rsvp,
            pos: Pos(rs.room.last_pos.0 + 1),
        },
    )?;
    Ok(Outcome::Meetup(meetup))
}
