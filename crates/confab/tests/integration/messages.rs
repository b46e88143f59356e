//! Messages: send, idempotent retries, replies and threads, one item, edit, delete, read
//! markers and unread counts, and the refusals non-members get.

use crate::common::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

mod access;
mod items;
mod sending;

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

async fn mark_read(s: &Server, token: &str, room: i64, seq: i64) -> (StatusCode, Value) {
    s.put(
        &format!("/v1/rooms/{room}/read"),
        token,
        json!({ "seq": seq }),
    )
    .await
}
