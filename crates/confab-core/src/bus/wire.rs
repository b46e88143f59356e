//! The bus wire type: what one node tells the others about a committed event, built from the
//! event by an exhaustive match that copies only the fields gateways need. An app's secret hash
//! and signing key have no field to go into, so they cannot reach the bus whatever an event
//! holds; app-level events (app created or renamed, users upserted, logged in or seen) produce
//! nothing at all. The encoding is JSON inside a versioned envelope, `{"v":1,"m":{...}}`.

use super::BusMessage;
use crate::event::{Event, EventBody, MemberAction};
use crate::ids::{AppId, MeetupNumber, PollNumber, Pos, RoomNumber, Seq, Timestamp, UserId};
use crate::meetups::{CloseReason, PollKind, PollOutcome, Results, Rsvp};
use crate::model::{Item, ItemKind, MemberState, Role, RoomKind, Visibility};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The version of the envelope and of everything inside it. A receiver refuses other versions
/// (a rolling upgrade that changes the wire runs both versions' decoders first).
pub const WIRE_VERSION: u16 = 1;

/// One committed change of a room, with everything a gateway needs to frame it for clients
/// without reading the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomChange {
    pub app: AppId,
    pub room: RoomNumber,
    pub pos: Pos,
    /// The timeline item this change made or touched, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<Seq>,
    pub at: Timestamp,
    pub change: ChangeData,
    /// That item as it stood when the change was committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<WireItem>,
}

/// What changed, as clients see it: the event's fields less the room, position, seq and any
/// message text (the item carries the current text). Serialized with its `type`, exactly the
/// `data` of a change in `GET /v1/rooms/{n}/changes` plus `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChangeData {
    RoomCreated {
        kind: RoomKind,
        name: Option<String>,
        image_url: Option<String>,
        visibility: Visibility,
        alias: Option<String>,
        creator: Option<UserId>,
        direct: Option<(UserId, UserId)>,
    },
    RoomUpdated {
        by: UserId,
        name: Option<String>,
        image_url: Option<String>,
        visibility: Option<Visibility>,
    },
    RoomDeleted {
        by: UserId,
    },
    Membership {
        user: UserId,
        by: UserId,
        action: MemberAction,
        state: MemberState,
        role: Role,
        new_owner: Option<UserId>,
    },
    MessagePosted {
        sender: Option<UserId>,
        reply_to: Option<Seq>,
        client_id: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        redacted: bool,
    },
    MessageEdited {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        redacted: bool,
    },
    MessageDeleted {
        by: Option<UserId>,
    },
    /// Times are RFC 3339 strings, as in every client-facing payload.
    MeetupCreated {
        meetup: MeetupNumber,
        organizer: UserId,
        name: String,
        location: String,
        takes_place_on: String,
        image_url: Option<String>,
    },
    MeetupUpdated {
        meetup: MeetupNumber,
        by: UserId,
        name: Option<String>,
        location: Option<String>,
        takes_place_on: Option<String>,
        image_url: Option<String>,
        poll: Option<PollNumber>,
    },
    MeetupCancelled {
        meetup: MeetupNumber,
        by: UserId,
    },
    RsvpChanged {
        meetup: MeetupNumber,
        user: UserId,
        rsvp: Rsvp,
    },
    /// The voter list is left out (it can be long): `GET /v1/rooms/{n}/polls/{p}` has it.
    PollCreated {
        poll: PollNumber,
        creator: UserId,
        question: String,
        kind: PollKind,
        choices: Vec<String>,
        max_selections: u32,
        results: Results,
        closes_at: Option<String>,
        meetup: Option<MeetupNumber>,
        voters_count: usize,
    },
    /// `choices` is absent for a poll whose results are undisclosed: members learn that a
    /// vote happened, not what it was.
    VoteCast {
        poll: PollNumber,
        user: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        choices: Option<Vec<u32>>,
    },
    VoteWithdrawn {
        poll: PollNumber,
        user: UserId,
    },
    PollClosed {
        poll: PollNumber,
        by: Option<UserId>,
        reason: CloseReason,
        tallies: Vec<i64>,
        outcome: PollOutcome,
        winner: Option<u32>,
        winning_choice: Option<String>,
    },
}

/// A timeline item on the wire (the domain [`Item`] is not a wire type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireItem {
    pub seq: Seq,
    pub pos: Pos,
    pub kind: ItemKind,
    pub sender: Option<UserId>,
    pub text: Option<String>,
    pub reply_to: Option<Seq>,
    pub reply_count: i64,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub deleted: bool,
    pub announcement: Option<serde_json::Value>,
    pub client_id: Option<String>,
}

/// Why bytes from the bus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("bus message of unknown version {0}")]
    Version(u16),
    #[error("malformed bus message: {0}")]
    Malformed(String),
}

