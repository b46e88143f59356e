//! The announcements events put in a room's timeline. The match names every event, so a new
//! event cannot be forgotten here: the compiler asks whether it announces anything.

use crate::event::{EventBody, MemberAction};
use crate::meetups::PollOutcome;
use serde_json::json;

/// The text and structured form of the announcement an event puts in the timeline.
pub fn announcement(body: &EventBody) -> Option<(String, serde_json::Value)> {
    match body {
        EventBody::RoomCreated { creator, name, .. } => {
            // A room the app made itself has no creator and starts with no announcement.
            let c = creator.as_ref()?;
            Some((
                match name {
                    Some(n) => format!("{c} created the room \"{n}\""),
                    None => format!("{c} created the room"),
                },
                json!({"type": "room_created", "by": c}),
            ))
        }
        EventBody::RoomUpdated { by, name, .. } => {
            // Only a new name is announced; image and visibility changes are not.
            let n = name.as_ref()?;
            Some((
                format!("{by} renamed the room to \"{n}\""),
                json!({"type": "room_renamed", "by": by, "name": n}),
            ))
        }
        EventBody::Membership {
            user, by, action, ..
        } => {
            let text = match action {
                MemberAction::Added => format!("{by} added {user}"),
                MemberAction::Invited => format!("{by} invited {user}"),
                MemberAction::Applied => format!("{user} asked to join"),
                MemberAction::Approved => format!("{by} approved {user}"),
                MemberAction::Rejected => format!("{by} rejected {user}"),
                MemberAction::Joined => format!("{user} joined"),
                MemberAction::Left => format!("{user} left"),
                MemberAction::Declined => format!("{user} declined the invitation"),
                MemberAction::Withdrew => format!("{user} withdrew the request to join"),
                MemberAction::Kicked => format!("{by} removed {user}"),
                MemberAction::Banned => format!("{by} banned {user}"),
                MemberAction::Unbanned => format!("{by} lifted the ban on {user}"),
                MemberAction::RoleChanged => return None,
            };
            Some((
                text,
                json!({"type": format!("member_{}", action.as_str()), "user": user, "by": by}),
            ))
        }
        EventBody::MeetupCreated {
            meetup,
            organizer,
            name,
            location,
            takes_place_on,
            ..
        } => {
            let when = takes_place_on.to_rfc3339();
            Some((
                format!("{organizer} planned \"{name}\" at {location} on {when}"),
                json!({
                    "type": "meetup_created", "by": organizer, "meetup": meetup, "name": name,
                    "location": location, "takes_place_on": when,
                }),
            ))
        }
        EventBody::MeetupUpdated {
            meetup,
            by,
            location,
            takes_place_on,
            poll,
            seq,
            ..
        } => {
            // Only moves (a new time or place) are announced.
            seq.as_ref()?;
            let when = takes_place_on.map(|t| t.to_rfc3339());
            let to = match (&when, location) {
                (Some(w), Some(l)) => format!("{l} on {w}"),
                (Some(w), None) => w.clone(),
                (None, Some(l)) => l.clone(),
                (None, None) => return None,
            };
            let text = match poll {
                Some(p) => format!("poll {p} moved meetup {meetup} to {to}"),
                None => format!("{by} moved meetup {meetup} to {to}"),
            };
            Some((
                text,
                json!({
                    "type": "meetup_moved", "by": by, "meetup": meetup, "poll": poll,
                    "location": location, "takes_place_on": when,
                }),
            ))
        }
        EventBody::MeetupCancelled { meetup, by, .. } => Some((
            format!("{by} cancelled meetup {meetup}"),
            json!({"type": "meetup_cancelled", "by": by, "meetup": meetup}),
        )),
        EventBody::PollCreated {
            poll,
            creator,
            question,
            meetup,
            kind,
            ..
        } => Some((
            format!("{creator} created a poll: \"{question}\""),
            json!({
                "type": "poll_created", "by": creator, "poll": poll, "question": question,
                "kind": kind, "meetup": meetup,
            }),
        )),
        EventBody::PollClosed {
            poll,
            by,
            outcome,
            winning_choice,
            ..
        } => {
            let text = match (outcome, winning_choice) {
                (PollOutcome::Decided, Some(c)) => format!("poll {poll} closed: \"{c}\" won"),
                (PollOutcome::Tie, _) => {
                    format!("poll {poll} closed in a tie; nothing changes")
                }
                _ => format!("poll {poll} closed with no votes; nothing changes"),
            };
            Some((
                text,
                json!({
                    "type": "poll_closed", "by": by, "poll": poll, "outcome": outcome,
                    "winning_choice": winning_choice,
                }),
            ))
        }
        EventBody::AppCreated { .. }
        | EventBody::RsvpChanged { .. }
        | EventBody::VoteCast { .. }
        | EventBody::VoteWithdrawn { .. }
        | EventBody::AppRenamed { .. }
        | EventBody::UserUpserted { .. }
        | EventBody::UserLoggedIn { .. }
        | EventBody::UserSeen { .. }
        | EventBody::RoomDeleted { .. }
        | EventBody::MessagePosted { .. }
        | EventBody::MessageEdited { .. }
        | EventBody::MessageDeleted { .. }
        | EventBody::ReadMarkerSet { .. } => None,
    }
}
