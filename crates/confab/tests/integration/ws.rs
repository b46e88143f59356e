//! The WebSocket gateway with real clients (tokio-tungstenite) against the real server:
//! delivery in order to every member, membership following, gapless resume, slow consumers,
//! presence, typing, read markers, limits and refusals.

use crate::common::Server;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous: waiting for something that should come, never a timing assertion.
const WAIT: Duration = Duration::from_secs(30);

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) struct Client {
    ws: Ws,
}

fn ws_url(s: &Server) -> String {
    format!("{}/v1/ws", s.base.replacen("http", "ws", 1))
}

async fn connect(s: &Server) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(ws_url(s))
        .await
        .expect("websocket connects");
    Client { ws }
}

/// Connects, authenticates (with an optional resume map) and returns the `ready` frame.
pub(crate) async fn login(s: &Server, token: &str, resume: Option<Value>) -> (Client, Value) {
    let mut c = connect(s).await;
    let mut auth = json!({"type": "auth", "token": token});
    if let Some(r) = resume {
        auth["resume"] = r;
    }
    c.send(auth).await;
    let ready = c.next().await;
    assert_eq!(ready["type"], "ready", "{ready}");
    (c, ready)
}

/// What ended a connection, as the client saw it.
#[derive(Debug)]
pub(crate) enum Ended {
    Closed(Option<u16>),
    Error,
}

impl Client {
    pub(crate) async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("frame sent");
    }

    /// The next JSON frame; panics if the connection ends or nothing comes.
    async fn next(&mut self) -> Value {
        match self.next_or_end().await {
            Ok(v) => v,
            Err(e) => panic!("connection ended: {e:?}"),
        }
    }

    pub(crate) async fn next_or_end(&mut self) -> Result<Value, Ended> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Ok(serde_json::from_str(t.as_str()).expect("JSON frame"));
                }
                Some(Ok(Message::Close(f))) => {
                    return Err(Ended::Closed(f.map(|f| u16::from(f.code))));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) => return Err(Ended::Error),
                None => return Err(Ended::Closed(None)),
            }
        }
    }

    /// The next frame of type `ty`, skipping presence, typing and read notices (and, when
    /// waiting for an answer, changes).
    pub(crate) async fn next_of(&mut self, ty: &str) -> Value {
        let mut skip = vec!["presence", "presence_list", "typing", "read"];
        if ty == "ack" || ty == "error" || ty == "pong" {
            skip.push("change");
        }
        loop {
            let f = self.next().await;
            if f["type"] == ty {
                return f;
            }
            assert!(
                skip.contains(&f["type"].as_str().unwrap_or("")),
                "expected {ty}, got {f}"
            );
        }
    }

    /// The next `n` change frames, which must all be of `room`.
    pub(crate) async fn changes(&mut self, room: i64, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let f = self.next_of("change").await;
            assert_eq!(f["room"], room, "{f}");
            out.push(f);
        }
        out
    }

    /// Closes the connection as a client leaving does, and waits for the server's answer:
    /// by then the server's session has ended.
    pub(crate) async fn close(mut self) -> Ended {
        self.ws.close(None).await.expect("close sent");
        self.ended().await
    }

    /// Waits for the connection to end (reading and dropping whatever still comes).
    async fn ended(&mut self) -> Ended {
        loop {
            match self.next_or_end().await {
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    }
}

/// Alice and Bob (user tokens) in a private room of a new app, and the room's number.
pub(crate) async fn alice_and_bob(s: &Server) -> (String, String, i64) {
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let room = s.group(&alice, "private", &["bob"]).await;
    (alice, bob, room)
}

/// Sends `n` messages into `room` in the background, each answered 201.
fn sender(
    s: &Server,
    token: &str,
    room: i64,
    n: usize,
    label: usize,
) -> tokio::task::JoinHandle<()> {
    let (base, token) = (s.base.clone(), token.to_owned());
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        for i in 0..n {
            let r = client
                .post(format!("{base}/v1/rooms/{room}/messages"))
                .bearer_auth(&token)
                .json(&json!({"text": format!("{label}-{i}")}))
                .send()
                .await
                .expect("sent");
            assert_eq!(r.status(), StatusCode::CREATED);
        }
    })
}

