//! Commands: the requests to change state. Each one is decided by [`crate::rules::handle`] inside
//! one store transaction, which appends the resulting events.

use crate::ids::{AppId, RoomNumber, Seq, UserId};
use crate::model::{App, Item, Member, Role, Room, User, Visibility};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Kick,
    Ban,
    Unban,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    CreateApp {
        name: String,
        token: String,
        secret_hash: String,
        signing_key: String,
    },
    RenameApp {
        app: AppId,
        name: String,
    },
    UpsertUser {
        app: AppId,
        user: UserId,
        name: Option<String>,
        image_url: Option<String>,
        email: Option<String>,
    },
    /// Partial profile update by the user: fields left `None` keep their value.
    UpdateProfile {
        app: AppId,
        user: UserId,
        name: Option<String>,
        image_url: Option<String>,
    },
    RecordLogin {
        app: AppId,
        user: UserId,
    },
    RecordSeen {
        app: AppId,
        user: UserId,
    },
    CreateDirect {
        app: AppId,
        actor: UserId,
        with: UserId,
    },
    CreateGroup {
        app: AppId,
        /// `None` when an app creates the room itself (no creator, no announcement).
        actor: Option<UserId>,
        name: Option<String>,
        image_url: Option<String>,
        visibility: Visibility,
        alias: Option<String>,
        members: Vec<UserId>,
    },
    UpdateRoom {
        app: AppId,
        actor: UserId,
        room: RoomNumber,
        name: Option<String>,
        image_url: Option<String>,
        visibility: Option<Visibility>,
    },
    DeleteRoom {
        app: AppId,
        actor: UserId,
        room: RoomNumber,
    },
    Join {
        app: AppId,
        actor: UserId,
        room: RoomNumber,
    },
    Leave {
        app: AppId,
        actor: UserId,
        room: RoomNumber,
    },
    Invite {
        app: AppId,
        actor: UserId,
        room: RoomNumber,
        target: UserId,
    },
    Decide {
        app: AppId,
        actor: UserId,
        room: RoomNumber,
        target: UserId,
        decision: Decision,
    },
    SetRole {
        app: AppId,
        actor: UserId,
        room: RoomNumber,
        target: UserId,
        role: Role,
    },
    Send {
        app: AppId,
        /// `None` for a message posted by the app itself (no membership needed).
        actor: Option<UserId>,
        room: RoomNumber,
        text: String,
        reply_to: Option<Seq>,
        client_id: Option<String>,
    },
    Edit {
        app: AppId,
        actor: UserId,
        room: RoomNumber,
        seq: Seq,
        text: String,
    },
    Delete {
        app: AppId,
        actor: UserId,
        room: RoomNumber,
        seq: Seq,
    },
    MarkRead {
        app: AppId,
        actor: UserId,
        room: RoomNumber,
        seq: Seq,
    },
}

/// What a command produced, for the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    App(App),
    User(User),
    /// `created` is false when an existing room was returned (a second direct create).
    Room {
        room: Room,
        created: bool,
    },
    /// `created` is false for an idempotent retry of a send.
    Item {
        item: Item,
        created: bool,
    },
    Member(Member),
    ReadMarker(Seq),
    Done,
}
