//! Conformance cases for every bus (the in-process one and NATS): each is a plain async
//! function taking a fresh bus, to be called from a `#[tokio::test]` of the bus's crate. Each
//! case uses its own app id (`app`) so that runs sharing one NATS server do not hear each other.
//! Waiting is always for a message, with a generous deadline, never a fixed sleep.

use super::{
    Bus, BusError, BusMessage, BusReceiver, ChangeData, NodeId, PresenceBody, PresenceNote,
    PresentUser, RoomChange, Topic, WireItem,
};
use crate::event::MemberAction;
use crate::ids::{AppId, Pos, RoomNumber, Seq, Timestamp, UserId};
use crate::model::{ItemKind, MemberState, Role, RoomKind, Visibility};
use std::sync::Arc;
use std::time::Duration;

/// How long a case waits for something that must happen.
pub const WAIT: Duration = Duration::from_secs(10);
/// How often a probe is sent while waiting for a listening to take effect.
const PROBE_EVERY: Duration = Duration::from_millis(50);
const PROBE_USER: &str = "~probe";

/// An app id no other run uses (NATS is shared by concurrent test runs).
pub fn fresh_app() -> AppId {
    use std::sync::atomic::{AtomicI64, Ordering};
    static NEXT: AtomicI64 = AtomicI64::new(0);
    let nanos = Timestamp::now().0.rem_euclid(1 << 30) << 20;
    AppId(nanos + i64::from(std::process::id() as u16) * 64 + NEXT.fetch_add(1, Ordering::Relaxed))
}

fn user(s: &str) -> UserId {
    UserId(s.into())
}

/// A room change of `room` at `pos`.
pub fn change(app: AppId, room: RoomNumber, pos: i64, change: ChangeData) -> BusMessage {
    let item = matches!(change, ChangeData::MessagePosted { .. }).then(|| WireItem {
        seq: Seq(pos),
        pos: Pos(pos),
        kind: ItemKind::Message,
        sender: Some(user("ann")),
        text: Some(format!("message at {pos}")),
        reply_to: None,
        reply_count: 0,
        created_at: Timestamp(1_700_000_000_000 + pos),
        edited_at: None,
        deleted: false,
        announcement: None,
        client_id: None,
    });
    BusMessage::Change(Arc::new(RoomChange {
        app,
        room,
        pos: Pos(pos),
        seq: item.as_ref().map(|i| i.seq),
        at: Timestamp(1_700_000_000_000 + pos),
        change,
        item,
    }))
}

/// A plain message posted in `room` at `pos`.
pub fn message(app: AppId, room: RoomNumber, pos: i64) -> BusMessage {
    let data = ChangeData::MessagePosted {
        sender: Some(user("ann")),
        reply_to: None,
        client_id: None,
        redacted: false,
    };
    change(app, room, pos, data)
}

/// One message of every wire variant, all about room 1 of `app` (positions 1..).
pub fn every_variant(app: AppId) -> Vec<BusMessage> {
    let r = RoomNumber(1);
    let datas = vec![
        ChangeData::RoomCreated {
            kind: RoomKind::Group,
            name: Some("general".into()),
            image_url: None,
            visibility: Visibility::Public,
            alias: None,
            creator: Some(user("ann")),
            direct: None,
        },
        ChangeData::RoomUpdated {
            by: user("ann"),
            name: Some("lounge".into()),
            image_url: Some("https://example.com/a.png".into()),
            visibility: Some(Visibility::Private),
        },
        ChangeData::Membership {
            user: user("bob"),
            by: user("ann"),
            action: MemberAction::Added,
            state: MemberState::Joined,
            role: Role::Member,
            new_owner: None,
        },
        ChangeData::MessagePosted {
            sender: Some(user("bob")),
            reply_to: Some(Seq(1)),
            client_id: Some("c-1".into()),
            redacted: false,
        },
        ChangeData::MessageEdited { redacted: false },
        ChangeData::MessageDeleted {
            by: Some(user("bob")),
        },
        ChangeData::RoomDeleted { by: user("ann") },
    ];
    let mut out: Vec<BusMessage> = datas
        .into_iter()
        .zip(1..)
        .map(|(d, pos)| change(app, r, pos, d))
        .collect();
    out.push(BusMessage::Read {
        app,
        room: r,
        user: user("bob"),
        seq: Seq(4),
    });
    out.push(BusMessage::Typing {
        app,
        room: r,
        user: user("bob"),
    });
    let note = |seq, body| {
        BusMessage::Presence(Arc::new(PresenceNote {
            app,
            node: NodeId(7),
            seq,
            body,
        }))
    };
    let bob = PresentUser {
        user: user("bob"),
        rooms: vec![r, RoomNumber(2)],
    };
    out.push(note(
        1,
        PresenceBody::Changes {
            at: Timestamp(1_700_000_000_000),
            online: vec![bob.clone()],
            offline: vec![user("ann")],
        },
    ));
    out.push(note(
        1,
        PresenceBody::State {
            first: true,
            last: true,
            users: vec![bob],
        },
    ));
    out.push(note(1, PresenceBody::Beat { users: 1 }));
    out.push(note(
        0,
        PresenceBody::Ask {
            of: Some(NodeId(3)),
        },
    ));
    out
}

