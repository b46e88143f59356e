//! The announcements events put in a room's timeline. The match names every event, so a new
//! event cannot be forgotten here: the compiler asks whether it announces anything.

use crate::event::{EventBody, MemberAction};
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
        EventBody::AppCreated { .. }
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
