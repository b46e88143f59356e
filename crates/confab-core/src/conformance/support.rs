//! What the gathering cases share: commands built in one line, reads that must find their
//! row, and the checks that a command was refused or did nothing without leaving a trace.

use super::whole_log;
use crate::command::{CancelMeetup, ClosePoll, Command, CreateMeetup, CreatePoll, Outcome};
use crate::command::{SetRole, SetRsvp, Vote};
use crate::error::{ErrorCode, StoreError};
use crate::event::{Event, EventBody};
use crate::ids::{AppId, MeetupNumber, PollNumber, Pos, RoomNumber, Timestamp, UserId};
use crate::meetups::{MeetupView, PollKind, PollView, Results, Rsvp};
use crate::model::{Change, HistoryQuery, Item, ItemKind, Role};
use crate::store::Store;
use std::sync::Arc;

pub(super) const DAY: i64 = 86_400_000;

pub(super) fn uid(s: &str) -> UserId {
    UserId(s.to_owned())
}

/// Runs a command that must be accepted.
pub(super) async fn run(store: &Arc<dyn Store>, cmd: Command) -> Outcome {
    match store.execute(cmd.clone()).await {
        Ok(out) => out,
        Err(e) => panic!("{cmd:?} was refused: {e:?}"),
    }
}

/// Every change of a room, oldest first.
pub(super) async fn all_changes(
    store: &Arc<dyn Store>,
    app: AppId,
    room: RoomNumber,
) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    loop {
        let since = out.last().map_or(Pos(0), |c| c.pos);
        let page = store.changes(app, room, since, 500).await.expect("changes");
        out.extend(page.rows);
        if !page.has_more {
            return out;
        }
    }
}

/// What a client could see of a write: the app's log length and the room's changes.
async fn trace(store: &Arc<dyn Store>, app: AppId, room: RoomNumber) -> (usize, usize) {
    (
        whole_log(store, app).await.len(),
        all_changes(store, app, room).await.len(),
    )
}

/// Runs a command that must be refused with `code`, and checks it left no trace in the log
/// nor in the room's changes.
pub(super) async fn refused(
    store: &Arc<dyn Store>,
    app: AppId,
    room: RoomNumber,
    cmd: Command,
    code: ErrorCode,
) {
    let before = trace(store, app, room).await;
    match store.execute(cmd.clone()).await {
        Err(StoreError::Domain(e)) if e.code == code => {}
        other => panic!("{cmd:?}: expected {code:?}, got {other:?}"),
    }
    assert_eq!(
        trace(store, app, room).await,
        before,
        "refused {cmd:?} left a trace"
    );
}

/// Runs a command that must be accepted and log nothing (a no-op).
pub(super) async fn unchanged(store: &Arc<dyn Store>, app: AppId, room: RoomNumber, cmd: Command) {
    let before = trace(store, app, room).await;
    run(store, cmd.clone()).await;
    assert_eq!(
        trace(store, app, room).await,
        before,
        "{cmd:?} should log nothing"
    );
}

/// The events appended since the log had `from` events.
pub(super) async fn events_since(store: &Arc<dyn Store>, app: AppId, from: usize) -> Vec<Event> {
    whole_log(store, app).await.split_off(from)
}

pub(super) async fn log_len(store: &Arc<dyn Store>, app: AppId) -> usize {
    whole_log(store, app).await.len()
}

/// The room's timeline, every item.
pub(super) async fn timeline(store: &Arc<dyn Store>, app: AppId, room: RoomNumber) -> Vec<Item> {
    let access = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room");
    let (items, _, _) = store
        .history(
            app,
            room,
            HistoryQuery::Range(crate::ids::Seq(1), access.room.last_seq),
            5000,
        )
        .await
        .expect("history");
    items
}

/// The `type` of an announcement item.
pub(super) fn announced(item: &Item) -> String {
    assert_eq!(item.kind, ItemKind::Announcement, "{item:?}");
    let a = item.announcement.as_ref().expect("announcement data");
    a["type"].as_str().unwrap_or_default().to_owned()
}