fn probe(topic: Topic) -> BusMessage {
    match topic {
        Topic::Room(app, room) => BusMessage::Typing {
            app,
            room,
            user: user(PROBE_USER),
        },
        Topic::App(app) => BusMessage::Presence(Arc::new(PresenceNote {
            app,
            node: NodeId(0),
            seq: 0,
            body: PresenceBody::Changes {
                at: Timestamp(0),
                online: Vec::new(),
                offline: vec![user(PROBE_USER)],
            },
        })),
    }
}

fn is_probe(m: &BusMessage) -> bool {
    match m {
        BusMessage::Typing { user, .. } => user.0 == PROBE_USER,
        BusMessage::Presence(p) => matches!(&p.body,
            PresenceBody::Changes { offline, .. } if offline.iter().any(|u| u.0 == PROBE_USER)),
        _ => false,
    }
}

/// Listens to `topic` and waits until it has taken effect (a probe published on it arrives).
pub async fn listen(bus: &dyn Bus, rx: &mut dyn BusReceiver, topic: Topic) {
    rx.listen(topic);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        bus.publish(probe(topic));
        match tokio::time::timeout(PROBE_EVERY, rx.recv()).await {
            Ok(Ok(m)) if is_probe(&m) && probe_topic(&m) == Some(topic) => return,
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => panic!("listening to {topic:?}: {e}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "listening to {topic:?} never took effect"
        );
    }
}

fn probe_topic(m: &BusMessage) -> Option<Topic> {
    m.room_topic().or(m.app_topic())
}

/// The next message that is not a leftover probe; fails after [`WAIT`].
pub async fn next(rx: &mut dyn BusReceiver) -> BusMessage {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(m)) if is_probe(&m) => {}
            Ok(Ok(m)) => return m,
            Ok(Err(e)) => panic!("expected a message, got {e}"),
            Err(_) => panic!("no message within {WAIT:?}"),
        }
    }
}

/// Every wire variant goes through unchanged, once, the room's in publish order.
pub async fn round_trip_of_every_variant(bus: Arc<dyn Bus>) {
    let app = fresh_app();
    let mut rx = bus.subscribe();
    listen(&*bus, &mut *rx, Topic::Room(app, RoomNumber(1))).await;
    listen(&*bus, &mut *rx, Topic::App(app)).await;
    let sent = every_variant(app);
    for m in &sent {
        bus.publish(m.clone());
    }
    let mut got = Vec::new();
    for _ in 0..sent.len() {
        got.push(next(&mut *rx).await);
    }
    // Room messages keep their order; the app's presence travels on its own subject and may
    // come anywhere among them.
    let room_only = |v: &[BusMessage]| -> Vec<BusMessage> {
        v.iter()
            .filter(|m| m.room_topic().is_some())
            .cloned()
            .collect()
    };
    assert_eq!(room_only(&got), room_only(&sent));
    let presence = |v: &[BusMessage]| -> Vec<BusMessage> {
        v.iter()
            .filter(|m| m.room_topic().is_none())
            .cloned()
            .collect()
    };
    assert_eq!(presence(&got), presence(&sent));
}

