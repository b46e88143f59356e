//! Input checks: malformed and oversized requests, and limits from the configuration.

use crate::common::{Server, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Sends a raw body with the given content type.
async fn raw(
    s: &Server,
    method: Method,
    path: &str,
    bearer: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let resp = s
        .client
        .request(method, format!("{}{}", s.base, path))
        .bearer_auth(bearer)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = resp.status();
    let text = resp.text().await.expect("body read");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "public", &[]).await;
    let path = format!("/v1/rooms/{room}/messages");

    let bad = raw(
        &s,
        Method::POST,
        &path,
        &alice,
        "application/json",
        "{\"text\": ",
    )
    .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_json");
    let bad = raw(
        &s,
        Method::POST,
        &path,
        &alice,
        "application/json",
        "[1, 2]",
    )
    .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_json");
    let bad = raw(
        &s,
        Method::POST,
        &path,
        &alice,
        "application/json",
        "{\"text\": 5}",
    )
    .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_json");
    let bad = raw(
        &s,
        Method::POST,
        &path,
        &alice,
        "text/plain",
        "{\"text\": \"hi\"}",
    )
    .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_json");
    let bad = raw(
        &s,
        Method::PUT,
        "/v1/users/bob",
        &app.secret,
        "application/json",
        "not json",
    )
    .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_json");
    let bad = raw(
        &s,
        Method::POST,
        "/v1/users/alice/tokens",
        &app.secret,
        "application/json",
        "{oops",
    )
    .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "invalid_json");

    let unknown = s
        .post(&path, &alice, json!({"text": "hi", "sender": "bob"}))
        .await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "invalid_json");
    let unknown = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "group", "name": "r", "colour": "red"}),
        )
        .await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "invalid_json");

    // Over 256 KiB: refused before anything else is looked at.
    let huge = json!({"text": "x".repeat(300 * 1024)});
    assert_error(
        &s.post(&path, &alice, huge.clone()).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    );
    assert_error(
        &s.put(
            "/v1/users/bob",
            &app.secret,
            json!({"name": "x".repeat(300 * 1024)}),
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    );
    let big_mint = raw(
        &s,
        Method::POST,
        "/v1/users/alice/tokens",
        &app.secret,
        "application/json",
        format!("{{\"ttl_seconds\": 60{}}}", " ".repeat(300 * 1024)),
    )
    .await;
    assert_error(&big_mint, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");

    // Text: at most 8,000 characters (not bytes), never empty.
    assert_error(
        &s.post(&path, &alice, json!({"text": "x".repeat(8001)}))
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "text_too_long",
    );
    let item = s.send(&alice, room, &"x".repeat(8000)).await;
    assert_eq!(item["text"].as_str().map(|t| t.chars().count()), Some(8000));
    let item = s.send(&alice, room, &"é".repeat(8000)).await;
    assert_eq!(item["text"].as_str().map(|t| t.chars().count()), Some(8000));
    assert_error(
        &s.post(&path, &alice, json!({"text": ""})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "text_empty",
    );
    assert_error(
        &s.post(&path, &alice, json!({"text": " \n\t "})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "text_empty",
    );
    assert_error(
        &s.post(&path, &alice, json!({})).await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );

    // Names: at most 200 characters.
    let long_room = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "group", "name": "r".repeat(201)}),
        )
        .await;
    assert_error(&long_room, StatusCode::PAYLOAD_TOO_LARGE, "name_too_long");
    let long_rename = s
        .patch(
            &format!("/v1/rooms/{room}"),
            &alice,
            json!({"name": "r".repeat(201)}),
        )
        .await;
    assert_error(&long_rename, StatusCode::PAYLOAD_TOO_LARGE, "name_too_long");

    // Paths and queries that do not parse. The refusal speaks of the API, not of Rust types.
    let not_a_number = s.get("/v1/rooms/abc", &alice).await;
    assert_error(&not_a_number, StatusCode::BAD_REQUEST, "invalid_path");
    let too_big = s
        .get("/v1/rooms/1/messages/92233720368547758070", &alice)
        .await;
    assert_error(&too_big, StatusCode::BAD_REQUEST, "invalid_path");
    for refused in [&not_a_number, &too_big] {
        let message = refused.1["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("whole numbers") && !message.contains("i64"),
            "{message}"
        );
    }
    assert_error(
        &s.get(&format!("{path}?bogus=1"), &alice).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_error(
        &s.get("/v1/nothing-here", &alice).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &s.call(Method::PUT, "/v1/rooms", Some(&alice), Some(json!({})))
            .await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );

    // Nothing refused above was stored.
    let (_, page) = s.get(&path, &alice).await;
    let messages = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == "message")
        .count();
    assert_eq!(messages, 2, "{page}");
    let (_, app_view) = s.get("/v1/app", &app.secret).await;
    assert_eq!(app_view["users_count"], 1, "{app_view}");
    assert_eq!(app_view["rooms_count"], 1, "{app_view}");
}

#[tokio::test]
async fn limits_follow_the_configuration() {
    let s = Server::start_with(|c| {
        c.max_text_chars = 10;
        c.max_name_chars = 5;
    })
    .await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "public", &[]).await;
    s.send(&alice, room, "0123456789").await;
    let long = s
        .post(
            &format!("/v1/rooms/{room}/messages"),
            &alice,
            json!({"text": "01234567890"}),
        )
        .await;
    assert_error(&long, StatusCode::PAYLOAD_TOO_LARGE, "text_too_long");
    assert_eq!(
        s.patch("/v1/me", &alice, json!({"name": "abcde"})).await.0,
        StatusCode::OK
    );
    assert_error(
        &s.patch("/v1/me", &alice, json!({"name": "abcdef"})).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "name_too_long",
    );
}