/// Every change of a room after `since`, from `/changes`.
pub(crate) async fn store_changes(s: &Server, token: &str, room: i64, since: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut since = since;
    loop {
        let (status, page) = s
            .get(
                &format!("/v1/rooms/{room}/changes?since={since}&limit=1000"),
                token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        out.extend(page["changes"].as_array().cloned().unwrap_or_default());
        since = page["next_since"].as_i64().expect("next_since");
        if page["has_more"] != true {
            return out;
        }
    }
}

/// The received frames are exactly the store's changes: same content, in order, no gap.
pub(crate) fn assert_same(received: &[Value], store: &[Value]) {
    assert_eq!(received.len(), store.len(), "count");
    for (r, s) in received.iter().zip(store) {
        assert_eq!(r["pos"], s["pos"]);
        assert_eq!(&r["change"], s, "the frame carries what /changes returns");
    }
}

pub(crate) fn pos(f: &Value) -> i64 {
    f["pos"].as_i64().expect("pos")
}

pub(crate) fn room_pos(ready: &Value, room: i64) -> i64 {
    ready["rooms"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["room"] == room))
        .and_then(|r| r["pos"].as_i64())
        .expect("room in ready")
}

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

#[tokio::test]
async fn ws_refuses_missing_or_bad_auth_bad_and_oversize_frames() {
    let s = Server::start_with(|c| c.ws_auth_timeout_ms = 200).await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    // No auth at all: closed with 4001.
    let mut c = connect(&s).await;
    assert!(matches!(c.ended().await, Ended::Closed(Some(4001))));
    // A bad token, an expired token, a first frame that is not auth.
    let keys = s
        .store()
        .app_keys_by_token(&app.token)
        .await
        .expect("store")
        .expect("app");
    let user = confab_core::ids::UserId("alice".into());
    let (expired, _) = confab_api::auth::mint(&keys, &user, -1).expect("mint");
    for first in [
        json!({"type": "auth", "token": "nope"}),
        json!({"type": "auth", "token": expired}),
        json!({"type": "ping"}),
    ] {
        let mut c = connect(&s).await;
        c.send(first).await;
        let f = c.next().await;
        assert_eq!(f["type"], "error");
        assert_eq!(f["code"], "unauthorized");
        assert!(matches!(c.ended().await, Ended::Closed(Some(4001))));
    }
    // Bad frames after auth are answered with an error; the connection stays.
    let (mut c, _) = login(&s, &alice, None).await;
    c.ws.send(Message::text("not json")).await.expect("sent");
    let f = c.next().await;
    assert_eq!(
        (f["type"].clone(), f["code"].clone()),
        (json!("error"), json!("invalid_frame"))
    );
    c.send(json!({"type": "dance", "ref": "r1"})).await;
    let f = c.next().await;
    assert_eq!(
        (f["code"].clone(), f["ref"].clone()),
        (json!("invalid_frame"), json!("r1"))
    );
    c.ws.send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("sent");
    assert_eq!(c.next().await["code"], "invalid_frame");
    c.send(json!({"type": "send", "room": 99, "text": "hi", "ref": 5}))
        .await;
    let f = c.next().await;
    assert_eq!(
        (f["code"].clone(), f["ref"].clone()),
        (json!("room_not_found"), json!(5))
    );
    c.send(json!({"type": "send", "room": 99, "text": " ", "ref": 6}))
        .await;
    assert_eq!(c.next().await["code"], "text_empty");
    c.send(json!({"type": "ping", "ref": 7})).await;
    assert_eq!(c.next().await, json!({"type": "pong", "ref": 7}));
    // An oversize frame closes the connection with 1009.
    c.ws.send(Message::text("x".repeat(200 * 1024)))
        .await
        .expect("sent");
    assert!(matches!(
        c.ended().await,
        Ended::Closed(Some(1009)) | Ended::Error
    ));
}

