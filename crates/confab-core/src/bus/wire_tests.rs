//! Every event converts to its wire form or to nothing, and nothing secret survives.

use super::*;
use crate::bus::Topic;
use crate::event::{Event, EventBody, MemberAction};
use crate::ids::Offset;
use crate::meetups::{CloseReason, PollKind, PollOutcome, Results, Rsvp};

const SECRET: &str = "s3cr3t-hash-0f-the-app";
const KEY: &str = "signing-key-material";

/// One event of every kind. Adding an event kind breaks `kind_index` below until a sample of
/// it is added here.
pub(super) fn samples() -> Vec<EventBody> {
    let u = |s: &str| UserId(s.into());
    vec![
        EventBody::AppCreated {
            name: "acme".into(),
            token: "tok".into(),
            secret_hash: SECRET.into(),
            signing_key: KEY.into(),
        },
        EventBody::AppRenamed {
            name: "acme2".into(),
        },
        EventBody::UserUpserted {
            user: u("ann"),
            name: Some("Ann".into()),
            image_url: None,
            email: Some("ann@example.com".into()),
        },
        EventBody::UserLoggedIn { user: u("ann") },
        EventBody::UserSeen { user: u("ann") },
        EventBody::RoomCreated {
            room: RoomNumber(3),
            kind: RoomKind::Group,
            name: Some("general".into()),
            image_url: None,
            visibility: Visibility::Public,
            alias: Some("gen".into()),
            creator: Some(u("ann")),
            direct: None,
            pos: Pos(1),
            seq: Some(Seq(1)),
        },
        EventBody::RoomUpdated {
            room: RoomNumber(3),
            by: u("ann"),
            name: Some("lounge".into()),
            image_url: None,
            visibility: None,
            pos: Pos(2),
            seq: Some(Seq(2)),
        },
        EventBody::Membership {
            room: RoomNumber(3),
            user: u("bob"),
            by: u("ann"),
            action: MemberAction::Kicked,
            state: MemberState::Kicked,
            role: Role::Member,
            new_owner: None,
            pos: Pos(3),
            seq: Some(Seq(3)),
        },
        EventBody::MessagePosted {
            room: RoomNumber(3),
            seq: Seq(4),
            pos: Pos(4),
            sender: Some(u("ann")),
            text: "hello".into(),
            reply_to: None,
            client_id: Some("c1".into()),
            redacted: false,
        },
        EventBody::MessageEdited {
            room: RoomNumber(3),
            seq: Seq(4),
            pos: Pos(5),
            text: "hello again".into(),
            redacted: false,
        },
        EventBody::MessageDeleted {
            room: RoomNumber(3),
            seq: Seq(4),
            pos: Pos(6),
            by: Some(u("ann")),
        },
        EventBody::RoomDeleted {
            room: RoomNumber(3),
            by: u("ann"),
            pos: Pos(7),
        },
        EventBody::ReadMarkerSet {
            room: RoomNumber(3),
            user: u("ann"),
            seq: Seq(4),
        },
        EventBody::MeetupCreated {
            room: RoomNumber(3),
            meetup: MeetupNumber(1),
            organizer: u("ann"),
            name: "Picnic".into(),
            location: "Park".into(),
            takes_place_on: Timestamp(1_800_000_000_000),
            image_url: None,
            pos: Pos(8),
            seq: Seq(5),
        },
        EventBody::MeetupUpdated {
            room: RoomNumber(3),
            meetup: MeetupNumber(1),
            by: u("ann"),
            name: None,
            location: Some("Beach".into()),
            takes_place_on: Some(Timestamp(1_800_000_360_000)),
            image_url: None,
            poll: Some(PollNumber(1)),
            pos: Pos(9),
            seq: Some(Seq(6)),
        },
        EventBody::MeetupCancelled {
            room: RoomNumber(3),
            meetup: MeetupNumber(1),
            by: u("ann"),
            pos: Pos(10),
            seq: Seq(7),
        },
        EventBody::RsvpChanged {
            room: RoomNumber(3),
            meetup: MeetupNumber(1),
            user: u("bob"),
            rsvp: Rsvp::Maybe,
            pos: Pos(11),
        },
        EventBody::PollCreated {
            room: RoomNumber(3),
            poll: PollNumber(1),
            creator: u("ann"),
            question: "Where?".into(),
            kind: PollKind::Relocate,
            choices: vec!["Park".into(), "Beach".into()],
            max_selections: 1,
            results: Results::Undisclosed,
            closes_at: Some(Timestamp(1_790_000_000_000)),
            meetup: Some(MeetupNumber(1)),
            voters: vec![u("ann"), u("bob")],
            pos: Pos(12),
            seq: Seq(8),
        },
        EventBody::VoteCast {
            room: RoomNumber(3),
            poll: PollNumber(1),
            user: u("bob"),
            choices: vec![1],
            secret: true,
            pos: Pos(13),
        },
        EventBody::VoteWithdrawn {
            room: RoomNumber(3),
            poll: PollNumber(1),
            user: u("bob"),
            pos: Pos(14),
        },
        EventBody::PollClosed {
            room: RoomNumber(3),
            poll: PollNumber(1),
            by: None,
            reason: CloseReason::AllVoted,
            tallies: vec![0, 2],
            outcome: PollOutcome::Decided,
            winner: Some(1),
            winning_choice: Some("Beach".into()),
            pos: Pos(15),
            seq: Seq(9),
        },
    ]
}

