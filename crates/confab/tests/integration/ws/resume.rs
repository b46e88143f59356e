//! Catching up: gapless resume after a gap, resume racing live sends, the reset past the backlog
//! cap, and the cut-off of a client that stops reading.

use super::{
    Client, Ended, alice_and_bob, assert_same, login, pos, room_pos, sender, store_changes, ws_url,
};
use crate::common::Server;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn ws_resume_after_a_gap_of_ten() {
    let s = Server::start().await;
    let (alice, bob, room) = alice_and_bob(&s).await;
    let (mut b, _) = login(&s, &bob, None).await;
    s.send(&alice, room, "seen").await;
    let seen = pos(&b.next_of("change").await);
    drop(b);
    for i in 0..10 {
        s.send(&alice, room, &format!("missed {i}")).await;
    }
    let (mut b, ready) = login(&s, &bob, Some(json!({ room.to_string(): seen }))).await;
    assert_eq!(room_pos(&ready, room), seen + 10);
    let got = b.changes(room, 10).await;
    assert_same(&got, &store_changes(&s, &alice, room, seen).await);
    // Then live, without a duplicate at the boundary.
    s.send(&alice, room, "live").await;
    let f = b.next_of("change").await;
    assert_eq!(pos(&f), seen + 11);
}

#[tokio::test]
async fn ws_resume_after_a_gap_of_ten_thousand() {
    let s = Server::start_with(|c| c.durability = "normal".into()).await;
    let (alice, bob, room) = alice_and_bob(&s).await;
    let (_, ready) = login(&s, &bob, None).await;
    let seen = room_pos(&ready, room);
    let tasks: Vec<_> = (0..8).map(|t| sender(&s, &alice, room, 1250, t)).collect();
    for t in tasks {
        t.await.expect("sender");
    }
    let (mut b, _) = login(&s, &bob, Some(json!({ room.to_string(): seen }))).await;
    let got = b.changes(room, 10_000).await;
    assert_same(&got, &store_changes(&s, &alice, room, seen).await);
}

#[tokio::test]
async fn ws_resume_racing_with_live_sends_has_no_gap_or_duplicate() {
    let s = Server::start_with(|c| c.durability = "normal".into()).await;
    let (alice, bob, room) = alice_and_bob(&s).await;
    let (_, ready) = login(&s, &bob, None).await;
    let seen = room_pos(&ready, room);
    for i in 0..100 {
        s.send(&alice, room, &format!("before {i}")).await;
    }
    let total = 300;
    let sender = sender(&s, &alice, room, total - 100, 0);
    let (mut b, _) = login(&s, &bob, Some(json!({ room.to_string(): seen }))).await;
    let got = b.changes(room, total).await;
    sender.await.expect("sender");
    assert_same(&got, &store_changes(&s, &alice, room, seen).await);
}

#[tokio::test]
async fn ws_a_resume_frame_while_live_sends_race_replays_then_continues_without_a_gap() {
    let s = Server::start_with(|c| c.durability = "normal".into()).await;
    let (alice, bob, room) = alice_and_bob(&s).await;
    let (mut b, ready) = login(&s, &bob, None).await;
    let start = room_pos(&ready, room);
    let total = 400;
    let sender = sender(&s, &alice, room, total, 0);
    // Live for a while, then ask again for everything after the first 20 changes, while the
    // sender goes on: the replay and the live changes race for the same socket.
    let before = b.changes(room, 100).await;
    let from = start + 20;
    b.send(json!({"type": "resume", "rooms": { room.to_string(): from }, "ref": "again"}))
        .await;
    let last = start + total as i64;
    let mut after = Vec::new();
    let mut acked = false;
    while !(acked && after.last().is_some_and(|p| *p >= last)) {
        let f = b.next().await;
        match f["type"].as_str() {
            Some("change") => after.push(pos(&f)),
            Some("ack") => {
                assert_eq!(f["ref"], "again");
                acked = true;
            }
            _ => {}
        }
    }
    sender.await.expect("sender");
    assert_eq!(pos(&before[0]), start + 1);
    // Frames already on their way may come first; from the replay's first change on, every
    // position follows the one before, to the end.
    let i = after
        .iter()
        .position(|p| *p == from + 1)
        .expect("the replay starts after the resume position");
    let replayed = &after[i..];
    let expected: Vec<i64> = (from + 1..=last).collect();
    assert_eq!(replayed, &expected[..]);
}

