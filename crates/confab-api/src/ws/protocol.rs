//! The frames of the WebSocket protocol (see `docs/protocol.md`): what clients send, what the
//! server sends, and the close codes. Server frames are built here and nowhere else, as
//! complete WebSocket frames (header included) ready to be written to any number of sockets.

use super::wire;
use crate::dto::ChangeDto;
use crate::error::ApiError;
use bytes::Bytes;
use confab_core::bus::RoomChange;
use confab_core::ids::{Pos, RoomNumber, Seq, Timestamp, UserId};
use confab_core::model::Change;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Close codes the server uses (4000–4999 is the application range).
pub mod close {
    /// The server is stopping.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame or message exceeded the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// No valid `auth` frame in time, or the token was refused.
    pub const UNAUTHORIZED: u16 = 4001;
    /// No frame (not even a pong) from the client for two heartbeat intervals.
    pub const HEARTBEAT: u16 = 4002;
    /// The client did not read fast enough: its outbound queue filled up. Resume.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The server lost track of live events (bus lag). Resume.
    pub const RESYNC: u16 = 4009;
    /// The user already has the allowed number of connections.
    pub const TOO_MANY_CONNECTIONS: u16 = 4029;
}

/// A map room number → last change position seen, as JSON (keys are strings).
pub type ResumeMap = BTreeMap<String, i64>;