/// The meetup and poll events, whose public shape differs from the stored one on purpose
/// (times as RFC 3339, secret votes, voter lists only in the log).
fn is_gathering(b: &EventBody) -> bool {
    kind_index(b) >= 13
}

/// Exhaustive (no wildcard): a new event kind fails to compile here.
fn kind_index(b: &EventBody) -> usize {
    use EventBody::*;
    match b {
        AppCreated { .. } => 0,
        AppRenamed { .. } => 1,
        UserUpserted { .. } => 2,
        UserLoggedIn { .. } => 3,
        UserSeen { .. } => 4,
        RoomCreated { .. } => 5,
        RoomUpdated { .. } => 6,
        Membership { .. } => 7,
        MessagePosted { .. } => 8,
        MessageEdited { .. } => 9,
        MessageDeleted { .. } => 10,
        RoomDeleted { .. } => 11,
        ReadMarkerSet { .. } => 12,
        MeetupCreated { .. } => 13,
        MeetupUpdated { .. } => 14,
        MeetupCancelled { .. } => 15,
        RsvpChanged { .. } => 16,
        PollCreated { .. } => 17,
        VoteCast { .. } => 18,
        VoteWithdrawn { .. } => 19,
        PollClosed { .. } => 20,
    }
}

fn event(body: EventBody) -> Event {
    Event {
        app: AppId(9),
        offset: Offset(1),
        at: Timestamp(1_700_000_000_000),
        body,
    }
}

#[test]
fn every_event_kind_converts_or_is_skipped_and_nothing_secret_travels() {
    let all = samples();
    let mut seen: Vec<usize> = all.iter().map(kind_index).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..21).collect::<Vec<_>>(), "one sample per kind");
    for body in all {
        let ev = event(body.clone());
        let item = new_message_item(&ev);
        let msg = BusMessage::from_event(&ev, item.as_ref());
        match &body {
            EventBody::AppCreated { .. }
            | EventBody::AppRenamed { .. }
            | EventBody::UserUpserted { .. }
            | EventBody::UserLoggedIn { .. }
            | EventBody::UserSeen { .. } => {
                assert_eq!(msg, None, "{} stays on its node", body.type_name());
                continue;
            }
            EventBody::ReadMarkerSet { .. } => {
                assert!(matches!(msg, Some(BusMessage::Read { .. })));
            }
            _ => {
                let Some(BusMessage::Change(c)) = &msg else {
                    panic!("{} is a room change", body.type_name());
                };
                assert_eq!((c.room, c.pos), body.room_pos().expect("room change"));
                assert_eq!(c.seq, body.item_seq());
                assert_eq!(c.change.type_name(), body.type_name());
                assert_eq!(c.app, AppId(9));
            }
        }
        let msg = msg.expect("converted");
        let bytes = msg.encode();
        let text = String::from_utf8(bytes.clone()).expect("JSON");
        for secret in [SECRET, KEY, "ann@example.com"] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert_eq!(BusMessage::decode(&bytes).expect("decodes"), msg);
    }
}

