//! Polls: creation with a fixed set of eligible voters, votes checked before anything is
//! logged, and closing (by the last vote, by hand, at the deadline) with the outcome recorded
//! and, for a decided reschedule or relocate poll, the meetup moved in the same transaction.

use super::load::{load_room, next, require_joined};
use super::meetups::load_meetup;
use crate::command::{ClosePoll, CreatePoll, Outcome, Vote};
use crate::error::{DomainError, ErrorCode};
use crate::event::EventBody;
use crate::ids::{AppId, PollNumber, Pos, RoomNumber, Timestamp, UserId};
use crate::meetups::{CloseReason, Poll, PollKind, PollOutcome, Results};
use crate::model::Role;
use crate::store::{StoreResult, Tx};

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::new(ErrorCode::InvalidInput, message)
}

fn load_poll(
    tx: &mut dyn Tx,
    app: AppId,
    room: RoomNumber,
    number: PollNumber,
) -> StoreResult<Poll> {
    tx.poll(app, room, number)?
        .ok_or_else(|| DomainError::new(ErrorCode::PollNotFound, "poll not found").into())
}

fn closed() -> DomainError {
    DomainError::new(ErrorCode::PollClosed, "the poll is closed")
}

pub(super) fn create(tx: &mut dyn Tx, cmd: CreatePoll) -> StoreResult<Outcome> {
    let CreatePoll {
        app,
        actor,
        room,
        question,
        kind,
        choices,
        max_selections,
        results,
        closes_at,
        meetup,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    require_joined(tx, app, &rs, &actor)?;
    if kind != PollKind::Generic && meetup.is_none() {
        return Err(invalid(format!(
            "a {} poll belongs to a meetup: give \"meetup\"",
            kind.as_str()
        ))
        .into());
    }
    if let Some(t) = closes_at
        && t <= tx.now()
    {
        return Err(invalid("closes_at must be in the future").into());
    }
    let mut voters = tx.joined_members(app, room)?;
    if let Some(m) = meetup {
        load_meetup(tx, app, room, m, true)?;
        let declined = tx.declined(app, room, m)?;
        voters.retain(|u| !declined.contains(u));
    }
    voters.sort();
    let number = PollNumber(tx.last_poll_number(app, room)?.0 + 1);
    let (seq, pos) = next(&rs);
    tx.append(
        app,
        EventBody::PollCreated {
            room,
            poll: number,
            creator: actor,
            question,
            kind,
            choices,
            max_selections,
            results,
            closes_at,
            meetup,
            voters,
            pos,
            seq,
        },
    )?;
    Ok(Outcome::Poll(number))
}

/// Checks a vote against the poll; nothing is logged for a refused one.
fn check_choices(poll: &Poll, choices: &[u32]) -> Result<(), DomainError> {
    if let Some(bad) = choices.iter().find(|c| **c as usize >= poll.choices.len()) {
        return Err(DomainError::new(
            ErrorCode::ChoiceOutOfRange,
            format!(
                "choice {bad} does not exist: choices are 0 to {}",
                poll.choices.len() - 1
            ),
        ));
    }
    if choices.len() > poll.max_selections as usize {
        return Err(DomainError::new(
            ErrorCode::TooManyChoices,
            format!(
                "{} choices given; this poll takes at most {}",
                choices.len(),
                poll.max_selections
            ),
        ));
    }
    let mut sorted = choices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != choices.len() {
        return Err(invalid("a choice is given more than once"));
    }
    Ok(())
}

pub(super) fn vote(tx: &mut dyn Tx, cmd: Vote) -> StoreResult<Outcome> {
    let Vote {
        app,
        actor,
        room,
        poll,
        mut choices,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    require_joined(tx, app, &rs, &actor)?;
    let p = load_poll(tx, app, room, poll)?;
    if !p.is_open(tx.now()) {
        return Err(closed().into());
    }
    let Some(standing) = tx.ballot(app, room, poll, &actor)? else {
        return Err(DomainError::new(
            ErrorCode::NotEligible,
            "you are not an eligible voter of this poll",
        )
        .into());
    };
    check_choices(&p, &choices)?;
    choices.sort_unstable();
    if choices == standing {
        return Ok(Outcome::Poll(poll));
    }
    let pos = Pos(rs.room.last_pos.0 + 1);
    if choices.is_empty() {
        tx.append(
            app,
            EventBody::VoteWithdrawn {
                room,
                poll,
                user: actor,
                pos,
            },
        )?;
        return Ok(Outcome::Poll(poll));
    }
    tx.append(
        app,
        EventBody::VoteCast {
            room,
            poll,
            user: actor,
            choices,
            secret: p.results == Results::Undisclosed,
            pos,
        },
    )?;
    // The vote that completes the poll closes it in the same transaction.
    let after = load_poll(tx, app, room, poll)?;
    if after.voted_count >= after.voters_count {
        close_now(tx, app, room, poll, None, CloseReason::AllVoted)?;
    }
    Ok(Outcome::Poll(poll))
}

pub(super) fn close(tx: &mut dyn Tx, cmd: ClosePoll) -> StoreResult<Outcome> {
    let ClosePoll {
        app,
        actor,
        room,
        poll,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    let p = load_poll(tx, app, room, poll)?;
    let past_deadline = p.closes_at.is_some_and(|t| t <= tx.now());
    match &actor {
        Some(a) => {
            let me = require_joined(tx, app, &rs, a)?;
            let organizer = match p.meetup {
                Some(m) => Some(load_meetup(tx, app, room, m, false)?.organizer),
                None => None,
            };
            if p.creator != *a && organizer.as_ref() != Some(a) && me.role < Role::Admin {
                return Err(DomainError::not_allowed(
                    "only the poll's creator, the meetup's organizer or a room admin may close it",
                )
                .into());
            }
        }
        // The server closes only what its deadline has closed already.
        None if !past_deadline => return Ok(Outcome::Poll(poll)),
        None => {}
    }
    if p.closed.is_some() {
        return Ok(Outcome::Poll(poll));
    }
    let (by, reason) = if past_deadline {
        (None, CloseReason::Deadline)
    } else {
        (actor, CloseReason::Closed)
    };
    close_now(tx, app, room, poll, by, reason)?;
    Ok(Outcome::Poll(poll))
}

/// Closes an open poll: records its tallies and outcome and, when a reschedule or relocate
/// poll is decided, moves its meetup (if that is still on) to the winner.
pub(super) fn close_now(
    tx: &mut dyn Tx,
    app: AppId,
    room: RoomNumber,
    poll: PollNumber,
    by: Option<UserId>,
    reason: CloseReason,
) -> StoreResult<()> {
    let p = load_poll(tx, app, room, poll)?;
    let (outcome, winner) = PollOutcome::of(&p.tallies);
    let winning_choice = winner.and_then(|w| p.choices.get(w as usize).cloned());
    let rs = load_room(tx, app, room)?;
    let (seq, pos) = next(&rs);
    tx.append(
        app,
        EventBody::PollClosed {
            room,
            poll,
            by,
            reason,
            tallies: p.tallies.clone(),
            outcome,
            winner,
            winning_choice: winning_choice.clone(),
            pos,
            seq,
        },
    )?;
    let (Some(meetup), Some(choice)) = (p.meetup, winning_choice) else {
        return Ok(());
    };
    let m = load_meetup(tx, app, room, meetup, false)?;
    if m.cancelled {
        return Ok(());
    }
    let (location, takes_place_on) = match p.kind {
        PollKind::Generic => return Ok(()),
        PollKind::Relocate => (Some(choice).filter(|c| *c != m.location), None),
        // Choices were checked to be times when the poll was made.
        PollKind::Reschedule => (
            None,
            Timestamp::parse_rfc3339(&choice).filter(|t| *t != m.takes_place_on),
        ),
    };
    if location.is_none() && takes_place_on.is_none() {
        return Ok(());
    }
    let rs = load_room(tx, app, room)?;
    let (seq, pos) = next(&rs);
    tx.append(
        app,
        EventBody::MeetupUpdated {
            room,
            meetup,
            by: p.creator,
            name: None,
            location,
            takes_place_on,
            image_url: None,
            poll: Some(poll),
            pos,
            seq: Some(seq),
        },
    )?;
    Ok(())
}