/// What a client may send. Unknown frame types and unknown fields are refused.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Auth {
        token: String,
        #[serde(default)]
        resume: Option<ResumeMap>,
    },
    Send {
        room: i64,
        text: String,
        #[serde(default)]
        reply_to: Option<i64>,
        #[serde(default)]
        client_id: Option<String>,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Typing {
        room: i64,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Read {
        room: i64,
        seq: i64,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Resume {
        rooms: ResumeMap,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Ping {
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
}

impl ClientFrame {
    pub fn parse(text: &str) -> Result<ClientFrame, (ApiError, Option<Value>)> {
        serde_json::from_str(text).map_err(|e| {
            // Answer with the request's ref even when the rest of the frame is wrong.
            let reference = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("ref").cloned());
            (
                ApiError::bad_request("invalid_frame", format!("bad frame: {e}")),
                reference,
            )
        })
    }
}

/// A room in `ready`.
#[derive(Debug, Serialize)]
pub struct ReadyRoom {
    pub room: i64,
    pub pos: i64,
    pub last_seq: i64,
}

fn text(v: &Value) -> Bytes {
    wire::frame(wire::OP_TEXT, v.to_string().as_bytes())
}

pub fn ready(connection_id: u64, user: &UserId, rooms: &[ReadyRoom]) -> Bytes {
    text(&json!({
        "type": "ready",
        "connection_id": connection_id.to_string(),
        "user": user.as_str(),
        "rooms": rooms,
    }))
}

#[derive(Serialize)]
struct ChangeFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: i64,
    pos: i64,
    change: &'a ChangeDto,
}

/// One change of a room, exactly as `GET /v1/rooms/{n}/changes` shows it, under `change`.
pub fn change(room: RoomNumber, c: &Change) -> Bytes {
    change_frame(room, c.pos, &ChangeDto::new(c))
}

/// A change that came over the bus, framed as [`change`] frames it (its item as it stood at
/// the commit).
pub fn change_wire(c: &RoomChange) -> Bytes {
    change_frame(c.room, c.pos, &ChangeDto::from_wire(c))
}

fn change_frame(room: RoomNumber, pos: Pos, dto: &ChangeDto) -> Bytes {
    let frame = ChangeFrame {
        kind: "change",
        room: room.0,
        pos: pos.0,
        change: dto,
    };
    // Serialising plain strings, numbers and JSON values cannot fail.
    wire::frame(
        wire::OP_TEXT,
        &serde_json::to_vec(&frame).unwrap_or_default(),
    )
}

pub fn reset(room: RoomNumber, pos: Pos) -> Bytes {
    text(&json!({"type": "reset", "room": room.0, "pos": pos.0}))
}

/// One user's presence in `room` (the frame is built per room: a user who left a room is
/// offline in it while still online in their other rooms).
pub fn presence(room: RoomNumber, user: &UserId, online: bool, last_seen_at: Timestamp) -> Bytes {
    text(&json!({
        "type": "presence",
        "room": room.0,
        "user": user.as_str(),
        "status": if online { "online" } else { "offline" },
        "last_seen_at": last_seen_at.to_rfc3339(),
    }))
}

/// One user's presence in a `presence_list` frame.
#[derive(Debug, Clone)]
pub struct PresenceEntry {
    pub user: UserId,
    pub online: bool,
    /// When the user came online or went offline (`last_seen_at`).
    pub at: Timestamp,
}

/// Several users' presence in one frame: the users of `room` online now (`snapshot`), or the
/// changes of its members' presence since the last frame.
pub fn presence_list(room: RoomNumber, snapshot: bool, users: &[PresenceEntry]) -> Bytes {
    let users: Vec<Value> = users
        .iter()
        .map(|e| {
            json!({
                "user": e.user.as_str(),
                "status": if e.online { "online" } else { "offline" },
                "last_seen_at": e.at.to_rfc3339(),
            })
        })
        .collect();
    text(&json!({
        "type": "presence_list",
        "room": room.0,
        "snapshot": snapshot,
        "users": users,
    }))
}

pub fn typing(room: RoomNumber, user: &UserId, expires_in_ms: u64) -> Bytes {
    text(&json!({
        "type": "typing",
        "room": room.0,
        "user": user.as_str(),
        "expires_in_ms": expires_in_ms,
    }))
}

pub fn read(room: RoomNumber, user: &UserId, seq: Seq) -> Bytes {
    text(&json!({"type": "read", "room": room.0, "user": user.as_str(), "seq": seq.0}))
}

pub fn ack_send(reference: &Option<Value>, seq: Seq, pos: Pos, created: bool) -> Bytes {
    text(&json!({"type": "ack", "ref": reference, "seq": seq.0, "pos": pos.0, "created": created}))
}

pub fn ack(reference: &Option<Value>, fields: Value) -> Bytes {
    let mut v = json!({"type": "ack", "ref": reference});
    if let (Value::Object(m), Value::Object(extra)) = (&mut v, fields) {
        m.extend(extra);
    }
    text(&v)
}

pub fn pong(reference: &Option<Value>) -> Bytes {
    text(&json!({"type": "pong", "ref": reference}))
}

/// An error with the same code and message the REST API gives, plus the status it would have.
pub fn error(e: &ApiError, reference: &Option<Value>) -> Bytes {
    text(&json!({
        "type": "error",
        "code": e.code,
        "status": e.status.as_u16(),
        "message": e.message,
        "ref": reference,
    }))
}

/// A refusal for going over a rate limit, with the time to wait before trying again.
pub fn rate_limited(reference: &Option<Value>, retry_after_ms: u64, message: &str) -> Bytes {
    text(&json!({
        "type": "error",
        "code": "rate_limited",
        "status": 429,
        "message": message,
        "retry_after_ms": retry_after_ms,
        "ref": reference,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_unknown_fields_are_refused() {
        let f = ClientFrame::parse(r#"{"type":"send","room":1,"text":"hi","ref":7}"#);
        assert!(matches!(f, Ok(ClientFrame::Send { room: 1, .. })));
        let f = ClientFrame::parse(r#"{"type":"auth","token":"t","resume":{"3":5}}"#);
        assert!(matches!(
            f,
            Ok(ClientFrame::Auth {
                resume: Some(_),
                ..
            })
        ));
        let Err((e, r)) = ClientFrame::parse(r#"{"type":"send","room":1,"colour":2,"ref":"x"}"#)
        else {
            panic!("refused");
        };
        assert_eq!(e.code, "invalid_frame");
        assert_eq!(r, Some(Value::from("x")));
        assert!(ClientFrame::parse(r#"{"type":"dance"}"#).is_err());
        assert!(ClientFrame::parse("not json").is_err());
    }
}
