//! Confab's domain: identifiers, the events of the append-only log, the commands that produce
//! them, the permission and membership rules, and the storage ports. Nothing here does I/O.

pub mod bus;
pub mod command;
pub mod error;
pub mod event;
pub mod ids;
pub mod joinings;
pub mod meetups;
pub mod model;
pub mod rules;
pub mod search;
pub mod store;
pub mod validate;

#[cfg(feature = "test-util")]
pub mod conformance;

pub use command::{
    CancelMeetup, ClosePoll, Command, CreateApp, CreateGroup, CreateMeetup, CreatePoll, Decide,
    DeleteMessage, EditMessage, Invite, MarkRead, Outcome, SendMessage, SetRole, SetRsvp,
    UpdateMeetup, UpdateProfile, UpdateRoom, UpsertUser, Vote,
};
pub use error::{DomainError, ErrorCode, ErrorKind, StoreError, WireError};
pub use event::{Event, EventBody};
pub use ids::{AppId, MeetupNumber, Offset, PollNumber, Pos, RoomNumber, Seq, Timestamp, UserId};
pub use store::{Execute, Lease, Store, Tx};