#[test]
fn the_change_data_is_what_clients_already_see() {
    // The `data` of a change was the event's public JSON less room, position, seq and text.
    for body in samples() {
        let Some(data) = ChangeData::from_body(&body) else {
            continue;
        };
        if is_gathering(&body) {
            continue;
        }
        let mut old = body.public_json();
        if let serde_json::Value::Object(map) = &mut old {
            for key in ["type", "room", "pos", "seq", "text"] {
                map.remove(key);
            }
        }
        assert_eq!(data.client_json(), old, "{}", body.type_name());
    }
}

#[test]
fn a_new_message_carries_its_item_and_membership_goes_to_the_app_too() {
    let ev = event(samples().remove(8));
    let item = new_message_item(&ev).expect("a post makes an item");
    assert_eq!(item.text.as_deref(), Some("hello"));
    assert_eq!(item.created_at, ev.at);
    let msg = BusMessage::from_event(&ev, Some(&item)).expect("change");
    assert_eq!(msg.room_topic(), Some(Topic::Room(AppId(9), RoomNumber(3))));
    assert_eq!(msg.app_topic(), None);
    let kick = BusMessage::from_event(&event(samples().remove(7)), None).expect("change");
    assert_eq!(kick.app_topic(), Some(Topic::App(AppId(9))));
}

#[test]
fn other_versions_and_garbage_are_refused() {
    let msg = BusMessage::Typing {
        app: AppId(1),
        room: RoomNumber(2),
        user: UserId("u".into()),
    };
    let text = String::from_utf8(msg.encode()).expect("JSON");
    assert!(text.starts_with(r#"{"v":1,"#), "{text}");
    let v2 = text.replacen(r#""v":1"#, r#""v":2"#, 1);
    assert!(matches!(
        BusMessage::decode(v2.as_bytes()),
        Err(WireError::Version(2))
    ));
    let v2_other_shape = r#"{"v":2,"m":{"t":"hologram"}}"#;
    assert!(matches!(
        BusMessage::decode(v2_other_shape.as_bytes()),
        Err(WireError::Version(2))
    ));
    assert!(matches!(
        BusMessage::decode(b"{\"v\":1}"),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn the_public_json_of_an_event_is_its_stored_shape_without_the_secrets() {
    let mut all = samples();
    if let Some(EventBody::MessagePosted { redacted, .. }) = all
        .iter_mut()
        .find(|b| matches!(b, EventBody::MessagePosted { .. }))
    {
        *redacted = true;
    }
    for body in all {
        let public = body.public_json();
        let text = public.to_string();
        for secret in [SECRET, KEY] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        if is_gathering(&body) {
            continue;
        }
        let mut stored = serde_json::to_value(&body).expect("serializes");
        if let serde_json::Value::Object(map) = &mut stored {
            for key in ["type", "secret_hash", "signing_key"] {
                map.remove(key);
            }
        }
        assert_eq!(public, stored, "{}", body.type_name());
    }
}

#[test]
fn gatherings_show_times_as_rfc3339_and_keep_secret_votes_secret() {
    for body in samples().into_iter().filter(is_gathering) {
        let public = body.public_json();
        let data = ChangeData::from_body(&body)
            .expect("a room change")
            .client_json();
        for v in [&public, &data] {
            for key in ["takes_place_on", "closes_at"] {
                if let Some(t) = v.get(key).and_then(|t| t.as_str()) {
                    assert!(t.ends_with('Z') && t.contains('T'), "{key} {t}");
                }
            }
        }
        match &body {
            EventBody::VoteCast { .. } => {
                assert_eq!(public.get("choices"), None, "{public}");
                assert_eq!(data.get("choices"), None, "{data}");
                assert_eq!(data["user"], "bob");
            }
            EventBody::PollCreated { .. } => {
                assert_eq!(public["voters"], serde_json::json!(["ann", "bob"]));
                assert_eq!(data["voters_count"], 2);
                assert_eq!(data.get("voters"), None);
            }
            _ => {}
        }
    }
    // A disclosed poll's vote shows its choices.
    let open = EventBody::VoteCast {
        room: RoomNumber(3),
        poll: PollNumber(2),
        user: UserId("bob".into()),
        choices: vec![0, 1],
        secret: false,
        pos: Pos(16),
    };
    assert_eq!(open.public_json()["choices"], serde_json::json!([0, 1]));
    let data = ChangeData::from_body(&open).expect("change").client_json();
    assert_eq!(data["choices"], serde_json::json!([0, 1]));
}