#[tokio::test]
async fn ws_a_backlog_over_the_cap_is_an_explicit_reset() {
    let s = Server::start_with(|c| c.ws_resume_cap = 5).await;
    let (alice, bob, room) = alice_and_bob(&s).await;
    let small = s.group(&alice, "private", &["bob"]).await;
    let (_, ready) = login(&s, &bob, None).await;
    let (seen, seen_small) = (room_pos(&ready, room), room_pos(&ready, small));
    for i in 0..10 {
        s.send(&alice, room, &format!("m{i}")).await;
    }
    for i in 0..3 {
        s.send(&alice, small, &format!("s{i}")).await;
    }
    let resume = json!({ room.to_string(): seen, small.to_string(): seen_small });
    let (mut b, _) = login(&s, &bob, Some(resume)).await;
    let mut reset = None;
    let mut small_changes = Vec::new();
    while reset.is_none() || small_changes.len() < 3 {
        let f = b.next().await;
        match f["type"].as_str() {
            Some("reset") => reset = Some(f),
            Some("change") => {
                assert_eq!(f["room"], small, "no change of the reset room: {f}");
                small_changes.push(f);
            }
            _ => {}
        }
    }
    let reset = reset.expect("reset");
    assert_eq!(reset["room"], room);
    assert_eq!(reset["pos"], seen + 10);
    assert_same(
        &small_changes,
        &store_changes(&s, &alice, small, seen_small).await,
    );
    s.send(&alice, room, "live").await;
    assert_eq!(pos(&b.next_of("change").await), seen + 11);
}

#[tokio::test]
async fn ws_a_client_that_stops_reading_is_cut_off_others_keep_receiving() {
    let s = Server::start_with(|c| {
        c.durability = "normal".into();
        c.ws_queue = 64;
    })
    .await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let room = s.group(&alice, "private", &["bob", "carol"]).await;
    // Bob's socket has a tiny receive buffer and he never reads.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket
        .connect(s.base.trim_start_matches("http://").parse().expect("addr"))
        .await
        .expect("connect");
    let (mut slow, _) = tokio_tungstenite::client_async(ws_url(&s), MaybeTlsStream::Plain(stream))
        .await
        .expect("handshake");
    slow.send(Message::text(
        json!({"type": "auth", "token": bob}).to_string(),
    ))
    .await
    .expect("auth");
    let (mut c, _) = login(&s, &carol, None).await;
    let text = "x".repeat(4000);
    let n = 1500;
    let reader = tokio::spawn(async move {
        let got = c.changes(room, n).await;
        for w in got.windows(2) {
            assert_eq!(pos(&w[1]), pos(&w[0]) + 1);
        }
    });
    for _ in 0..n {
        s.send(&alice, room, &text).await;
    }
    reader.await.expect("carol received everything, in order");
    // Bob, reading at last, finds the stream cut short.
    let mut slow = Client { ws: slow };
    let mut changes = 0;
    let ended = loop {
        match slow.next_or_end().await {
            Ok(f) if f["type"] == "change" => changes += 1,
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(
        changes < n,
        "bob was cut off ({changes} changes, {ended:?})"
    );
    if let Ended::Closed(Some(code)) = ended {
        assert_eq!(code, 4008);
    }
    // He resumes and gets the rest.
    let last = store_changes(&s, &alice, room, 0).await.len() as i64;
    let (mut b, ready) = login(&s, &bob, None).await;
    assert_eq!(room_pos(&ready, room), last);
    drop(b.ws.close(None).await);
}
