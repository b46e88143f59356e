//! What non-members get: refusals in a public room, nothing at all of a private one.

use super::{Setup, item, mark_read, room_details, seq, setup};
use crate::common::assert_error;
use reqwest::StatusCode;
use serde_json::json;

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
