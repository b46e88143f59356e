//! Rooms: direct and group creation, aliases, my rooms and the public rooms with paging, room
//! details, updates and deletion.

use crate::common::Server;
use reqwest::StatusCode;
use serde_json::Value;

mod creation;
mod details;
mod lists;

fn numbers(list: &Value) -> Vec<i64> {
    list["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .map(|r| r["number"].as_i64().expect("number"))
        .collect()
}

/// All items of a room's timeline (fits in one page in these tests).
async fn timeline(s: &Server, token: &str, room: i64) -> Vec<Value> {
    let (status, page) = s
        .get(&format!("/v1/rooms/{room}/messages?limit=200"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().expect("items").clone()
}