#[tokio::test]
async fn ws_sends_are_idempotent_and_rate_limited() {
    let s = Server::start_with(|c| {
        c.sends_per_second = 2;
        c.sends_burst = 2;
    })
    .await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    let (mut a, _) = login(&s, &alice, None).await;
    let send = json!({"type": "send", "room": room, "text": "once", "client_id": "c-1", "ref": 1});
    a.send(send.clone()).await;
    let first = a.next_of("ack").await;
    assert_eq!(first["created"], true);
    a.send(send).await;
    let again = a.next_of("ack").await;
    assert_eq!(again["created"], false);
    assert_eq!(again["seq"], first["seq"]);
    // Over the rate: a rate_limited error with the time to wait.
    let mut limited = None;
    for i in 0..10 {
        a.send(json!({"type": "send", "room": room, "text": "more", "ref": 10 + i}))
            .await;
        loop {
            let f = a.next().await;
            if f["type"] == "ack" {
                break;
            }
            if f["type"] == "error" {
                limited = Some(f);
                break;
            }
        }
        if limited.is_some() {
            break;
        }
    }
    let limited = limited.expect("rate limited");
    assert_eq!(limited["code"], "rate_limited");
    assert!(limited["retry_after_ms"].as_u64().expect("retry_after_ms") > 0);
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
    let f = a.next().await;
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

#[tokio::test]
async fn ws_connections_per_user_are_limited() {
    let s = Server::start_with(|c| c.ws_connections_per_user = 1).await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let (_a, _) = login(&s, &alice, None).await;
    let mut c = connect(&s).await;
    c.send(json!({"type": "auth", "token": alice})).await;
    let f = c.next().await;
    assert_eq!(f["code"], "too_many_connections");
    assert!(matches!(c.ended().await, Ended::Closed(Some(4029))));
}

#[tokio::test]
async fn ws_a_silent_client_is_closed_by_the_heartbeat() {
    let s = Server::start_with(|c| c.ws_ping_seconds = 1).await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let (c, _) = login(&s, &alice, None).await;
    // From here on the client reads raw bytes: it never answers a ping.
    let MaybeTlsStream::Plain(mut tcp) = c.ws.into_inner() else {
        panic!("plain TCP");
    };
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut bytes),
    )
    .await
    .expect("the server closes the connection");
    let _ = read;
    // A close frame (0x88) with code 4002 is among the last bytes.
    let code = 4002u16.to_be_bytes();
    assert!(
        bytes.windows(4).any(|w| w[0] == 0x88 && w[2..] == code),
        "close 4002 expected in {bytes:?}"
    );
}

#[tokio::test]
async fn ws_a_plain_request_is_told_to_upgrade() {
    let s = Server::start().await;
    let (status, body) = s.call(reqwest::Method::GET, "/v1/ws", None, None).await;
    assert_eq!(status, StatusCode::UPGRADE_REQUIRED, "{body}");
    assert_eq!(body["error"]["code"], "websocket_required");
}

#[tokio::test]
async fn ws_handshakes_that_are_not_websocket_13_are_refused() {
    let s = Server::start().await;
    let url = format!("{}/v1/ws", s.base);
    let client = reqwest::Client::new();
    let cases = [
        ("13", None),
        ("8", Some("dGhlIHNhbXBsZSBub25jZQ==")),
        ("13", Some("")),
    ];
    for (version, key) in cases {
        let mut req = client
            .get(&url)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", version);
        if let Some(k) = key {
            req = req.header("sec-websocket-key", k);
        }
        let resp = req.send().await.expect("answered");
        assert_eq!(
            resp.status(),
            StatusCode::UPGRADE_REQUIRED,
            "{version} {key:?}"
        );
        let body: Value = resp.json().await.expect("JSON error");
        assert_eq!(body["error"]["code"], "websocket_required");
    }
}

#[tokio::test]
async fn ws_auth_sent_along_with_the_handshake_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start().await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let mut tcp = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    // The request and the first frame in one write: the server reads both at once. The
    // Connection header lists several tokens, as some browsers send it.
    let mut bytes =
        b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            .to_vec();
    let auth = json!({"type": "auth", "token": alice}).to_string();
    let key = [7u8, 1, 2, 3];
    bytes.push(0x81);
    bytes.push(0x80 | 126);
    bytes.extend((auth.len() as u16).to_be_bytes());
    bytes.extend(key);
    bytes.extend(auth.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
    tcp.write_all(&bytes).await.expect("sent");
    let mut got = Vec::new();
    let text = loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, tcp.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if text.contains("\"type\":\"ready\"") {
            break text;
        }
    };
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    // The accept key of RFC 6455's own example.
    assert!(
        text.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{text}"
    );
}

