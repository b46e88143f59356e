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
            .replace("{meetup}", "1")
            .replace("{poll}", "1")
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

/// A connection that does not send its request's headers in time is closed: silent from the
/// start, stuck halfway through the headers, or idle after a kept-alive request. One that
/// keeps talking is served.
#[tokio::test]
async fn connections_that_do_not_send_headers_in_time_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start_with(|c| c.http_header_timeout_ms = 300).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let wait = std::time::Duration::from_secs(30);
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for opening in [
        &b""[..],
        &b"GET /healthz HTTP/1.1\r\nHost"[..],
        &request[..],
    ] {
        let mut tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        tcp.write_all(opening).await.expect("sent");
        let mut got = Vec::new();
        // Ends with EOF, or a reset; never a hang.
        let read = tokio::time::timeout(wait, tcp.read_to_end(&mut got)).await;
        assert!(
            read.is_ok(),
            "still open after {:?}",
            String::from_utf8_lossy(opening)
        );
        if opening == &request[..] {
            let text = String::from_utf8_lossy(&got);
            assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        }
    }
    // A client that keeps sending requests keeps its connection.
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    for _ in 0..3 {
        tcp.write_all(request).await.expect("sent");
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(wait, tcp.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
}
