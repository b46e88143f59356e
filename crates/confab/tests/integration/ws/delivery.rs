//! Delivery on one node: every change to every member in order, subscriptions that follow
//! membership, and presence, typing and read markers.

use super::{alice_and_bob, assert_same, login, pos, room_pos, sender, store_changes};
use crate::common::Server;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn ws_delivers_every_change_to_every_member_in_order() {
    let s = Server::start().await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let room = s.group(&alice, "private", &["bob", "carol"]).await;
    let (mut a, ready) = login(&s, &alice, None).await;
    assert_eq!(ready["user"], "alice");
    let start = room_pos(&ready, room);
    let (mut b, _) = login(&s, &bob, None).await;
    let (mut c, _) = login(&s, &carol, None).await;
    for i in 0..10 {
        s.send(&alice, room, &format!("rest {i}")).await;
    }
    // Bob's acks interleave with the changes he receives; the changes alone are complete.
    let mut got = Vec::new();
    for i in 0..5 {
        b.send(json!({"type": "send", "room": room, "text": format!("ws {i}"), "ref": i}))
            .await;
        loop {
            let f = b.next().await;
            if f["type"] == "change" {
                got.push(f);
                continue;
            }
            if f["type"] == "presence" || f["type"] == "presence_list" {
                continue;
            }
            assert_eq!(f["type"], "ack", "{f}");
            assert_eq!(f["ref"], i);
            assert_eq!(f["created"], true);
            break;
        }
    }
    let store = store_changes(&s, &alice, room, start).await;
    assert_eq!(store.len(), 15);
    for client in [&mut a, &mut c] {
        let got = client.changes(room, 15).await;
        assert_same(&got, &store);
    }
    let missing = 15 - got.len();
    got.extend(b.changes(room, missing).await);
    assert_same(&got, &store);
}

#[tokio::test]
async fn ws_a_big_room_under_bursts_delivers_every_change_in_order_to_everyone() {
    let s = Server::start_with(|c| c.durability = "normal".into()).await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    // Enough members that the fan-out writes each change in several slices and, when it
    // falls behind, takes several changes of the room together.
    let names: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    let mut tokens = Vec::new();
    for n in &names {
        tokens.push(s.user(&app, n).await);
    }
    let room = s.group(&alice, "public", &[]).await;
    for t in &tokens {
        let (status, body) = s
            .post(&format!("/v1/rooms/{room}/join"), t, json!({}))
            .await;
        assert!(status.is_success(), "{body}");
    }
    let mut readers = Vec::new();
    let total = 200;
    for t in &tokens {
        let (mut c, ready) = login(&s, t, None).await;
        let start = room_pos(&ready, room);
        readers.push(tokio::spawn(async move {
            let got = c.changes(room, total).await;
            let positions: Vec<i64> = got.iter().map(pos).collect();
            let expected: Vec<i64> = (start + 1..=start + total as i64).collect();
            assert_eq!(positions, expected);
        }));
    }
    // Bursts from four senders at once.
    let senders: Vec<_> = (0..4)
        .map(|k| sender(&s, &alice, room, total / 4, k))
        .collect();
    for t in senders {
        t.await.expect("sender");
    }
    for r in readers {
        r.await.expect("every member got every change in order");
    }
}

#[tokio::test]
async fn ws_two_connections_of_one_user_both_receive() {
    let s = Server::start().await;
    let (alice, bob, room) = alice_and_bob(&s).await;
    let (mut b1, r1) = login(&s, &bob, None).await;
    let (mut b2, r2) = login(&s, &bob, None).await;
    assert_ne!(r1["connection_id"], r2["connection_id"]);
    let item = s.send(&alice, room, "to both").await;
    for b in [&mut b1, &mut b2] {
        let f = b.next_of("change").await;
        assert_eq!(f["change"]["item"]["text"], "to both");
        assert_eq!(f["change"]["item"]["seq"], item["seq"]);
    }
}