#[tokio::test]
async fn ws_fragmented_messages_pings_and_closes_follow_the_protocol() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let s = Server::start().await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let (mut c, _) = login(&s, &alice, None).await;
    // One request in three frames.
    let body = json!({"type": "ping", "ref": "in three parts"}).to_string();
    let (a, rest) = body.split_at(5);
    let (b, z) = rest.split_at(10);
    for (part, op, last) in [
        (a, Data::Text, false),
        (b, Data::Continue, false),
        (z, Data::Continue, true),
    ] {
        let frame = Frame::message(part.as_bytes().to_vec(), OpCode::Data(op), last);
        c.ws.send(Message::Frame(frame)).await.expect("sent");
    }
    assert_eq!(
        c.next().await,
        json!({"type": "pong", "ref": "in three parts"})
    );
    // A WebSocket ping is answered with a pong of the same bytes.
    c.ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("sent");
    loop {
        let m = tokio::time::timeout(WAIT, c.ws.next())
            .await
            .expect("in time");
        match m {
            Some(Ok(Message::Pong(p))) => {
                assert_eq!(&p[..], b"are you there");
                break;
            }
            Some(Ok(Message::Text(t))) => panic!("unexpected {t}"),
            Some(Ok(_)) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
    // A close from the client is answered with a close.
    c.ws.close(None).await.expect("close sent");
    assert!(matches!(c.ended().await, Ended::Closed(Some(1000))));

    // A frame the client did not mask breaks the protocol: closed with 1002.
    let (c, _) = login(&s, &alice, None).await;
    let MaybeTlsStream::Plain(mut tcp) = c.ws.into_inner() else {
        panic!("plain TCP");
    };
    tokio::io::AsyncWriteExt::write_all(&mut tcp, &[0x81, 0x02, b'h', b'i'])
        .await
        .expect("sent");
    let mut bytes = Vec::new();
    tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut bytes),
    )
    .await
    .expect("the server closes the connection")
    .expect("read");
    let code = 1002u16.to_be_bytes();
    assert!(
        bytes.windows(4).any(|w| w[0] == 0x88 && w[2..] == code),
        "close 1002 expected in {bytes:?}"
    );
}

/// Three nodes on one PostgreSQL database and one NATS, as a cluster runs: senders on two
/// nodes into one room, a subscriber on each of the three. Every subscriber receives every
/// change, in order, with no gap and no duplicate, whichever node committed it; seqs are
/// 1..n; and a subscriber that reconnects to another node resumes exactly where it left.
#[tokio::test]
async fn ws_three_nodes_deliver_every_change_to_every_subscriber_in_order() {
    let Some((pg, nats)) = cluster_services("ws_three_nodes...") else {
        return;
    };
    let (_db, nodes) = cluster(&pg, &nats).await;
    let app = nodes[0].app("cluster").await;
    let alice = nodes[0].user(&app, "alice").await;
    let bob = nodes[1].user(&app, "bob").await;
    let carol = nodes[2].user(&app, "carol").await;
    let room = nodes[1].group(&alice, "private", &["bob", "carol"]).await;
    let (mut a, ready) = login(&nodes[0], &alice, None).await;
    let start = room_pos(&ready, room);
    let (mut b, _) = login(&nodes[1], &bob, None).await;
    let (mut c, _) = login(&nodes[2], &carol, None).await;
    let senders = [
        sender(&nodes[0], &alice, room, 25, 0),
        sender(&nodes[1], &bob, room, 25, 1),
    ];
    for s in senders {
        s.await.expect("sender");
    }
    let store = store_changes(&nodes[2], &carol, room, start).await;
    assert_eq!(store.len(), 50);
    let seqs: Vec<i64> = store
        .iter()
        .filter_map(|ch| ch["item"]["seq"].as_i64())
        .collect();
    let first = seqs[0];
    assert_eq!(
        seqs,
        (first..first + 50).collect::<Vec<_>>(),
        "gapless seqs"
    );
    for client in [&mut a, &mut b] {
        let got = client.changes(room, 50).await;
        assert_same(&got, &store);
    }
    // Carol reads half, leaves node C, more is sent, and she resumes on node A.
    let half = c.changes(room, 25).await;
    assert_same(&half, &store[..25]);
    let last = pos(half.last().expect("a change"));
    drop(c);
    sender(&nodes[1], &bob, room, 10, 2).await.expect("sender");
    let rest = store_changes(&nodes[0], &alice, room, last).await;
    assert_eq!(rest.len(), 35);
    let (mut c, _) = login(&nodes[0], &carol, Some(json!({ room.to_string(): last }))).await;
    let got = c.changes(room, 35).await;
    assert_same(&got, &rest);
}

/// PostgreSQL and NATS for the cluster tests (the second pass of `scripts/test`), if set.
pub(crate) fn cluster_services(test: &str) -> Option<(String, String)> {
    match (
        crate::common::postgres_server(),
        std::env::var("CONFAB_TEST_NATS"),
    ) {
        (Some(pg), Ok(nats)) => Some((pg, nats)),
        _ => {
            eprintln!(
                "{test}: needs PostgreSQL and NATS (CONFAB_TEST_DATABASE_URL and \
                 CONFAB_TEST_NATS); run by scripts/test's second pass"
            );
            None
        }
    }
}

/// Three nodes on a new database of `pg` and on `nats`, under subjects of their own.
pub(crate) async fn cluster(pg: &str, nats: &str) -> (crate::common::PgDatabase, Vec<Server>) {
    let db = crate::common::PgDatabase::create(pg);
    let prefix = format!("cluster{}", crate::common::unique_token());
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(
            Server::start_with(|c| {
                c.database = db.url();
                c.nats = nats.to_owned();
                c.nats_prefix = prefix.clone();
                c.admin_key = "ck_admin_cluster_test_0123456789".into();
            })
            .await,
        );
    }
    (db, nodes)
}

