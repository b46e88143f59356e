//! One message after it is sent: read by its seq, edited, deleted; and read markers with the
//! unread counts they drive.

use super::{Setup, item, mark_read, room_details, seq, seqs, setup};
use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The `unread_count` of `room` in the caller's room list.
async fn unread(s: &Server, token: &str, room: i64) -> i64 {
    let (status, body) = s.get("/v1/rooms", token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rooms = body["rooms"].as_array().expect("rooms");
    let r = rooms
        .iter()
        .find(|r| r["number"] == room)
        .unwrap_or_else(|| panic!("room {room} not in {body}"));
    r["unread_count"].as_i64().expect("unread_count")
}

#[tokio::test]
async fn one_message_is_read_by_its_seq() {
    let Setup {
        s,
        alice,
        bob,
        room,
        ..
    } = setup("public").await;
    let sent = s.send(&alice, room, "find me").await;
    let got = item(&s, &bob, room, seq(&sent)).await;
    assert_eq!(got, sent);
    let got = s
        .get(&format!("/v1/rooms/{room}/messages/9999"), &bob)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "message_not_found");
    let got = s.get(&format!("/v1/rooms/{room}/messages/0"), &bob).await;
    assert_error(&got, StatusCode::NOT_FOUND, "message_not_found");
}

#[tokio::test]
async fn only_the_sender_edits_and_an_edit_moves_the_pos() {
    let Setup {
        s,
        alice,
        bob,
        room,
        ..
    } = setup("public").await;
    let sent = s.send(&bob, room, "frist").await;
    let at = format!("/v1/rooms/{room}/messages/{}", seq(&sent));
    s.send(&alice, room, "in between").await;

    // Not even the owner edits someone else's message.
    let got = s.patch(&at, &alice, json!({ "text": "hijacked" })).await;
    assert_error(&got, StatusCode::FORBIDDEN, "not_allowed");
    assert_eq!(item(&s, &bob, room, seq(&sent)).await["text"], "frist");

    let before = room_details(&s, &bob, room).await;
    let (status, edited) = s.patch(&at, &bob, json!({ "text": "first" })).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["seq"], sent["seq"]);
    assert_eq!(edited["text"], "first");
    assert!(edited["edited_at"].is_string(), "{edited}");
    assert_eq!(edited["created_at"], sent["created_at"]);
    assert_eq!(
        edited["pos"].as_i64(),
        before["last_pos"].as_i64().map(|p| p + 1)
    );
    let after = room_details(&s, &bob, room).await;
    assert_eq!(after["last_pos"], edited["pos"]);
    assert_eq!(
        after["last_seq"], before["last_seq"],
        "an edit adds no item"
    );
    assert_eq!(after["messages_count"], before["messages_count"]);
    assert_eq!(item(&s, &alice, room, seq(&sent)).await, edited);

    // Empty texts are refused; announcements cannot be edited.
    let got = s.patch(&at, &bob, json!({ "text": "  " })).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "text_empty");
    let got = s
        .patch(
            &format!("/v1/rooms/{room}/messages/1"),
            &alice,
            json!({ "text": "x" }),
        )
        .await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "not_a_message");
    let got = s
        .patch(
            &format!("/v1/rooms/{room}/messages/9999"),
            &alice,
            json!({ "text": "x" }),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "message_not_found");

    // A deleted message stays deleted.
    let (status, _) = s.delete(&at, &bob).await;
    assert_eq!(status, StatusCode::OK);
    let got = s.patch(&at, &bob, json!({ "text": "back" })).await;
    assert_error(&got, StatusCode::CONFLICT, "message_deleted");
    assert_eq!(item(&s, &bob, room, seq(&sent)).await["text"], Value::Null);
}