#[tokio::test]
async fn ws_subscriptions_follow_membership_mid_stream() {
    let s = Server::start().await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let room = s.group(&alice, "private", &[]).await;
    let (mut b, ready) = login(&s, &bob, None).await;
    assert_eq!(ready["rooms"], json!([]));
    s.send(&alice, room, "before bob").await;
    // The invitation reaches bob although he is not a member yet.
    let (st, _) = s
        .post(
            &format!("/v1/rooms/{room}/invites"),
            &alice,
            json!({"user_id": "bob"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let f = b.next_of("change").await;
    assert_eq!(f["change"]["type"], "membership");
    assert_eq!(f["change"]["data"]["action"], "invited");
    // Joining starts the room's stream with the join itself.
    let (st, _) = s
        .post(&format!("/v1/rooms/{room}/join"), &bob, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let f = b.next_of("change").await;
    assert_eq!(f["change"]["data"]["action"], "joined");
    let join_pos = pos(&f);
    s.send(&alice, room, "after bob").await;
    let f = b.next_of("change").await;
    assert_eq!(f["change"]["item"]["text"], "after bob");
    assert_eq!(pos(&f), join_pos + 1);
    // Leaving ends it with the leave; a later message in another room arrives next.
    let other = s.group(&alice, "private", &["bob"]).await;
    let f = b.next_of("change").await;
    assert_eq!(f["room"], other);
    let (st, _) = s
        .post(&format!("/v1/rooms/{room}/leave"), &bob, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let f = b.next_of("change").await;
    assert_eq!(
        (f["room"].clone(), f["change"]["data"]["action"].clone()),
        (json!(room), json!("left"))
    );
    s.send(&alice, room, "bob is gone").await;
    s.send(&alice, other, "marker").await;
    let f = b.next_of("change").await;
    assert_eq!(f["room"], other, "nothing more from the room left: {f}");
    assert_eq!(f["change"]["item"]["text"], "marker");
}

#[tokio::test]
async fn ws_kick_and_room_deletion_stop_delivery_at_once() {
    let s = Server::start().await;
    let (alice, bob, room) = alice_and_bob(&s).await;
    let other = s.group(&alice, "private", &["bob"]).await;
    let (mut b1, _) = login(&s, &bob, None).await;
    let (mut b2, _) = login(&s, &bob, None).await;
    // A burst in flight around the kick: bob gets what came before it, the kick, then nothing.
    let sender = sender(&s, &alice, room, 30, 0);
    let (st, body) = s
        .post(
            &format!("/v1/rooms/{room}/members/bob/kick"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    sender.await.expect("sender");
    s.send(&alice, other, "marker").await;
    for b in [&mut b1, &mut b2] {
        let mut last = 0;
        loop {
            let f = b.next_of("change").await;
            if f["room"] == other {
                assert_eq!(f["change"]["item"]["text"], "marker");
                break;
            }
            assert_eq!(f["room"], room);
            assert!(pos(&f) > last, "in order");
            last = pos(&f);
            if f["change"]["data"]["action"] == "kicked" {
                let f = b.next_of("change").await;
                assert_eq!(f["room"], other, "nothing after the kick: {f}");
                break;
            }
        }
    }
    // Deleting a room ends its stream for every member.
    let (mut b3, _) = login(&s, &bob, None).await;
    let (st, _) = s.delete(&format!("/v1/rooms/{other}"), &alice).await;
    assert!(st.is_success(), "{st}");
    let f = b3.next_of("change").await;
    assert_eq!(f["change"]["type"], "room_deleted");
}

#[tokio::test]
async fn ws_presence_typing_and_read_markers_reach_room_members() {
    let s = Server::start_with(|c| c.ws_presence_grace_ms = 50).await;
    let (alice, bob, room) = alice_and_bob(&s).await;
    let (mut a, _) = login(&s, &alice, None).await;
    let (mut b, _) = login(&s, &bob, None).await;
    // Bob's coming online reaches Alice as a `presence` frame, or in her snapshot of the room
    // (`presence_list`) when he connected before it was sent (it waits 0.5 s on a node that
    // has just started following the app).
    let f = a.next().await;
    let bob_online = json!({"user": "bob", "status": "online"});
    let listed = f["users"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|u| json!({"user": u["user"], "status": u["status"]}) == bob_online);
    assert!(
        (f["type"] == "presence" && f["user"] == "bob" && f["status"] == "online")
            || (f["type"] == "presence_list" && listed),
        "{f}"
    );
    b.send(json!({"type": "typing", "room": room})).await;
    // Her snapshot of the room may still come after Bob's `presence` frame: skip presence.
    let f = a.next_of("typing").await;
    assert_eq!(
        (f["type"].clone(), f["room"].clone(), f["user"].clone()),
        (json!("typing"), json!(room), json!("bob"))
    );
    assert!(f["expires_in_ms"].as_u64().is_some());
    let item = s.send(&alice, room, "read me").await;
    let _ = a.next_of("change").await;
    let _ = b.next_of("change").await;
    b.send(json!({"type": "read", "room": room, "seq": item["seq"], "ref": "r"}))
        .await;
    let ack = b.next_of("ack").await;
    assert_eq!(ack["read_seq"], item["seq"]);
    let f = a.next_of("read").await;
    assert_eq!(
        (f["user"].clone(), f["seq"].clone()),
        (json!("bob"), item["seq"].clone())
    );
    // Typing in a room one is not in is refused.
    b.send(json!({"type": "typing", "room": 999, "ref": 3}))
        .await;
    assert_eq!(b.next_of("error").await["code"], "not_a_member");
    drop(b);
    let f = a.next().await;
    assert_eq!(
        (f["type"].clone(), f["user"].clone(), f["status"].clone()),
        (json!("presence"), json!("bob"), json!("offline"))
    );
    assert!(f["last_seen_at"].is_string());
}