pub(super) fn new_meetup(
    app: AppId,
    actor: &str,
    room: RoomNumber,
    name: &str,
    at: Timestamp,
) -> Command {
    Command::CreateMeetup(CreateMeetup {
        app,
        actor: uid(actor),
        room,
        name: name.into(),
        location: format!("{name} place"),
        takes_place_on: at,
        image_url: None,
    })
}

pub(super) async fn meetup(
    store: &Arc<dyn Store>,
    app: AppId,
    actor: &str,
    room: RoomNumber,
    name: &str,
    at: Timestamp,
) -> MeetupNumber {
    match run(store, new_meetup(app, actor, room, name, at)).await {
        Outcome::Meetup(m) => m,
        other => panic!("expected a meetup, got {other:?}"),
    }
}

pub(super) fn set_rsvp(
    app: AppId,
    actor: &str,
    room: RoomNumber,
    m: MeetupNumber,
    rsvp: Rsvp,
) -> Command {
    Command::SetRsvp(SetRsvp {
        app,
        actor: uid(actor),
        room,
        meetup: m,
        rsvp,
    })
}

pub(super) fn cancel(app: AppId, actor: &str, room: RoomNumber, m: MeetupNumber) -> Command {
    Command::CancelMeetup(CancelMeetup {
        app,
        actor: uid(actor),
        room,
        meetup: m,
    })
}

pub(super) fn vote(
    app: AppId,
    actor: &str,
    room: RoomNumber,
    p: PollNumber,
    choices: &[u32],
) -> Command {
    Command::Vote(Vote {
        app,
        actor: uid(actor),
        room,
        poll: p,
        choices: choices.to_vec(),
    })
}

pub(super) fn make_admin(app: AppId, owner: &str, room: RoomNumber, target: &str) -> Command {
    Command::SetRole(SetRole {
        app,
        actor: uid(owner),
        room,
        target: uid(target),
        role: Role::Admin,
    })
}

pub(super) async fn view(
    store: &Arc<dyn Store>,
    app: AppId,
    room: RoomNumber,
    m: MeetupNumber,
    viewer: &str,
) -> MeetupView {
    store
        .meetup(app, room, m, &uid(viewer))
        .await
        .expect("meetup")
        .unwrap_or_else(|| panic!("meetup {m} of room {room} not found"))
}

pub(super) async fn poll_view(
    store: &Arc<dyn Store>,
    app: AppId,
    room: RoomNumber,
    p: PollNumber,
    viewer: &str,
) -> PollView {
    store
        .poll(app, room, p, &uid(viewer))
        .await
        .expect("poll")
        .unwrap_or_else(|| panic!("poll {p} of room {room} not found"))
}

pub(super) const GENERIC3: [&str; 3] = ["tea", "coffee", "juice"];

/// A poll of one choice each (`max_selections` 1), results disclosed, no deadline.
pub(super) fn new_poll(
    app: AppId,
    actor: &str,
    room: RoomNumber,
    kind: PollKind,
    choices: &[&str],
    meetup: Option<MeetupNumber>,
) -> CreatePoll {
    CreatePoll {
        app,
        actor: uid(actor),
        room,
        question: format!("{} poll?", kind.as_str()),
        kind,
        choices: choices.iter().map(|c| (*c).to_owned()).collect(),
        max_selections: 1,
        results: Results::Disclosed,
        closes_at: None,
        meetup,
    }
}

pub(super) async fn poll(store: &Arc<dyn Store>, cmd: CreatePoll) -> PollNumber {
    match run(store, Command::CreatePoll(cmd)).await {
        Outcome::Poll(p) => p,
        other => panic!("expected a poll, got {other:?}"),
    }
}

pub(super) fn close(app: AppId, actor: &str, room: RoomNumber, p: PollNumber) -> Command {
    Command::ClosePoll(ClosePoll {
        app,
        actor: Some(uid(actor)),
        room,
        poll: p,
    })
}

/// The `PollClosed` events of a poll in the app's log.
pub(super) async fn closings(
    store: &Arc<dyn Store>,
    app: AppId,
    room: RoomNumber,
    p: PollNumber,
) -> Vec<EventBody> {
    whole_log(store, app)
        .await
        .into_iter()
        .map(|e| e.body)
        .filter(|b| matches!(b, EventBody::PollClosed { room: r, poll, .. } if *r == room && *poll == p))
        .collect()
}
