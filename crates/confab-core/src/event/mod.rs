//! The events of the append-only log. Every state change is one of these; the read models are
//! projections of them. Events are versioned: `EVENT_VERSION` is stored with each one, and
//! decoding upgrades older versions.

use crate::ids::{
    AppId, MeetupNumber, Offset, PollNumber, Pos, RoomNumber, Seq, Timestamp, UserId,
};
use crate::meetups::{CloseReason, PollKind, PollOutcome, Results, Rsvp};
use crate::model::{MemberState, Role, RoomKind, Visibility};
use serde::{Deserialize, Serialize};

/// The version events are written with.
pub const EVENT_VERSION: i64 = 1;

/// A committed event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub app: AppId,
    pub offset: Offset,
    pub at: Timestamp,
    pub body: EventBody,
}

/// What a membership change was, as the timeline announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberAction {
    /// Placed in the room by its creator (room creation, direct rooms).
    Added,
    Invited,
    Applied,
    Approved,
    Rejected,
    Joined,
    Left,
    Declined,
    Withdrew,
    Kicked,
    Banned,
    Unbanned,
    RoleChanged,
}

impl MemberAction {
    pub fn as_str(self) -> &'static str {
        use MemberAction::*;
        match self {
            Added => "added",
            Invited => "invited",
            Applied => "applied",
            Approved => "approved",
            Rejected => "rejected",
            Joined => "joined",
            Left => "left",
            Declined => "declined",
            Withdrew => "withdrew",
            Kicked => "kicked",
            Banned => "banned",
            Unbanned => "unbanned",
            RoleChanged => "role_changed",
        }
    }
}

/// Every kind of change. Room-scoped variants carry the `pos` (and `seq` when they add a timeline
/// item) assigned at decision time, so replay reproduces exactly the same numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    AppCreated {
        name: String,
        token: String,
        secret_hash: String,
        signing_key: String,
    },
    AppRenamed {
        name: String,
    },
    UserUpserted {
        user: UserId,
        name: Option<String>,
        image_url: Option<String>,
        email: Option<String>,
    },
    UserLoggedIn {
        user: UserId,
    },
    UserSeen {
        user: UserId,
    },
    RoomCreated {
        room: RoomNumber,
        kind: RoomKind,
        name: Option<String>,
        image_url: Option<String>,
        visibility: Visibility,
        alias: Option<String>,
        creator: Option<UserId>,
        /// For direct rooms: the two members, sorted.
        direct: Option<(UserId, UserId)>,
        pos: Pos,
        seq: Option<Seq>,
    },
    RoomUpdated {
        room: RoomNumber,
        by: UserId,
        name: Option<String>,
        image_url: Option<String>,
        visibility: Option<Visibility>,
        pos: Pos,
        seq: Option<Seq>,
    },
    RoomDeleted {
        room: RoomNumber,
        by: UserId,
        pos: Pos,
    },
    Membership {
        room: RoomNumber,
        user: UserId,
        by: UserId,
        action: MemberAction,
        state: MemberState,
        role: Role,
        /// When the room's owner leaves, who becomes owner.
        new_owner: Option<UserId>,
        pos: Pos,
        seq: Option<Seq>,
    },
    MessagePosted {
        room: RoomNumber,
        seq: Seq,
        pos: Pos,
        sender: Option<UserId>,
        text: String,
        reply_to: Option<Seq>,
        client_id: Option<String>,
        /// The message was deleted later. A deleted text must not stay readable anywhere, the
        /// log included: the store empties `text` of each `message_posted` and
        /// `message_edited` event of the message when it commits the delete, and sets this.
        /// Numbers, sender and place are kept, and a replay still ends with the same tombstone.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        redacted: bool,
    },
    MessageEdited {
        room: RoomNumber,
        seq: Seq,
        pos: Pos,
        text: String,
        /// As for `MessagePosted`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        redacted: bool,
    },
    MessageDeleted {
        room: RoomNumber,
        seq: Seq,
        pos: Pos,
        by: Option<UserId>,
    },
    ReadMarkerSet {
        room: RoomNumber,
        user: UserId,
        seq: Seq,
    },
    /// The organizer's answer starts at `yes` (no separate event).
    MeetupCreated {
        room: RoomNumber,
        meetup: MeetupNumber,
        organizer: UserId,
        name: String,
        location: String,
        takes_place_on: Timestamp,
        image_url: Option<String>,
        pos: Pos,
        seq: Seq,
    },
    /// Fields left `None` keep their value. A move (new time or place) is announced (`seq`);
    /// `poll` names the poll whose outcome moved the meetup.
    MeetupUpdated {
        room: RoomNumber,
        meetup: MeetupNumber,
        by: UserId,
        name: Option<String>,
        location: Option<String>,
        takes_place_on: Option<Timestamp>,
        image_url: Option<String>,
        poll: Option<PollNumber>,
        pos: Pos,
        seq: Option<Seq>,
    },
    MeetupCancelled {
        room: RoomNumber,
        meetup: MeetupNumber,
        by: UserId,
        pos: Pos,
        seq: Seq,
    },
    RsvpChanged {
        room: RoomNumber,
        meetup: MeetupNumber,
        user: UserId,
        rsvp: Rsvp,
        pos: Pos,
    },
    /// `voters` are the eligible voters, fixed now, sorted.
    PollCreated {
        room: RoomNumber,
        poll: PollNumber,
        creator: UserId,
        question: String,
        kind: PollKind,
        choices: Vec<String>,
        max_selections: u32,
        results: Results,
        closes_at: Option<Timestamp>,
        meetup: Option<MeetupNumber>,
        voters: Vec<UserId>,
        pos: Pos,
        seq: Seq,
    },
    /// The voter's whole standing vote (replacing any earlier one): choice indexes, sorted.
    /// `secret` when the poll's results are undisclosed: the choices are then shown to
    /// nobody but the store (the tallies tell after closing).
    VoteCast {
        room: RoomNumber,
        poll: PollNumber,
        user: UserId,
        choices: Vec<u32>,
        secret: bool,
        pos: Pos,
    },
    VoteWithdrawn {
        room: RoomNumber,
        poll: PollNumber,
        user: UserId,
        pos: Pos,
    },
    /// `by` is who closed it (`None` when the last vote or the deadline did). The tallies
    /// and outcome are recorded as they stood; `winning_choice` is the winner's text.
    PollClosed {
        room: RoomNumber,
        poll: PollNumber,
        by: Option<UserId>,
        reason: CloseReason,
        tallies: Vec<i64>,
        outcome: PollOutcome,
        winner: Option<u32>,
        winning_choice: Option<String>,
        pos: Pos,
        seq: Seq,
    },
}

