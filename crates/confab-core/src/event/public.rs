//! What integrations and clients may see of each event: an explicit mapping per event type,
//! so a field added to an event stays private until it is named here.

use super::EventBody;
use crate::ids::Timestamp;

impl EventBody {
    /// The event as integrations may see it (`/v1/events`). Each event lists the fields it
    /// shows, so a field added to an event stays private until it is named here: nothing
    /// reaches an integration by being left off a list of secrets.
    pub fn public_json(&self) -> serde_json::Value {
        use EventBody::*;
        use serde_json::json;
        match self {
            // The secret's hash and the signing key never leave the server.
            AppCreated {
                name,
                token,
                secret_hash: _,
                signing_key: _,
            } => json!({"name": name, "token": token}),
            AppRenamed { name } => json!({"name": name}),
            UserUpserted {
                user,
                name,
                image_url,
                email,
            } => json!({"user": user, "name": name, "image_url": image_url, "email": email}),
            UserLoggedIn { user } | UserSeen { user } => json!({"user": user}),
            RoomCreated {
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
            } => json!({
                "room": room, "kind": kind, "name": name, "image_url": image_url,
                "visibility": visibility, "alias": alias, "creator": creator, "direct": direct,
                "pos": pos, "seq": seq,
            }),
            RoomUpdated {
                room,
                by,
                name,
                image_url,
                visibility,
                pos,
                seq,
            } => json!({
                "room": room, "by": by, "name": name, "image_url": image_url,
                "visibility": visibility, "pos": pos, "seq": seq,
            }),
            RoomDeleted { room, by, pos } => json!({"room": room, "by": by, "pos": pos}),
            Membership {
                room,
                user,
                by,
                action,
                state,
                role,
                new_owner,
                pos,
                seq,
            } => json!({
                "room": room, "user": user, "by": by, "action": action, "state": state,
                "role": role, "new_owner": new_owner, "pos": pos, "seq": seq,
            }),
            MessagePosted {
                room,
                seq,
                pos,
                sender,
                text,
                reply_to,
                client_id,
                redacted,
            } => {
                let mut v = json!({
                    "room": room, "seq": seq, "pos": pos, "sender": sender, "text": text,
                    "reply_to": reply_to, "client_id": client_id,
                });
                mark_redacted(&mut v, *redacted);
                v
            }
            MessageEdited {
                room,
                seq,
                pos,
                text,
                redacted,
            } => {
                let mut v = json!({"room": room, "seq": seq, "pos": pos, "text": text});
                mark_redacted(&mut v, *redacted);
                v
            }
            MessageDeleted { room, seq, pos, by } => {
                json!({"room": room, "seq": seq, "pos": pos, "by": by})
            }
            ReadMarkerSet { room, user, seq } => json!({"room": room, "user": user, "seq": seq}),
            MeetupCreated {
                room,
                meetup,
                organizer,
                name,
                location,
                takes_place_on,
                image_url,
                pos,
                seq,
            } => json!({
                "room": room, "meetup": meetup, "organizer": organizer, "name": name,
                "location": location, "takes_place_on": takes_place_on.to_rfc3339(),
                "image_url": image_url, "pos": pos, "seq": seq,
            }),
            MeetupUpdated {
                room,
                meetup,
                by,
                name,
                location,
                takes_place_on,
                image_url,
                poll,
                pos,
                seq,
            } => json!({
                "room": room, "meetup": meetup, "by": by, "name": name, "location": location,
                "takes_place_on": takes_place_on.map(Timestamp::to_rfc3339),
                "image_url": image_url, "poll": poll, "pos": pos, "seq": seq,
            }),
            MeetupCancelled {
                room,
                meetup,
                by,
                pos,
                seq,
            } => json!({"room": room, "meetup": meetup, "by": by, "pos": pos, "seq": seq}),
            RsvpChanged {
                room,
                meetup,
                user,
                rsvp,
                pos,
            } => json!({"room": room, "meetup": meetup, "user": user, "rsvp": rsvp, "pos": pos}),
            PollCreated {
                room,
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
                pos,
                seq,
            } => json!({
                "room": room, "poll": poll, "creator": creator, "question": question,
                "kind": kind, "choices": choices, "max_selections": max_selections,
                "results": results, "closes_at": closes_at.map(Timestamp::to_rfc3339),
                "meetup": meetup, "voters": voters, "pos": pos, "seq": seq,
            }),
            // A secret ballot says that the user voted, never what.
            VoteCast {
                room,
                poll,
                user,
                choices,
                secret,
                pos,
            } => {
                let mut v = json!({"room": room, "poll": poll, "user": user, "pos": pos});
                if !secret && let serde_json::Value::Object(map) = &mut v {
                    map.insert("choices".into(), json!(choices));
                }
                v
            }
            VoteWithdrawn {
                room,
                poll,
                user,
                pos,
            } => json!({"room": room, "poll": poll, "user": user, "pos": pos}),
            PollClosed {
                room,
                poll,
                by,
                reason,
                tallies,
                outcome,
                winner,
                winning_choice,
                pos,
                seq,
            } => json!({
                "room": room, "poll": poll, "by": by, "reason": reason, "tallies": tallies,
                "outcome": outcome, "winner": winner, "winning_choice": winning_choice,
                "pos": pos, "seq": seq,
            }),
        }
    }
}

/// `"redacted": true` on an event whose text was emptied by a later delete (absent otherwise).
fn mark_redacted(v: &mut serde_json::Value, redacted: bool) {
    if redacted && let serde_json::Value::Object(map) = v {
        map.insert("redacted".into(), serde_json::Value::Bool(true));
    }
}
