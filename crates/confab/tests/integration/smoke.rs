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
    let last = page["items"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["text"], "hello");
    assert_eq!(last["seq"], item["seq"]);
    let (status, _) = s.get("/healthz", "x").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s.post("/v1/rooms", "not-a-token", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

/// Every operation `/openapi.json` lists is served: none of them answers "no such route" or
/// "method not allowed".
#[tokio::test]
async fn the_openapi_document_describes_served_routes() {
    let s = Server::start().await;
    let (status, doc) = s
        .call(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    assert!(
        paths.len() >= 20,
        "the document lists the API: {}",
        paths.len()
    );
    for (path, item) in paths {
        let concrete = path
            .replace("{number}", "1")
            .replace("{seq}", "1")
            .replace("{user_id}", "someone")
            .replace("{alias}", "general")
            .replace("{action}", "approve");
        for method in item
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let Ok(m) = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let (status, body) = s.call(m, &concrete, None, None).await;
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {body}"
            );
            assert!(
                !(status == StatusCode::NOT_FOUND && body["error"]["code"] == "not_found"),
                "{method} {path} is not routed"
            );
        }
    }
    let (status, body) = s
        .call(reqwest::Method::GET, "/no/such/route", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}
