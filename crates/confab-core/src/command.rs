//! Commands: the requests to change state. Each one is decided by [`crate::rules::handle`] inside
//! one store transaction, which appends the resulting events.
//!
//! Commands and outcomes serialize (serde's default shapes) so that one node can hand a command
//! to the node that writes its app and get the outcome back. Those shapes are internal to one
//! deployment, whose nodes run one version; they are never shown to clients.

use crate::ids::{AppId, MeetupNumber, PollNumber, RoomNumber, Seq, Timestamp, UserId};
use crate::meetups::{PollKind, Results, Rsvp};
use crate::model::{App, Item, Member, Role, Room, User, Visibility};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Approve,
    Reject,
    Kick,
    Ban,
    Unban,
}

/// A request to change state. Commands with more than a few fields carry a struct of their
/// own, so a rule function takes one argument and a new field is one edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateApp(CreateApp),
    RenameApp {
        app: AppId,
        name: String,
    },
    UpsertUser(UpsertUser),
    /// Partial profile update by the user: fields left `None` keep their value.
    UpdateProfile(UpdateProfile),
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
    CreateGroup(CreateGroup),
    UpdateRoom(UpdateRoom),
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
    Invite(Invite),
    Decide(Decide),
    SetRole(SetRole),
    Send(SendMessage),
    Edit(EditMessage),
    Delete(DeleteMessage),
    MarkRead(MarkRead),
    CreateMeetup(CreateMeetup),
    UpdateMeetup(UpdateMeetup),
    CancelMeetup(CancelMeetup),
    SetRsvp(SetRsvp),
    CreatePoll(CreatePoll),
    Vote(Vote),
    ClosePoll(ClosePoll),
}

impl Command {
    /// The app the command changes; `None` for the creation of an app.
    pub fn app(&self) -> Option<AppId> {
        use Command::*;
        Some(match self {
            CreateApp(_) => return None,
            RenameApp { app, .. }
            | RecordLogin { app, .. }
            | RecordSeen { app, .. }
            | CreateDirect { app, .. }
            | DeleteRoom { app, .. }
            | Join { app, .. }
            | Leave { app, .. } => *app,
            UpsertUser(c) => c.app,
            UpdateProfile(c) => c.app,
            CreateGroup(c) => c.app,
            UpdateRoom(c) => c.app,
            Invite(c) => c.app,
            Decide(c) => c.app,
            SetRole(c) => c.app,
            Send(c) => c.app,
            Edit(c) => c.app,
            Delete(c) => c.app,
            MarkRead(c) => c.app,
            CreateMeetup(c) => c.app,
            UpdateMeetup(c) => c.app,
            CancelMeetup(c) => c.app,
            SetRsvp(c) => c.app,
            CreatePoll(c) => c.app,
            Vote(c) => c.app,
            ClosePoll(c) => c.app,
        })
    }

