//! Messages: send, idempotent retries, replies and threads, one item, edit, delete, read
//! markers and unread counts, and the refusals non-members get.

use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// An app with users alice (the owner of a public group), bob (a member) and carol (not a
/// member); returns the server, the tokens and the room.
struct Setup {
    s: Server,
    alice: String,
    bob: String,
    carol: String,
    room: i64,
}

async fn setup(visibility: &str) -> Setup {
    let s = Server::start().await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let room = s.group(&alice, visibility, &["bob"]).await;
    Setup {
        s,
        alice,
        bob,
        carol,
        room,
    }
}

async fn room_details(s: &Server, token: &str, room: i64) -> Value {
    let (status, body) = s.get(&format!("/v1/rooms/{room}"), token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn item(s: &Server, token: &str, room: i64, seq: i64) -> Value {
    let (status, body) = s
        .get(&format!("/v1/rooms/{room}/messages/{seq}"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn seq(item: &Value) -> i64 {
    item["seq"].as_i64().expect("seq")
}

fn seqs(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(seq)
        .collect()
}

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

async fn mark_read(s: &Server, token: &str, room: i64, seq: i64) -> (StatusCode, Value) {
    s.put(
        &format!("/v1/rooms/{room}/read"),
        token,
        json!({ "seq": seq }),
    )
    .await
}

#[tokio::test]
async fn a_sent_message_comes_back_created_with_the_next_seq_and_pos() {
    let Setup { s, alice, room, .. } = setup("public").await;
    let before = room_details(&s, &alice, room).await;
    let (status, sent) = s
        .post(
            &format!("/v1/rooms/{room}/messages"),
            &alice,
            json!({ "text": "hello" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(
        sent["seq"].as_i64(),
        before["last_seq"].as_i64().map(|n| n + 1)
    );
    assert_eq!(
        sent["pos"].as_i64(),
        before["last_pos"].as_i64().map(|n| n + 1)
    );
    assert_eq!(sent["kind"], "message");
    assert_eq!(sent["sender"], "alice");
    assert_eq!(sent["text"], "hello");
    assert_eq!(sent["reply_to"], Value::Null);
    assert_eq!(sent["reply_count"], 0);
    assert_eq!(sent["edited_at"], Value::Null);
    assert_eq!(sent["deleted"], false);
    assert!(sent["created_at"].is_string(), "{sent}");

    let after = room_details(&s, &alice, room).await;
    assert_eq!(after["last_seq"], sent["seq"]);
    assert_eq!(after["last_pos"], sent["pos"]);
    assert_eq!(after["messages_count"], 1);
    assert_eq!(item(&s, &alice, room, seq(&sent)).await, sent);

    // The next one follows directly.
    let next = s.send(&alice, room, "again").await;
    assert_eq!(seq(&next), seq(&sent) + 1);
    assert_eq!(next["pos"].as_i64(), sent["pos"].as_i64().map(|p| p + 1));
}

#[tokio::test]
async fn a_retry_with_the_same_client_id_returns_the_same_item() {
    let Setup {
        s,
        alice,
        bob,
        room,
        ..
    } = setup("public").await;
    let path = format!("/v1/rooms/{room}/messages");
    let body = json!({ "text": "once only", "client_id": "c-1" });
    let (status, first) = s.post(&path, &alice, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let last_seq = room_details(&s, &alice, room).await["last_seq"].clone();
    assert_eq!(last_seq, first["seq"]);

    let (status, again) = s.post(&path, &alice, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again["pos"], first["pos"]);
    assert_eq!(again["text"], "once only");
    let details = room_details(&s, &alice, room).await;
    assert_eq!(details["last_seq"], last_seq, "a retry adds nothing");
    assert_eq!(details["messages_count"], 1);

    // The same client_id with another text is a conflict, and changes nothing.
    let got = s
        .post(
            &path,
            &alice,
            json!({ "text": "something else", "client_id": "c-1" }),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "client_id_reused");
    assert_eq!(room_details(&s, &alice, room).await["last_seq"], last_seq);

    // Another sender's client ids are their own.
    let (status, bobs) = s.post(&path, &bob, body).await;
    assert_eq!(status, StatusCode::CREATED, "{bobs}");
    assert_eq!(bobs["sender"], "bob");
    assert_ne!(bobs["seq"], first["seq"]);

    let (status, page) = s.get(&path, &alice).await;
    assert_eq!(status, StatusCode::OK);
    let alices: Vec<&Value> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["text"] == "once only" && i["sender"] == "alice")
        .collect();
    assert_eq!(alices.len(), 1, "{page}");
}

#[tokio::test]
async fn replies_point_to_a_message_of_the_same_room() {
    let Setup {
        s,
        alice,
        bob,
        room,
        ..
    } = setup("public").await;
    let path = format!("/v1/rooms/{room}/messages");
    let parent = s.send(&alice, room, "a question").await;
    let (status, reply) = s
        .post(
            &path,
            &bob,
            json!({ "text": "an answer", "reply_to": seq(&parent) }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["reply_to"], parent["seq"]);
    assert_eq!(item(&s, &alice, room, seq(&parent)).await["reply_count"], 1);
    let (status, _) = s
        .post(
            &path,
            &alice,
            json!({ "text": "another", "reply_to": seq(&parent) }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(item(&s, &bob, room, seq(&parent)).await["reply_count"], 2);

    // An unknown seq.
    let got = s
        .post(
            &path,
            &bob,
            json!({ "text": "to nothing", "reply_to": 9999 }),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reply_target_not_found",
    );
    // Seq 1 is the announcement that the room was created.
    let first = item(&s, &alice, room, 1).await;
    assert_eq!(first["kind"], "announcement");
    let got = s
        .post(
            &path,
            &bob,
            json!({ "text": "to the system", "reply_to": 1 }),
        )
        .await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "not_a_message");

    // A seq that exists only in another room does not name a message of this one.
    let other = s.group(&alice, "public", &["bob"]).await;
    let mut far = Value::Null;
    for i in 0..10 {
        far = s.send(&alice, other, &format!("elsewhere {i}")).await;
    }
    let last_here = room_details(&s, &alice, room).await["last_seq"]
        .as_i64()
        .expect("last_seq");
    assert!(seq(&far) > last_here);
    let got = s
        .post(
            &path,
            &bob,
            json!({ "text": "across rooms", "reply_to": seq(&far) }),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reply_target_not_found",
    );
    assert_eq!(item(&s, &alice, other, seq(&far)).await["reply_count"], 0);

    // Refused replies added nothing.
    let details = room_details(&s, &alice, room).await;
    assert_eq!(details["last_seq"], last_here);
    assert_eq!(details["messages_count"], 3);
}

#[tokio::test]
async fn a_thread_pages_both_ways() {
    let Setup {
        s,
        alice,
        bob,
        room,
        ..
    } = setup("public").await;
    let path = format!("/v1/rooms/{room}/messages");
    let noise = s.send(&alice, room, "before the thread").await;
    let parent = s.send(&alice, room, "thread start").await;
    let p = seq(&parent);
    let mut replies = Vec::new();
    for i in 0..7 {
        s.send(&alice, room, &format!("noise {i}")).await;
        let who = if i % 2 == 0 { &bob } else { &alice };
        let (status, r) = s
            .post(
                &path,
                who,
                json!({ "text": format!("reply {i}"), "reply_to": p }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
        replies.push(seq(&r));
    }
    s.send(&alice, room, "after the thread").await;
    assert_eq!(item(&s, &alice, room, p).await["reply_count"], 7);
    let base = format!("{path}/{p}/replies");

    // Everything at once.
    let (status, all) = s.get(&base, &bob).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(seqs(&all), replies);
    assert!(
        all["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["reply_to"] == p)
    );
    assert_eq!(all["prev_cursor"], Value::Null);
    assert_eq!(all["next_cursor"], Value::Null);

    // Backwards from the newest, three at a time.
    let (status, mut page) = s.get(&format!("{base}?limit=3"), &bob).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        page["next_cursor"],
        Value::Null,
        "the newest page is the end"
    );
    let mut back: Vec<i64> = Vec::new();
    loop {
        let mut got = seqs(&page);
        assert!(!got.is_empty() && got.len() <= 3, "{page}");
        got.extend(back);
        back = got;
        let Some(c) = page["prev_cursor"].as_str() else {
            break;
        };
        let (status, next) = s.get(&format!("{base}?limit=3&cursor={c}"), &bob).await;
        assert_eq!(status, StatusCode::OK, "{next}");
        assert!(
            next["next_cursor"].is_string(),
            "newer replies exist: {next}"
        );
        page = next;
    }
    assert_eq!(back, replies);

    // Forwards from the start, three at a time.
    let (status, mut page) = s.get(&format!("{base}?after=0&limit=3"), &bob).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        page["prev_cursor"],
        Value::Null,
        "the first page is the start: {page}"
    );
    let mut fwd: Vec<i64> = Vec::new();
    loop {
        let got = seqs(&page);
        assert!(!got.is_empty() && got.len() <= 3, "{page}");
        fwd.extend(got);
        let Some(c) = page["next_cursor"].as_str() else {
            break;
        };
        let (status, next) = s.get(&format!("{base}?limit=3&cursor={c}"), &bob).await;
        assert_eq!(status, StatusCode::OK, "{next}");
        assert!(
            next["prev_cursor"].is_string(),
            "older replies exist: {next}"
        );
        page = next;
    }
    assert_eq!(fwd, replies);

    // Bounds work on the replies' seqs.
    let (_, mid) = s.get(&format!("{base}?before={}", replies[3]), &bob).await;
    assert_eq!(seqs(&mid), replies[..3].to_vec());
    assert_eq!(mid["prev_cursor"], Value::Null, "{mid}");
    let (_, mid) = s.get(&format!("{base}?after={}", replies[3]), &bob).await;
    assert_eq!(seqs(&mid), replies[4..].to_vec());
    assert_eq!(mid["next_cursor"], Value::Null, "{mid}");
    let (_, mid) = s
        .get(&format!("{base}?before={}", replies[6] + 1), &bob)
        .await;
    assert_eq!(seqs(&mid), replies);
    assert_eq!(mid["next_cursor"], Value::Null, "no later replies: {mid}");

    // A message without replies has an empty thread; an announcement has none.
    let (status, empty) = s
        .get(&format!("{path}/{}/replies", seq(&noise)), &bob)
        .await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["prev_cursor"], Value::Null);
    assert_eq!(empty["next_cursor"], Value::Null);
    let got = s.get(&format!("{path}/1/replies"), &bob).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "not_a_message");
    let got = s.get(&format!("{path}/9999/replies"), &bob).await;
    assert_error(&got, StatusCode::NOT_FOUND, "message_not_found");
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

#[tokio::test]
async fn non_members_are_refused_in_a_public_room() {
    let Setup {
        s,
        alice,
        carol,
        room,
        ..
    } = setup("public").await;
    let sent = s.send(&alice, room, "members only").await;
    let msgs = format!("/v1/rooms/{room}/messages");
    let one = format!("{msgs}/{}", seq(&sent));
    let code = (StatusCode::FORBIDDEN, "not_a_member");

    let got = s.post(&msgs, &carol, json!({ "text": "let me in" })).await;
    assert_error(&got, code.0, code.1);
    let got = s.get(&msgs, &carol).await;
    assert_error(&got, code.0, code.1);
    let got = s.get(&one, &carol).await;
    assert_error(&got, code.0, code.1);
    let got = s.get(&format!("{one}/replies"), &carol).await;
    assert_error(&got, code.0, code.1);
    let got = s.patch(&one, &carol, json!({ "text": "mine now" })).await;
    assert_error(&got, code.0, code.1);
    let got = s.delete(&one, &carol).await;
    assert_error(&got, code.0, code.1);
    let got = mark_read(&s, &carol, room, 1).await;
    assert_error(&got, code.0, code.1);
    let got = s
        .get(&format!("/v1/rooms/{room}/changes?since=0"), &carol)
        .await;
    assert_error(&got, code.0, code.1);

    // Nothing changed, and the details stay visible to every user of the app.
    let details = room_details(&s, &carol, room).await;
    assert_eq!(details["last_seq"], sent["seq"]);
    assert_eq!(details["messages_count"], 1);
    assert_eq!(
        item(&s, &alice, room, seq(&sent)).await["text"],
        "members only"
    );

    // After joining, carol may do all of it.
    let (status, _) = s
        .post(&format!("/v1/rooms/{room}/join"), &carol, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mine = s.send(&carol, room, "hi all").await;
    assert_eq!(item(&s, &carol, room, seq(&sent)).await, sent);
    let (status, _) = s
        .patch(
            &format!("{msgs}/{}", seq(&mine)),
            &carol,
            json!({ "text": "hi, all" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // And after leaving, none of it again.
    let (status, _) = s
        .post(&format!("/v1/rooms/{room}/leave"), &carol, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let got = s
        .post(&msgs, &carol, json!({ "text": "still here?" }))
        .await;
    assert_error(&got, code.0, code.1);
    let got = s
        .patch(
            &format!("{msgs}/{}", seq(&mine)),
            &carol,
            json!({ "text": "edit" }),
        )
        .await;
    assert_error(&got, code.0, code.1);
}

#[tokio::test]
async fn a_private_room_does_not_exist_for_non_members() {
    let Setup {
        s,
        alice,
        carol,
        room,
        ..
    } = setup("private").await;
    let sent = s.send(&alice, room, "secret").await;
    let msgs = format!("/v1/rooms/{room}/messages");
    let one = format!("{msgs}/{}", seq(&sent));
    let code = (StatusCode::NOT_FOUND, "room_not_found");

    let got = s
        .post(&msgs, &carol, json!({ "text": "knock knock" }))
        .await;
    assert_error(&got, code.0, code.1);
    let got = s.get(&msgs, &carol).await;
    assert_error(&got, code.0, code.1);
    let got = s.get(&one, &carol).await;
    assert_error(&got, code.0, code.1);
    let got = s.patch(&one, &carol, json!({ "text": "mine now" })).await;
    assert_error(&got, code.0, code.1);
    let got = s.delete(&one, &carol).await;
    assert_error(&got, code.0, code.1);
    let got = mark_read(&s, &carol, room, 1).await;
    assert_error(&got, code.0, code.1);
    let got = s
        .get(&format!("/v1/rooms/{room}/changes?since=0"), &carol)
        .await;
    assert_error(&got, code.0, code.1);
    let got = s.get(&format!("/v1/rooms/{room}"), &carol).await;
    assert_error(&got, code.0, code.1);

    // The same answers as for a room that does not exist at all.
    let got = s
        .post(
            "/v1/rooms/999/messages",
            &carol,
            json!({ "text": "anyone?" }),
        )
        .await;
    assert_error(&got, code.0, code.1);
    let got = mark_read(&s, &carol, 999, 1).await;
    assert_error(&got, code.0, code.1);

    let details = room_details(&s, &alice, room).await;
    assert_eq!(details["last_seq"], sent["seq"]);
    assert_eq!(details["messages_count"], 1);
}
