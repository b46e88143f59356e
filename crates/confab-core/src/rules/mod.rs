//! The rules: who may do what, and which events a command produces. [`handle`] runs inside one
//! store transaction; a refusal returns an error before anything is appended, so a refused
//! command changes nothing.
//!
//! One file per area. [`handle`] only delegates, and its match names every command, so a new
//! command is a new arm here and a function in its area's file.

use crate::command::{Command, Outcome};
use crate::store::{StoreResult, Tx};

mod access;
mod announce;
mod apps;
mod load;
mod meetups;
mod members;
mod messages;
mod polls;
mod rooms;
mod users;

pub use access::{can_read_timeline, can_view_room};
pub use announce::announcement;

/// Decides `cmd` against the state `tx` sees and appends the resulting events.
pub fn handle(tx: &mut dyn Tx, cmd: Command) -> StoreResult<Outcome> {
    match cmd {
        Command::CreateApp(c) => apps::create(tx, c),
        Command::RenameApp { app, name } => apps::rename(tx, app, name),
        Command::UpsertUser(c) => users::upsert(tx, c),
        Command::UpdateProfile(c) => users::update_profile(tx, c),
        Command::RecordLogin { app, user } => users::record_login(tx, app, user),
        Command::RecordSeen { app, user } => users::record_seen(tx, app, user),
        Command::CreateDirect { app, actor, with } => rooms::create_direct(tx, app, actor, with),
        Command::CreateGroup(c) => rooms::create_group(tx, c),
        Command::UpdateRoom(c) => rooms::update(tx, c),
        Command::DeleteRoom { app, actor, room } => rooms::delete(tx, app, actor, room),
        Command::Join { app, actor, room } => members::join(tx, app, actor, room),
        Command::Leave { app, actor, room } => members::leave(tx, app, actor, room),
        Command::Invite(c) => members::invite(tx, c),
        Command::Decide(c) => members::decide(tx, c),
        Command::SetRole(c) => members::set_role(tx, c),
        Command::Send(c) => messages::send(tx, c),
        Command::Edit(c) => messages::edit(tx, c),
        Command::Delete(c) => messages::delete(tx, c),
        Command::MarkRead(c) => messages::mark_read(tx, c),
        Command::CreateMeetup(c) => meetups::create(tx, c),
        Command::UpdateMeetup(c) => meetups::update(tx, c),
        Command::CancelMeetup(c) => meetups::cancel(tx, c),
        Command::SetRsvp(c) => meetups::rsvp(tx, c),
        Command::CreatePoll(c) => polls::create(tx, c),
        Command::Vote(c) => polls::vote(tx, c),
        Command::ClosePoll(c) => polls::close(tx, c),
    }
}