    /// The existing room the command acts in; `None` for those that act on no room or create
    /// one.
    pub fn room(&self) -> Option<RoomNumber> {
        use Command::*;
        Some(match self {
            CreateApp(_)
            | RenameApp { .. }
            | RecordLogin { .. }
            | RecordSeen { .. }
            | CreateDirect { .. }
            | UpsertUser(_)
            | UpdateProfile(_)
            | CreateGroup(_) => return None,
            DeleteRoom { room, .. } | Join { room, .. } | Leave { room, .. } => *room,
            UpdateRoom(c) => c.room,
            Invite(c) => c.room,
            Decide(c) => c.room,
            SetRole(c) => c.room,
            Send(c) => c.room,
            Edit(c) => c.room,
            Delete(c) => c.room,
            MarkRead(c) => c.room,
            CreateMeetup(c) => c.room,
            UpdateMeetup(c) => c.room,
            CancelMeetup(c) => c.room,
            SetRsvp(c) => c.room,
            CreatePoll(c) => c.room,
            Vote(c) => c.room,
            ClosePoll(c) => c.room,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateApp {
    pub name: String,
    pub token: String,
    pub secret_hash: String,
    pub signing_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpsertUser {
    pub app: AppId,
    pub user: UserId,
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub email: Option<String>,
}

/// Partial profile update by the user: fields left `None` keep their value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateProfile {
    pub app: AppId,
    pub user: UserId,
    pub name: Option<String>,
    pub image_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateGroup {
    pub app: AppId,
    /// `None` when an app creates the room itself (no creator, no announcement).
    pub actor: Option<UserId>,
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub visibility: Visibility,
    pub alias: Option<String>,
    pub members: Vec<UserId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRoom {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub visibility: Option<Visibility>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub target: UserId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decide {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub target: UserId,
    pub decision: Decision,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRole {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub target: UserId,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessage {
    pub app: AppId,
    /// `None` for a message posted by the app itself (no membership needed).
    pub actor: Option<UserId>,
    pub room: RoomNumber,
    pub text: String,
    pub reply_to: Option<Seq>,
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditMessage {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub seq: Seq,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteMessage {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub seq: Seq,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRead {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub seq: Seq,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateMeetup {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub name: String,
    pub location: String,
    pub takes_place_on: Timestamp,
    pub image_url: Option<String>,
}

/// Fields left `None` keep their value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateMeetup {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub meetup: MeetupNumber,
    pub name: Option<String>,
    pub location: Option<String>,
    pub takes_place_on: Option<Timestamp>,
    pub image_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelMeetup {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub meetup: MeetupNumber,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRsvp {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub meetup: MeetupNumber,
    pub rsvp: Rsvp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePoll {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub question: String,
    pub kind: PollKind,
    /// For `reschedule`, each choice is an RFC 3339 time.
    pub choices: Vec<String>,
    pub max_selections: u32,
    pub results: Results,
    pub closes_at: Option<Timestamp>,
    pub meetup: Option<MeetupNumber>,
}

/// A voter's whole vote, replacing any earlier one; empty withdraws it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub app: AppId,
    pub actor: UserId,
    pub room: RoomNumber,
    pub poll: PollNumber,
    pub choices: Vec<u32>,
}

/// Closes a poll. `actor` is `None` for the server closing a poll whose deadline has passed
/// (it then closes nothing else).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosePoll {
    pub app: AppId,
    pub actor: Option<UserId>,
    pub room: RoomNumber,
    pub poll: PollNumber,
}

/// What a command produced, for the response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The meetup the command created or changed (read it back for the caller's view).
    Meetup(MeetupNumber),
    /// The poll the command created, voted on or closed.
    Poll(PollNumber),
    Done,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ItemKind, MemberState};

    fn round_trip<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(v: T) {
        let json = serde_json::to_string(&v).expect("serializes");
        assert_eq!(
            serde_json::from_str::<T>(&json).expect("parses"),
            v,
            "{json}"
        );
    }

    #[test]
    fn commands_and_outcomes_survive_the_wire() {
        let (app, room, alice) = (AppId(7), RoomNumber(3), UserId("alice".into()));
        round_trip(Command::Send(SendMessage {
            app,
            actor: Some(alice.clone()),
            room,
            text: "héllo \"there\"\n".into(),
            reply_to: Some(Seq(2)),
            client_id: Some("c-1".into()),
        }));
        round_trip(Command::Decide(Decide {
            app,
            actor: alice.clone(),
            room,
            target: UserId("bob".into()),
            decision: Decision::Ban,
        }));
        round_trip(Command::CreatePoll(CreatePoll {
            app,
            actor: alice.clone(),
            room,
            question: "when?".into(),
            kind: PollKind::Reschedule,
            choices: vec!["2026-01-01T10:00:00Z".into()],
            max_selections: 1,
            results: Results::default(),
            closes_at: Some(Timestamp(5)),
            meetup: Some(MeetupNumber(1)),
        }));
        round_trip(Command::RecordSeen {
            app,
            user: alice.clone(),
        });
        round_trip(Outcome::Item {
            item: Item {
                seq: Seq(1),
                pos: crate::ids::Pos(4),
                kind: ItemKind::Announcement,
                sender: None,
                text: None,
                reply_to: None,
                reply_count: 0,
                created_at: Timestamp(1),
                edited_at: None,
                deleted: false,
                announcement: Some(serde_json::json!({"type": "joined", "user": "alice"})),
                client_id: None,
            },
            created: true,
        });
        round_trip(Outcome::Member(Member {
            user: alice,
            role: Role::Admin,
            state: MemberState::Joined,
            read_seq: Seq(0),
            updated_at: Timestamp(2),
            since: crate::ids::Pos(1),
        }));
        round_trip(Outcome::Poll(PollNumber(2)));
        round_trip(Outcome::Done);
    }
}