/// A kick on node A while node B sends into the room: the kicked user, connected to node C,
/// receives what came before the kick, the kick, and nothing of that room after it.
#[tokio::test]
async fn ws_a_kick_on_one_node_stops_delivery_on_every_node() {
    let Some((pg, nats)) = cluster_services("ws_a_kick_on_one_node...") else {
        return;
    };
    let (_db, nodes) = cluster(&pg, &nats).await;
    let app = nodes[0].app("kick").await;
    let alice = nodes[0].user(&app, "alice").await;
    let bob = nodes[0].user(&app, "bob").await;
    let carol = nodes[0].user(&app, "carol").await;
    let room = nodes[0].group(&alice, "private", &["bob", "carol"]).await;
    let other = nodes[0].group(&alice, "private", &["bob"]).await;
    let (mut b, _) = login(&nodes[2], &bob, None).await;
    let burst = sender(&nodes[1], &carol, room, 30, 0);
    let (st, body) = nodes[0]
        .post(
            &format!("/v1/rooms/{room}/members/bob/kick"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    burst.await.expect("sender");
    nodes[1].send(&carol, room, "after the kick").await;
    nodes[0].send(&alice, other, "marker").await;
    let (mut kicked, mut marker, mut last) = (false, false, 0);
    while !(kicked && marker) {
        let f = b.next_of("change").await;
        if f["room"] == other {
            assert_eq!(f["change"]["item"]["text"], "marker");
            marker = true;
            continue;
        }
        assert_eq!(f["room"], room);
        assert!(!kicked, "a change of the room after the kick: {f}");
        assert!(pos(&f) > last, "in order");
        last = pos(&f);
        kicked = f["change"]["data"]["action"] == "kicked";
    }
    // One more marker, then nothing of the room may have come in between.
    nodes[1].send(&alice, other, "second marker").await;
    let f = b.next_of("change").await;
    assert_eq!(f["room"], other, "nothing of the room after the kick: {f}");
    assert_eq!(f["change"]["item"]["text"], "second marker");
}

/// `from` types in `room` until `to` (on another node) gets the notice, at most 20 times.
async fn typing_crosses(from: &mut Client, to: &mut Client, user: &str, room: i64) {
    for _ in 0..20 {
        from.send(json!({"type": "typing", "room": room})).await;
        if typing_from(to, user).await {
            return;
        }
    }
    panic!("{user}'s typing never reached the other node");
}

/// Waits up to a second for `c`'s next typing notice from `user`, or says there was none.
async fn typing_from(c: &mut Client, user: &str) -> bool {
    let wait = async {
        loop {
            let f = c.next_of("typing").await;
            if f["user"] == user {
                return f;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(1), wait)
        .await
        .is_ok()
}

#[tokio::test]
async fn ws_typing_and_read_markers_reach_members_on_other_nodes() {
    let Some((pg, nats)) = cluster_services("ws_typing_and_read_markers_reach_members...") else {
        return;
    };
    let (_db, nodes) = cluster(&pg, &nats).await;
    let app = nodes[0].app("typing").await;
    let alice = nodes[0].user(&app, "alice").await;
    let bob = nodes[0].user(&app, "bob").await;
    let room = nodes[0].group(&alice, "private", &["bob"]).await;
    let (mut a, _) = login(&nodes[0], &alice, None).await;
    let (mut b, _) = login(&nodes[1], &bob, None).await;
    // A message sent through the third node reaches both: each node follows the room.
    let item = nodes[2].send(&alice, room, "hello").await;
    for c in [&mut a, &mut b] {
        loop {
            let f = c.next_of("change").await;
            if f["change"]["item"]["text"] == "hello" {
                break;
            }
        }
    }
    // Typing is ephemeral (never stored, so never caught up): a client repeats it while the
    // user types, and so does this test until the notice crosses, within a bound.
    typing_crosses(&mut b, &mut a, "bob", room).await;
    typing_crosses(&mut a, &mut b, "alice", room).await;
    b.send(json!({"type": "read", "room": room, "seq": item["seq"], "ref": "r"}))
        .await;
    assert_eq!(b.next_of("ack").await["read_seq"], item["seq"]);
    let f = a.next_of("read").await;
    assert_eq!(
        (f["room"].clone(), f["user"].clone(), f["seq"].clone()),
        (json!(room), json!("bob"), item["seq"].clone())
    );
}