impl ChangeData {
    /// What a room-scoped event shows clients; `None` for events outside a room's changes.
    pub fn from_body(body: &EventBody) -> Option<ChangeData> {
        use EventBody as E;
        // Exhaustive on purpose: a new event kind must decide here what (if anything) of it
        // may leave the node.
        Some(match body {
            E::AppCreated { .. }
            | E::AppRenamed { .. }
            | E::UserUpserted { .. }
            | E::UserLoggedIn { .. }
            | E::UserSeen { .. }
            | E::ReadMarkerSet { .. } => return None,
            E::RoomCreated {
                kind,
                name,
                image_url,
                visibility,
                alias,
                creator,
                direct,
                room: _,
                pos: _,
                seq: _,
            } => ChangeData::RoomCreated {
                kind: *kind,
                name: name.clone(),
                image_url: image_url.clone(),
                visibility: *visibility,
                alias: alias.clone(),
                creator: creator.clone(),
                direct: direct.clone(),
            },
            E::RoomUpdated {
                by,
                name,
                image_url,
                visibility,
                room: _,
                pos: _,
                seq: _,
            } => ChangeData::RoomUpdated {
                by: by.clone(),
                name: name.clone(),
                image_url: image_url.clone(),
                visibility: *visibility,
            },
            E::RoomDeleted { by, .. } => ChangeData::RoomDeleted { by: by.clone() },
            E::Membership {
                user,
                by,
                action,
                state,
                role,
                new_owner,
                room: _,
                pos: _,
                seq: _,
            } => ChangeData::Membership {
                user: user.clone(),
                by: by.clone(),
                action: *action,
                state: *state,
                role: *role,
                new_owner: new_owner.clone(),
            },
            E::MessagePosted {
                sender,
                reply_to,
                client_id,
                redacted,
                room: _,
                seq: _,
                pos: _,
                text: _,
            } => ChangeData::MessagePosted {
                sender: sender.clone(),
                reply_to: *reply_to,
                client_id: client_id.clone(),
                redacted: *redacted,
            },
            E::MessageEdited { redacted, .. } => ChangeData::MessageEdited {
                redacted: *redacted,
            },
            E::MessageDeleted { by, .. } => ChangeData::MessageDeleted { by: by.clone() },
            E::MeetupCreated {
                meetup,
                organizer,
                name,
                location,
                takes_place_on,
                image_url,
                room: _,
                pos: _,
                seq: _,
            } => ChangeData::MeetupCreated {
                meetup: *meetup,
                organizer: organizer.clone(),
                name: name.clone(),
                location: location.clone(),
                takes_place_on: takes_place_on.to_rfc3339(),
                image_url: image_url.clone(),
            },
            E::MeetupUpdated {
                meetup,
                by,
                name,
                location,
                takes_place_on,
                image_url,
                poll,
                room: _,
                pos: _,
                seq: _,
            } => ChangeData::MeetupUpdated {
                meetup: *meetup,
                by: by.clone(),
                name: name.clone(),
                location: location.clone(),
                takes_place_on: takes_place_on.map(Timestamp::to_rfc3339),
                image_url: image_url.clone(),
                poll: *poll,
            },
            E::MeetupCancelled { meetup, by, .. } => ChangeData::MeetupCancelled {
                meetup: *meetup,
                by: by.clone(),
            },
            E::RsvpChanged {
                meetup, user, rsvp, ..
            } => ChangeData::RsvpChanged {
                meetup: *meetup,
                user: user.clone(),
                rsvp: *rsvp,
            },
            E::PollCreated {
                poll,
                creator,
                question,
                kind,
                choices,
                max_selections,
                results,
                closes_at,
                meetup,
                voters,
                room: _,
                pos: _,
                seq: _,
            } => ChangeData::PollCreated {
                poll: *poll,
                creator: creator.clone(),
                question: question.clone(),
                kind: *kind,
                choices: choices.clone(),
                max_selections: *max_selections,
                results: *results,
                closes_at: closes_at.map(Timestamp::to_rfc3339),
                meetup: *meetup,
                voters_count: voters.len(),
            },
            E::VoteCast {
                poll,
                user,
                choices,
                secret,
                room: _,
                pos: _,
            } => ChangeData::VoteCast {
                poll: *poll,
                user: user.clone(),
                choices: (!secret).then(|| choices.clone()),
            },
            E::VoteWithdrawn { poll, user, .. } => ChangeData::VoteWithdrawn {
                poll: *poll,
                user: user.clone(),
            },
            E::PollClosed {
                poll,
                by,
                reason,
                tallies,
                outcome,
                winner,
                winning_choice,
                room: _,
                pos: _,
                seq: _,
            } => ChangeData::PollClosed {
                poll: *poll,
                by: by.clone(),
                reason: *reason,
                tallies: tallies.clone(),
                outcome: *outcome,
                winner: *winner,
                winning_choice: winning_choice.clone(),
            },
        })
    }

