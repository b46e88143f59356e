//! The shortest path through the API: app, users, room, message, history.

use crate::common::Server;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_message_sent_is_in_the_history() {
    let s = Server::start().await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    s.user(&app, "bob").await;
    let room = s.group(&alice, "public", &["bob"]).await;
    let item = s.send(&alice, room, "hello").await;
    assert_eq!(item["text"], "hello");
    let (status, page) = s.get(&format!("/v1/rooms/{room}/messages"), &alice).await;
    assert_eq!(status, StatusCode::OK);
    let last = page["items"].as_array().and_then(|a| a.last()).cloned().unwrap_or_default();
    assert_eq!(last["text"], "hello");
    assert_eq!(last["seq"], item["seq"]);
    let (status, _) = s.get("/healthz", "x").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s.post("/v1/rooms", "not-a-token", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}