#[tokio::test]
async fn a_deleted_message_leaves_a_tombstone() {
    let s = Server::start().await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let room = s.group(&alice, "public", &["bob", "carol"]).await;
    let bobs = s.send(&bob, room, "bob says").await;
    let carols = s.send(&carol, room, "carol says").await;
    let last = s.send(&alice, room, "alice says").await;
    let before = room_details(&s, &alice, room).await;
    assert_eq!(before["messages_count"], 3);

    // A plain member cannot delete someone else's message.
    let bobs_at = format!("/v1/rooms/{room}/messages/{}", seq(&bobs));
    let got = s.delete(&bobs_at, &carol).await;
    assert_error(&got, StatusCode::FORBIDDEN, "not_allowed");

    // The sender can.
    let (status, tomb) = s.delete(&bobs_at, &bob).await;
    assert_eq!(status, StatusCode::OK, "{tomb}");
    assert_eq!(tomb["seq"], bobs["seq"]);
    assert_eq!(tomb["deleted"], true);
    assert_eq!(tomb["text"], Value::Null);
    assert_eq!(tomb["sender"], "bob");
    assert_eq!(
        tomb["pos"].as_i64(),
        before["last_pos"].as_i64().map(|p| p + 1)
    );
    let mid = room_details(&s, &alice, room).await;
    assert_eq!(mid["messages_count"], 2);
    assert_eq!(mid["last_seq"], before["last_seq"], "the seq stays");

    // The owner (an admin) can delete anyone's.
    let (status, tomb2) = s
        .delete(
            &format!("/v1/rooms/{room}/messages/{}", seq(&carols)),
            &alice,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tomb2}");
    assert_eq!(tomb2["deleted"], true);
    assert_eq!(room_details(&s, &alice, room).await["messages_count"], 1);

    // Deleting again changes nothing.
    let (status, again) = s.delete(&bobs_at, &bob).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["pos"], tomb["pos"]);
    assert_eq!(room_details(&s, &alice, room).await["messages_count"], 1);

    // The history still holds every seq, the deleted ones as tombstones.
    let (status, page) = s.get(&format!("/v1/rooms/{room}/messages"), &carol).await;
    assert_eq!(status, StatusCode::OK);
    let got = seqs(&page);
    let want: Vec<i64> = (1..=seq(&last)).collect();
    assert_eq!(got, want);
    for i in page["items"].as_array().expect("items") {
        if i["seq"] == bobs["seq"] || i["seq"] == carols["seq"] {
            assert_eq!(i["deleted"], true, "{i}");
            assert_eq!(i["text"], Value::Null, "{i}");
        } else {
            assert_eq!(i["deleted"], false, "{i}");
            assert!(i["text"].is_string(), "{i}");
        }
    }
    assert_eq!(item(&s, &bob, room, seq(&bobs)).await, tomb);

    // Unknown seqs and announcements.
    let got = s
        .delete(&format!("/v1/rooms/{room}/messages/9999"), &alice)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "message_not_found");
    let got = s
        .delete(&format!("/v1/rooms/{room}/messages/1"), &alice)
        .await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "not_a_message");
}

#[tokio::test]
async fn read_markers_never_move_back_and_drive_unread_counts() {
    let Setup {
        s,
        alice,
        bob,
        room,
        ..
    } = setup("public").await;
    // Joining counts as having read everything before.
    assert_eq!(unread(&s, &bob, room).await, 0);
    assert_eq!(unread(&s, &alice, room).await, 0);

    let a1 = s.send(&alice, room, "one").await;
    let a2 = s.send(&alice, room, "two").await;
    let a3 = s.send(&alice, room, "three").await;
    assert_eq!(unread(&s, &bob, room).await, 3);
    assert_eq!(unread(&s, &alice, room).await, 0, "own messages are read");

    // Bob's own message does not count for him, but does for alice.
    let b1 = s.send(&bob, room, "mine").await;
    assert_eq!(unread(&s, &bob, room).await, 3);
    assert_eq!(unread(&s, &alice, room).await, 1);

    let (status, body) = mark_read(&s, &bob, room, seq(&a1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["read_seq"], a1["seq"]);
    assert_eq!(unread(&s, &bob, room).await, 2);

    // Backwards is ignored: the marker stays where it was.
    let (status, body) = mark_read(&s, &bob, room, seq(&a1) - 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["read_seq"], a1["seq"]);
    let (status, body) = mark_read(&s, &bob, room, 0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["read_seq"], a1["seq"]);
    assert_eq!(unread(&s, &bob, room).await, 2);

    // Beyond the last seq is refused.
    let got = mark_read(&s, &bob, room, seq(&b1) + 1).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "seq_out_of_range");
    let got = mark_read(&s, &bob, room, -1).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "seq_out_of_range");

    let (status, body) = mark_read(&s, &bob, room, seq(&a3)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["read_seq"], a3["seq"]);
    assert_eq!(unread(&s, &bob, room).await, 0);
    let _ = a2;

    // The room list and the member list both show the marker.
    let (_, rooms) = s.get("/v1/rooms", &bob).await;
    let mine = rooms["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["number"] == room)
        .cloned()
        .expect("room listed");
    assert_eq!(mine["read_seq"], a3["seq"]);
    let (status, members) = s.get(&format!("/v1/rooms/{room}/members"), &alice).await;
    assert_eq!(status, StatusCode::OK, "{members}");
    let bob_row = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["user_id"] == "bob")
        .cloned()
        .expect("bob listed");
    assert_eq!(bob_row["read_seq"], a3["seq"]);

    // New messages by others count again; alice reads to the end.
    s.send(&alice, room, "four").await;
    assert_eq!(unread(&s, &bob, room).await, 1);
    let (status, body) = mark_read(&s, &alice, room, seq(&b1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(unread(&s, &alice, room).await, 0);
}
