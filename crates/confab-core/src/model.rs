//! Read-model types: what the store returns to the API. Wire DTOs live in the API crate.

use crate::ids::{AppId, Offset, Pos, RoomNumber, Seq, Timestamp, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub id: AppId,
    pub name: String,
    pub token: String,
    /// The key id of the app's signing key ([`key_id`]): the app's public id, which grants
    /// nothing by itself.
    pub key_id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What authenticating an app needs: its id and the key its user tokens are signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKeys {
    pub id: AppId,
    pub token: String,
    pub signing_key: String,
    /// The opaque name of the signing key that user tokens carry in their header (`kid`); see
    /// [`key_id`].
    pub key_id: String,
}

/// The key id of a signing key: the first 128 bits of a domain-separated SHA-256 of the key,
/// hex-encoded. A user token must say which app's key signed it without revealing anything
/// usable: this id is accepted nowhere as a credential, and neither the key nor the app's token
/// can be recovered from it.
pub fn key_id(signing_key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"confab key id\0")
        .chain_update(signing_key.as_bytes())
        .finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppStats {
    pub rooms_count: i64,
    pub users_count: i64,
    pub messages_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub email: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
    pub last_seen_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    Direct,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    Private,
}

impl RoomKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Direct => "direct",
            RoomKind::Group => "group",
        }
    }
}

impl Visibility {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
}

/// The key stores keep a direct room's pair under, the same whichever member asks first.
pub fn direct_key(a: &UserId, b: &UserId) -> String {
    if a <= b {
        format!("{a}\n{b}")
    } else {
        format!("{b}\n{a}")
    }
}

/// A room as the rules need it and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub number: RoomNumber,
    pub kind: RoomKind,
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub visibility: Visibility,
    pub alias: Option<String>,
    pub creator: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub member_count: i64,
    pub messages_count: i64,
    pub last_seq: Seq,
    pub last_pos: Pos,
    pub deleted: bool,
}

impl Room {
    /// Whether the app itself made this room (a chat of the seed-004 compatible API) rather
    /// than one of its users. Only such rooms are reachable with the app's public token: rooms
    /// that users made hold their conversations, which that token must never open.
    pub fn is_app_chat(&self) -> bool {
        self.creator.is_none() && self.kind == RoomKind::Group
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "member" => Role::Member,
            "admin" => Role::Admin,
            "owner" => Role::Owner,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    Invited,
    Applied,
    Joined,
    Left,
    Rejected,
    Kicked,
    Banned,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        use MemberState::*;
        match self {
            Invited => "invited",
            Applied => "applied",
            Joined => "joined",
            Left => "left",
            Rejected => "rejected",
            Kicked => "kicked",
            Banned => "banned",
        }
    }
    pub fn parse(s: &str) -> Option<MemberState> {
        use MemberState::*;
        Some(match s {
            "invited" => Invited,
            "applied" => Applied,
            "joined" => Joined,
            "left" => Left,
            "rejected" => Rejected,
            "kicked" => Kicked,
            "banned" => Banned,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: UserId,
    pub role: Role,
    pub state: MemberState,
    pub read_seq: Seq,
    pub updated_at: Timestamp,
    /// The room position of the change that gave the member this state; for a joined
    /// member, of their joining (a role change keeps it). A node that missed the joining
    /// replays the room to them from there.
    pub since: Pos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Message,
    Announcement,
}

/// A timeline item: a message or a system announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
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
    /// For announcements: what happened, as structured data.
    pub announcement: Option<serde_json::Value>,
    pub client_id: Option<String>,
}

/// A room in "my rooms": the room, my membership and what I have not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    pub room: Room,
    pub member: Member,
    pub last_item: Option<Item>,
    pub unread_count: i64,
    /// My alerts in this room (open polls I may vote on and have not): see
    /// [`crate::Store::alerts`].
    pub alerts_count: i64,
    /// Ordering key for newest-activity-first listing.
    pub activity: i64,
}

/// Which slice of a timeline to read. Bounds are exclusive for before/after, inclusive for range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryQuery {
    Latest,
    Before(Seq),
    After(Seq),
    Around(Seq),
    Range(Seq, Seq),
}

/// One entry of a room's change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub pos: Pos,
    pub at: Timestamp,
    pub body: crate::event::EventBody,
    /// The current state of the item this change touched, if any.
    pub item: Option<Item>,
}

/// What a caller's access to a room is, for the permission rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub room: Room,
    pub member: Option<Member>,
}

/// One page of a listing with the key of the last row, for cursors.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub has_more: bool,
}

/// One app's settings for one identity provider, as stored. Operational state (DESIGN.md
/// section 5): never an event, kept by a rebuild, seen by no other app. `config` is the JSON
/// the API validated; the store does not look inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityProvider {
    pub id: String,
    pub config: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A person at an identity provider (`provider`, the token's `sub`) and the user of the app
/// they sign in as. Operational state, like [`IdentityProvider`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityLink {
    pub provider: String,
    pub subject: String,
    pub user: UserId,
}

/// A stored event with its place in the app's log.
pub type LoggedOffset = Offset;