    /// The snake_case type name, the same as the event's.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChangeData::RoomCreated { .. } => "room_created",
            ChangeData::RoomUpdated { .. } => "room_updated",
            ChangeData::RoomDeleted { .. } => "room_deleted",
            ChangeData::Membership { .. } => "membership",
            ChangeData::MessagePosted { .. } => "message_posted",
            ChangeData::MessageEdited { .. } => "message_edited",
            ChangeData::MessageDeleted { .. } => "message_deleted",
            ChangeData::MeetupCreated { .. } => "meetup_created",
            ChangeData::MeetupUpdated { .. } => "meetup_updated",
            ChangeData::MeetupCancelled { .. } => "meetup_cancelled",
            ChangeData::RsvpChanged { .. } => "rsvp_changed",
            ChangeData::PollCreated { .. } => "poll_created",
            ChangeData::VoteCast { .. } => "vote_cast",
            ChangeData::VoteWithdrawn { .. } => "vote_withdrawn",
            ChangeData::PollClosed { .. } => "poll_closed",
        }
    }

    /// Whether the change alters who is subscribed to the room (a gateway must see it even
    /// when it follows none of the room's other changes).
    pub fn changes_membership(&self) -> bool {
        matches!(
            self,
            ChangeData::Membership { .. } | ChangeData::RoomDeleted { .. }
        )
    }

    /// The `data` object clients see: the fields without `type`.
    pub fn client_json(&self) -> serde_json::Value {
        // Serialising strings, numbers and enums of them cannot fail.
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(map) = &mut v {
            map.remove("type");
        }
        v
    }
}

impl From<&Item> for WireItem {
    fn from(i: &Item) -> Self {
        WireItem {
            seq: i.seq,
            pos: i.pos,
            kind: i.kind,
            sender: i.sender.clone(),
            text: i.text.clone(),
            reply_to: i.reply_to,
            reply_count: i.reply_count,
            created_at: i.created_at,
            edited_at: i.edited_at,
            deleted: i.deleted,
            announcement: i.announcement.clone(),
            client_id: i.client_id.clone(),
        }
    }
}

impl From<WireItem> for Item {
    fn from(i: WireItem) -> Self {
        Item {
            seq: i.seq,
            pos: i.pos,
            kind: i.kind,
            sender: i.sender,
            text: i.text,
            reply_to: i.reply_to,
            reply_count: i.reply_count,
            created_at: i.created_at,
            edited_at: i.edited_at,
            deleted: i.deleted,
            announcement: i.announcement,
            client_id: i.client_id,
        }
    }
}

/// The item a freshly posted message makes, known from its event alone (so the hot path
/// needs no read-back). `None` for every other event, and for a redacted post (replayed
/// after its deletion), whose item only the store knows.
pub fn new_message_item(ev: &Event) -> Option<Item> {
    match &ev.body {
        EventBody::MessagePosted {
            seq,
            pos,
            sender,
            text,
            reply_to,
            client_id,
            redacted: false,
            room: _,
        } => Some(Item {
            seq: *seq,
            pos: *pos,
            kind: ItemKind::Message,
            sender: sender.clone(),
            text: Some(text.clone()),
            reply_to: *reply_to,
            reply_count: 0,
            created_at: ev.at,
            edited_at: None,
            deleted: false,
            announcement: None,
            client_id: client_id.clone(),
        }),
        _ => None,
    }
}

impl BusMessage {
    /// What gateways must hear of a committed event, if anything. `item` is the timeline
    /// item the event made or touched, as the store has it after the commit.
    pub fn from_event(ev: &Event, item: Option<&Item>) -> Option<BusMessage> {
        if let EventBody::ReadMarkerSet { room, user, seq } = &ev.body {
            return Some(BusMessage::Read {
                app: ev.app,
                room: *room,
                user: user.clone(),
                seq: *seq,
            });
        }
        let change = ChangeData::from_body(&ev.body)?;
        let (room, pos) = ev.body.room_pos()?;
        Some(BusMessage::Change(Arc::new(RoomChange {
            app: ev.app,
            room,
            pos,
            seq: ev.body.item_seq(),
            at: ev.at,
            change,
            item: item.map(WireItem::from),
        })))
    }

    /// The bytes that travel: `{"v":1,"m":...}`.
    pub fn encode(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            v: u16,
            m: &'a BusMessage,
        }
        // Serialising plain data (no maps with non-string keys) cannot fail.
        serde_json::to_vec(&Envelope {
            v: WIRE_VERSION,
            m: self,
        })
        .unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<BusMessage, WireError> {
        #[derive(Deserialize)]
        struct Envelope {
            v: u16,
            m: BusMessage,
        }
        #[derive(Deserialize)]
        struct Head {
            v: u16,
        }
        match serde_json::from_slice::<Envelope>(bytes) {
            Ok(env) if env.v == WIRE_VERSION => Ok(env.m),
            Ok(env) => Err(WireError::Version(env.v)),
            // Another version may have another shape: name the version when it can be read.
            Err(e) => match serde_json::from_slice::<Head>(bytes) {
                Ok(head) if head.v != WIRE_VERSION => Err(WireError::Version(head.v)),
                _ => Err(WireError::Malformed(e.to_string())),
            },
        }
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