/// What one publisher sends to a room arrives in that order.
pub async fn order_per_publisher(bus: Arc<dyn Bus>, n: i64) {
    let app = fresh_app();
    let room = RoomNumber(7);
    let mut rx = bus.subscribe();
    listen(&*bus, &mut *rx, Topic::Room(app, room)).await;
    for pos in 1..=n {
        bus.publish(message(app, room, pos));
    }
    for pos in 1..=n {
        assert_eq!(next(&mut *rx).await, message(app, room, pos));
    }
}

/// A receiver gets the topics it listens to and nothing else: not another room's changes, not
/// another app's, not a room it stopped listening to; a membership change reaches a receiver
/// that listens only to the app, and only once one that listens to both.
pub async fn only_what_is_listened(bus: Arc<dyn Bus>) {
    let (app, other) = (fresh_app(), fresh_app());
    let (r1, r2, r3) = (RoomNumber(1), RoomNumber(2), RoomNumber(3));
    let mut rx = bus.subscribe();
    listen(&*bus, &mut *rx, Topic::Room(app, r1)).await;
    listen(&*bus, &mut *rx, Topic::Room(app, r3)).await;
    listen(&*bus, &mut *rx, Topic::App(app)).await;
    let joined = |room: RoomNumber, pos: i64| {
        let data = ChangeData::Membership {
            user: user("cid"),
            by: user("cid"),
            action: MemberAction::Joined,
            state: MemberState::Joined,
            role: Role::Member,
            new_owner: None,
        };
        change(app, room, pos, data)
    };
    // Not listened: another room, another app (same room number), typing elsewhere.
    bus.publish(message(app, r2, 1));
    bus.publish(message(other, r1, 1));
    bus.publish(BusMessage::Typing {
        app,
        room: r2,
        user: user("ann"),
    });
    // Room 2 is not listened, but its membership change travels on the app's topic too.
    bus.publish(joined(r2, 2));
    // Room 3 is listened and so is the app: its membership change comes once, in its place.
    bus.publish(joined(r3, 1));
    bus.publish(message(app, r3, 2));
    bus.publish(message(app, r1, 1));
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next(&mut *rx).await);
    }
    let expected = [
        joined(r2, 2),
        joined(r3, 1),
        message(app, r3, 2),
        message(app, r1, 1),
    ];
    for e in &expected {
        assert_eq!(
            got.iter().filter(|g| *g == e).count(),
            1,
            "{e:?} in {got:?}"
        );
    }
    let r3_order: Vec<_> = got
        .iter()
        .filter(|m| m.room_topic() == Some(Topic::Room(app, r3)))
        .collect();
    assert_eq!(r3_order, [&expected[1], &expected[2]]);
    // Stop listening to room 1: its next change does not come, room 3's does.
    rx.unlisten(Topic::Room(app, r1));
    bus.publish(message(app, r1, 2));
    bus.publish(message(app, r3, 3));
    assert_eq!(next(&mut *rx).await, message(app, r3, 3));
    // Nothing else is waiting: a last marker is the very next message.
    bus.publish(message(app, r3, 4));
    assert_eq!(next(&mut *rx).await, message(app, r3, 4));
}

/// A receiver that does not keep up is told it lost messages before it has seen them all.
pub async fn lag_is_reported(bus: Arc<dyn Bus>, n: i64) {
    let app = fresh_app();
    let room = RoomNumber(1);
    let mut rx = bus.subscribe();
    listen(&*bus, &mut *rx, Topic::Room(app, room)).await;
    for pos in 1..=n {
        bus.publish(message(app, room, pos));
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    for _ in 0..n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Err(BusError::Lagged(lost))) => {
                assert!(lost >= 1, "a lag counts at least one message");
                return;
            }
            Ok(Ok(_)) => {}
            Ok(Err(BusError::Closed)) => panic!("closed instead of lagged"),
            Err(_) => panic!("{n} messages neither arrived nor were reported lost"),
        }
    }
    panic!("all {n} messages arrived: the receiver never lagged (make n larger than its buffer)");
}

/// Once the bus is dropped, its receivers say so.
pub async fn closed_is_reported(bus: Arc<dyn Bus>) {
    let app = fresh_app();
    let mut rx = bus.subscribe();
    listen(&*bus, &mut *rx, Topic::App(app)).await;
    drop(bus);
    loop {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Err(BusError::Closed)) => return,
            // Probes still on their way may come first.
            Ok(Ok(m)) if is_probe(&m) => {}
            other => panic!("expected closed, got {other:?}"),
        }
    }
}
