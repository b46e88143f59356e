//! Sending: the created item, idempotent retries, replies and threads.

use super::{Setup, item, room_details, seq, seqs, setup};
use crate::common::assert_error;
use reqwest::StatusCode;
use serde_json::{Value, json};

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
