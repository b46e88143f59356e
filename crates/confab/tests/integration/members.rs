//! Membership: joining, applications, invitations, leaving, kicks, bans, roles, the members list,
//! and how every change shows in the timeline and the change feed.

use crate::common::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

mod joining;
mod leaving;
mod list;
mod moderation;
mod timeline;

async fn room(s: &Server, token: &str, n: i64) -> Value {
    let (status, r) = s.get(&format!("/v1/rooms/{n}"), token).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    r
}

/// The members list (all states unless `state` is given), as seen by `token`.
async fn members(s: &Server, token: &str, n: i64, state: Option<&str>) -> Vec<Value> {
    let path = match state {
        Some(st) => format!("/v1/rooms/{n}/members?state={st}&limit=200"),
        None => format!("/v1/rooms/{n}/members?limit=200"),
    };
    let (status, list) = s.get(&path, token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["members"].as_array().expect("members").clone()
}

async fn member(s: &Server, token: &str, n: i64, user: &str) -> Value {
    members(s, token, n, None)
        .await
        .into_iter()
        .find(|m| m["user_id"] == user)
        .unwrap_or(Value::Null)
}

fn ids(list: &[Value]) -> Vec<&str> {
    list.iter().filter_map(|m| m["user_id"].as_str()).collect()
}

/// The announcements of a room's timeline after `after_seq`: (type, user).
async fn announcements(s: &Server, token: &str, n: i64, after_seq: i64) -> Vec<(String, String)> {
    let (status, page) = s
        .get(
            &format!("/v1/rooms/{n}/messages?after={after_seq}&limit=200"),
            token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == "announcement")
        .map(|i| {
            let a = &i["announcement"];
            (
                a["type"].as_str().unwrap_or("").to_owned(),
                a["user"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn act(s: &Server, token: &str, n: i64, user: &str, action: &str) -> (StatusCode, Value) {
    s.post(
        &format!("/v1/rooms/{n}/members/{user}/{action}"),
        token,
        json!({}),
    )
    .await
}

fn pair(t: &str, u: &str) -> (String, String) {
    (t.to_owned(), u.to_owned())
}