impl EventBody {
    /// The snake_case type name, as stored and as shown in the log.
    pub fn type_name(&self) -> &'static str {
        use EventBody::*;
        match self {
            AppCreated { .. } => "app_created",
            AppRenamed { .. } => "app_renamed",
            UserUpserted { .. } => "user_upserted",
            UserLoggedIn { .. } => "user_logged_in",
            UserSeen { .. } => "user_seen",
            RoomCreated { .. } => "room_created",
            RoomUpdated { .. } => "room_updated",
            RoomDeleted { .. } => "room_deleted",
            Membership { .. } => "membership",
            MessagePosted { .. } => "message_posted",
            MessageEdited { .. } => "message_edited",
            MessageDeleted { .. } => "message_deleted",
            ReadMarkerSet { .. } => "read_marker_set",
            MeetupCreated { .. } => "meetup_created",
            MeetupUpdated { .. } => "meetup_updated",
            MeetupCancelled { .. } => "meetup_cancelled",
            RsvpChanged { .. } => "rsvp_changed",
            PollCreated { .. } => "poll_created",
            VoteCast { .. } => "vote_cast",
            VoteWithdrawn { .. } => "vote_withdrawn",
            PollClosed { .. } => "poll_closed",
        }
    }

    /// The room this event belongs to and the change position it took there, if any. The
    /// match names every event: one stored without its position would never reach `/changes`
    /// or a socket, so a new event must say here whether it has one.
    pub fn room_pos(&self) -> Option<(RoomNumber, Pos)> {
        use EventBody::*;
        match self {
            RoomCreated { room, pos, .. }
            | RoomUpdated { room, pos, .. }
            | RoomDeleted { room, pos, .. }
            | Membership { room, pos, .. }
            | MessagePosted { room, pos, .. }
            | MessageEdited { room, pos, .. }
            | MessageDeleted { room, pos, .. }
            | MeetupCreated { room, pos, .. }
            | MeetupUpdated { room, pos, .. }
            | MeetupCancelled { room, pos, .. }
            | RsvpChanged { room, pos, .. }
            | PollCreated { room, pos, .. }
            | VoteCast { room, pos, .. }
            | VoteWithdrawn { room, pos, .. }
            | PollClosed { room, pos, .. } => Some((*room, *pos)),
            AppCreated { .. }
            | AppRenamed { .. }
            | UserUpserted { .. }
            | UserLoggedIn { .. }
            | UserSeen { .. }
            | ReadMarkerSet { .. } => None,
        }
    }

    /// The room this event concerns, if any (read markers have a room but no position).
    pub fn room(&self) -> Option<RoomNumber> {
        match self {
            EventBody::ReadMarkerSet { room, .. } => Some(*room),
            other => other.room_pos().map(|(r, _)| r),
        }
    }

    /// The timeline item this event created or changed, if any.
    pub fn item_seq(&self) -> Option<Seq> {
        use EventBody::*;
        match self {
            RoomCreated { seq, .. }
            | RoomUpdated { seq, .. }
            | Membership { seq, .. }
            | MeetupUpdated { seq, .. } => *seq,
            MessagePosted { seq, .. }
            | MessageEdited { seq, .. }
            | MessageDeleted { seq, .. }
            | MeetupCreated { seq, .. }
            | MeetupCancelled { seq, .. }
            | PollCreated { seq, .. }
            | PollClosed { seq, .. } => Some(*seq),
            AppCreated { .. }
            | AppRenamed { .. }
            | UserUpserted { .. }
            | UserLoggedIn { .. }
            | UserSeen { .. }
            | RoomDeleted { .. }
            | ReadMarkerSet { .. }
            | RsvpChanged { .. }
            | VoteCast { .. }
            | VoteWithdrawn { .. } => None,
        }
    }

    /// Decodes a stored event of any known version.
    pub fn decode(version: i64, json: &str) -> Result<EventBody, String> {
        match version {
            1 => serde_json::from_str(json).map_err(|e| e.to_string()),
            v => Err(format!("unknown event version {v}")),
        }
    }

    pub fn encode(&self) -> String {
        // Serialising a derive(Serialize) enum of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

mod public;
