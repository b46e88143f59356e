//! The seed-004 compatible API under `/api/v1/apps`: the seed's curl sequence end to end, races
//! on chat and message numbers, refusals, and agreement with Confab's own API.

use crate::common::{Server, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// A request with no credential, as the seed's devices send them.
async fn call(s: &Server, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    s.call(method, path, None, body).await
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// Creates an app through the compatible API; returns (token, secret).
async fn compat_app(s: &Server, name: &str) -> (String, String) {
    let got = call(
        s,
        Method::POST,
        "/api/v1/apps",
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    (
        got.1["token"].as_str().expect("token").to_owned(),
        got.1["secret"].as_str().expect("secret").to_owned(),
    )
}

async fn new_chat(s: &Server, token: &str) -> i64 {
    let got = call(
        s,
        Method::POST,
        &format!("/api/v1/apps/{token}/chats"),
        None,
    )
    .await;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    got.1["number"].as_i64().expect("number")
}

async fn new_message(s: &Server, token: &str, chat: i64, content: &str) -> i64 {
    let got = call(
        s,
        Method::POST,
        &format!("/api/v1/apps/{token}/chats/{chat}/messages"),
        Some(json!({ "content": content })),
    )
    .await;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    got.1["number"].as_i64().expect("number")
}

/// The seed's curl commands in order, as raw HTTP with exactly the seed's headers and bodies.
#[tokio::test]
async fn seed_curl_sequence_works_end_to_end() {
    let s = Server::start().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{}", s.base, p);

    // 1. Create application.
    let resp = http
        .post(url("/api/v1/apps"))
        .header("Content-Type", "application/json")
        .body("{\n    \"name\":\"instaBug\"\n}")
        .send()
        .await
        .expect("valid");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let app: Value = resp.json().await.expect("valid");
    assert_eq!(app["name"], "instaBug");
    let token = app["token"].as_str().expect("valid").to_owned();
    assert_eq!(app["chats_count"], 0);

    // 2. Update application.
    let resp = http
        .put(url(&format!("/api/v1/apps/{token}")))
        .header("Content-Type", "application/json")
        .body("{\n    \"name\":\"instabug\"\n}")
        .send()
        .await
        .expect("valid");
    assert_eq!(resp.status(), StatusCode::OK);
    let renamed: Value = resp.json().await.expect("valid");
    assert_eq!(renamed["name"], "instabug");
    assert_eq!(renamed["token"], token.as_str());

    // 3. Get application by token.
    let resp = http
        .get(url(&format!("/api/v1/apps/{token}")))
        .send()
        .await
        .expect("valid");
    assert_eq!(resp.status(), StatusCode::OK);
    let got: Value = resp.json().await.expect("valid");
    assert_eq!(
        keys(&got),
        set(&["token", "name", "chats_count", "created_at", "updated_at"])
    );
    assert_eq!(got["name"], "instabug");

    // 4. Create chat: no body, no content type.
    let resp = http
        .post(url(&format!("/api/v1/apps/{token}/chats")))
        .send()
        .await
        .expect("valid");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let chat: Value = resp.json().await.expect("valid");
    assert_eq!(chat["number"], 1);

    // 5. Get chat by number.
    let resp = http
        .get(url(&format!("/api/v1/apps/{token}/chats/1")))
        .send()
        .await
        .expect("valid");
    assert_eq!(resp.status(), StatusCode::OK);
    let chat: Value = resp.json().await.expect("valid");
    assert_eq!(
        keys(&chat),
        set(&["number", "messages_count", "created_at", "updated_at"])
    );
    assert_eq!(chat["messages_count"], 0);

    // 6. Create messages (the seed then reads number 3).
    for (i, content) in ["wassup!!!!", "hello there", "Hello again, HELLO"]
        .iter()
        .enumerate()
    {
        let resp = http
            .post(url(&format!("/api/v1/apps/{token}/chats/1/messages")))
            .header("Content-Type", "application/json")
            .body(format!("{{\n    \"content\":\"{content}\"\n}}"))
            .send()
            .await
            .expect("valid");
        assert_eq!(resp.status(), StatusCode::CREATED);
        let msg: Value = resp.json().await.expect("valid");
        assert_eq!(msg["number"], i as i64 + 1);
        assert_eq!(msg["content"], *content);
    }

    // 7. Get message by its number.
    let resp = http
        .get(url(&format!("/api/v1/apps/{token}/chats/1/messages/3")))
        .send()
        .await
        .expect("valid");
    assert_eq!(resp.status(), StatusCode::OK);
    let msg: Value = resp.json().await.expect("valid");
    assert_eq!(
        keys(&msg),
        set(&["number", "content", "created_at", "updated_at"])
    );
    assert_eq!(msg["content"], "Hello again, HELLO");

    // 8. Message autocomplete.
    let resp = http
        .get(url(&format!(
            "/api/v1/apps/{token}/chats/1/messages/autocomplete?limit=3&page=1&keyword=hello"
        )))
        .send()
        .await
        .expect("valid");
    assert_eq!(resp.status(), StatusCode::OK);
    let found: Value = resp.json().await.expect("valid");
    let numbers: Vec<i64> = found["messages"]
        .as_array()
        .expect("valid")
        .iter()
        .map(|m| m["number"].as_i64().expect("valid"))
        .collect();
    assert_eq!(numbers, [3, 2], "newest first, case-insensitive");
    assert_eq!(found["has_more"], false);

    // Counts are exact at once.
    let (_, app) = call(&s, Method::GET, &format!("/api/v1/apps/{token}"), None).await;
    assert_eq!(app["chats_count"], 1);
    let (_, chat) = call(
        &s,
        Method::GET,
        &format!("/api/v1/apps/{token}/chats/1"),
        None,
    )
    .await;
    assert_eq!(chat["messages_count"], 3);
}

/// No response of the compatible API carries an internal id: only tokens and numbers.
#[tokio::test]
async fn responses_carry_no_internal_ids() {
    let s = Server::start().await;
    let (token, _) = compat_app(&s, "ids").await;
    let chat = new_chat(&s, &token).await;
    new_message(&s, &token, chat, "hello").await;
    for path in [
        format!("/api/v1/apps/{token}"),
        format!("/api/v1/apps/{token}/chats/{chat}"),
        format!("/api/v1/apps/{token}/chats/{chat}/messages/1"),
        format!("/api/v1/apps/{token}/chats/{chat}/messages/autocomplete?keyword=ell"),
    ] {
        let (status, body) = call(&s, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let text = body.to_string();
        assert!(!text.contains("\"id\""), "{path}: {text}");
        assert!(!text.contains("app_id"), "{path}: {text}");
        assert!(!text.contains("room_id"), "{path}: {text}");
    }
}

/// Hundreds of racing requests: chat numbers are exactly 1..n, message numbers exactly 1..n
/// per chat, and the counts agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creations_get_gapless_unique_numbers() {
    let s = Server::start().await;
    let (token, secret) = compat_app(&s, "race").await;
    let base = s.base.clone();
    let http = reqwest::Client::new();

    const CHATS: usize = 200;
    let mut set_ = tokio::task::JoinSet::new();
    for _ in 0..CHATS {
        let (http, url) = (http.clone(), format!("{base}/api/v1/apps/{token}/chats"));
        set_.spawn(async move {
            let resp = http.post(url).send().await.expect("sent");
            assert_eq!(resp.status(), StatusCode::CREATED);
            resp.json::<Value>().await.expect("json")["number"]
                .as_i64()
                .expect("number")
        });
    }
    let mut numbers: Vec<i64> = set_.join_all().await;
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=CHATS as i64).collect::<Vec<_>>());

    const MESSAGES: usize = 1000;
    const IN_CHATS: i64 = 4;
    let mut set_ = tokio::task::JoinSet::new();
    for i in 0..MESSAGES {
        let chat = (i as i64 % IN_CHATS) + 1;
        let (http, url) = (
            http.clone(),
            format!("{base}/api/v1/apps/{token}/chats/{chat}/messages"),
        );
        set_.spawn(async move {
            let resp = http
                .post(url)
                .json(&json!({ "content": format!("message {i}") }))
                .send()
                .await
                .expect("sent");
            assert_eq!(resp.status(), StatusCode::CREATED);
            let number = resp.json::<Value>().await.expect("json")["number"]
                .as_i64()
                .expect("number");
            (chat, number)
        });
    }
    let results = set_.join_all().await;
    for chat in 1..=IN_CHATS {
        let mut got: Vec<i64> = results
            .iter()
            .filter(|(c, _)| *c == chat)
            .map(|(_, n)| *n)
            .collect();
        got.sort_unstable();
        let per_chat = MESSAGES as i64 / IN_CHATS;
        assert_eq!(got, (1..=per_chat).collect::<Vec<_>>(), "chat {chat}");
        let (_, body) = call(
            &s,
            Method::GET,
            &format!("/api/v1/apps/{token}/chats/{chat}"),
            None,
        )
        .await;
        assert_eq!(body["messages_count"], per_chat);
    }
    let (_, app) = call(&s, Method::GET, &format!("/api/v1/apps/{token}"), None).await;
    assert_eq!(app["chats_count"], CHATS as i64);
    // The same data through Confab's own API, with the app secret.
    let (status, own) = s.get("/v1/app", &secret).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["rooms_count"], CHATS as i64);
    assert_eq!(own["messages_count"], MESSAGES as i64);
}

#[tokio::test]
async fn unknown_tokens_and_numbers_are_404() {
    let s = Server::start().await;
    let (token, _) = compat_app(&s, "a").await;
    let chat = new_chat(&s, &token).await;
    new_message(&s, &token, chat, "hi").await;
    let long = "x".repeat(500);
    for bad in ["nope", long.as_str()] {
        for (m, path, body) in [
            (Method::GET, format!("/api/v1/apps/{bad}"), None),
            (
                Method::PUT,
                format!("/api/v1/apps/{bad}"),
                Some(json!({"name": "x"})),
            ),
            (Method::POST, format!("/api/v1/apps/{bad}/chats"), None),
            (Method::GET, format!("/api/v1/apps/{bad}/chats/1"), None),
            (
                Method::POST,
                format!("/api/v1/apps/{bad}/chats/1/messages"),
                Some(json!({"content": "x"})),
            ),
            (
                Method::GET,
                format!("/api/v1/apps/{bad}/chats/1/messages/1"),
                None,
            ),
            (
                Method::GET,
                format!("/api/v1/apps/{bad}/chats/1/messages/autocomplete?keyword=hi"),
                None,
            ),
        ] {
            let got = call(&s, m, &path, body).await;
            assert_error(&got, StatusCode::NOT_FOUND, "app_not_found");
        }
    }
    for (m, path, body) in [
        (Method::GET, format!("/api/v1/apps/{token}/chats/2"), None),
        (Method::GET, format!("/api/v1/apps/{token}/chats/0"), None),
        (
            Method::POST,
            format!("/api/v1/apps/{token}/chats/2/messages"),
            Some(json!({"content": "x"})),
        ),
        (
            Method::GET,
            format!("/api/v1/apps/{token}/chats/2/messages/1"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/apps/{token}/chats/2/messages/autocomplete?keyword=hi"),
            None,
        ),
    ] {
        let got = call(&s, m, &path, body).await;
        assert_error(&got, StatusCode::NOT_FOUND, "chat_not_found");
    }
    let got = call(
        &s,
        Method::GET,
        &format!("/api/v1/apps/{token}/chats/1/messages/2"),
        None,
    )
    .await;
    assert_error(&got, StatusCode::NOT_FOUND, "message_not_found");
    // One app's token never reaches another app's chats.
    let (other, _) = compat_app(&s, "b").await;
    let got = call(
        &s,
        Method::GET,
        &format!("/api/v1/apps/{other}/chats/1"),
        None,
    )
    .await;
    assert_error(&got, StatusCode::NOT_FOUND, "chat_not_found");
}

#[tokio::test]
async fn bad_bodies_and_parameters_are_refused_and_change_nothing() {
    let s = Server::start().await;
    let (token, _) = compat_app(&s, "a").await;
    let chat = new_chat(&s, &token).await;
    let http = reqwest::Client::new();
    let post_raw = |path: String, body: &'static str| {
        http.post(format!("{}{}", s.base, path))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    for (path, body, status, code) in [
        (
            "/api/v1/apps".to_owned(),
            "",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "/api/v1/apps".to_owned(),
            "{\"name\":",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "/api/v1/apps".to_owned(),
            "{\"name\":5}",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "/api/v1/apps".to_owned(),
            "{\"name\":\"a\",\"x\":1}",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            format!("/api/v1/apps/{token}/chats/{chat}/messages"),
            "{}",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            format!("/api/v1/apps/{token}/chats/{chat}/messages"),
            "{\"content\":\"\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "text_empty",
        ),
    ] {
        let resp = post_raw(path.clone(), body).await.expect("valid");
        let got = (resp.status(), resp.json::<Value>().await.expect("valid"));
        assert_error(&got, status, code);
    }
    let long = "x".repeat(8001);
    let got = call(
        &s,
        Method::POST,
        &format!("/api/v1/apps/{token}/chats/{chat}/messages"),
        Some(json!({ "content": long })),
    )
    .await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "text_too_long");
    let got = call(
        &s,
        Method::PUT,
        &format!("/api/v1/apps/{token}"),
        Some(json!({ "name": "" })),
    )
    .await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    let auto = format!("/api/v1/apps/{token}/chats/{chat}/messages/autocomplete");
    for (query, status, code) in [
        ("", StatusCode::UNPROCESSABLE_ENTITY, "invalid_search"),
        (
            "?keyword=%20%20",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_search",
        ),
        (
            "?keyword=hi&limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_limit",
        ),
        (
            "?keyword=hi&limit=101",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_limit",
        ),
        (
            "?keyword=hi&page=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_page",
        ),
        (
            "?keyword=hi&page=1000&limit=10",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_page",
        ),
        (
            "?keyword=hi&page=x",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "?keyword=hi&sort=asc",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
    ] {
        let got = call(&s, Method::GET, &format!("{auto}{query}"), None).await;
        assert_error(&got, status, code);
    }
    let got = call(
        &s,
        Method::GET,
        &format!("/api/v1/apps/{token}/chats/abc"),
        None,
    )
    .await;
    assert_eq!(got.0, StatusCode::BAD_REQUEST, "{}", got.1);
    // Nothing above changed anything.
    let (_, app) = call(&s, Method::GET, &format!("/api/v1/apps/{token}"), None).await;
    assert_eq!(app["name"], "a");
    assert_eq!(app["chats_count"], 1);
    let (_, c) = call(
        &s,
        Method::GET,
        &format!("/api/v1/apps/{token}/chats/{chat}"),
        None,
    )
    .await;
    assert_eq!(c["messages_count"], 0);
    let (_, apps) = s.get("/v1/apps", &s.admin_key).await;
    assert_eq!(
        apps["apps"].as_array().expect("valid").len(),
        1,
        "no app was created"
    );
}

#[tokio::test]
async fn app_creation_can_require_the_admin_key() {
    let s = Server::start_with(|c| c.open_app_creation = false).await;
    let got = call(
        &s,
        Method::POST,
        "/api/v1/apps",
        Some(json!({ "name": "x" })),
    )
    .await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized");
    let got = s
        .post("/api/v1/apps", "wrong", json!({ "name": "x" }))
        .await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized");
    let got = s
        .post("/api/v1/apps", &s.admin_key, json!({ "name": "x" }))
        .await;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let (_, apps) = s.get("/v1/apps", &s.admin_key).await;
    assert_eq!(apps["apps"].as_array().expect("valid").len(), 1);
}

/// The same app through both APIs: chats made by the compatible API are rooms of the app that
/// the app secret sees (counts, log), and rooms made by users through `/v1` do not exist for
/// the compatible API (see `tenancy` for every route).
#[tokio::test]
async fn both_apis_see_the_same_data() {
    let s = Server::start().await;
    let app = s.app("shared").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    s.send(&alice, room, "from the own API").await;
    let token = &app.token;
    let got = call(
        &s,
        Method::GET,
        &format!("/api/v1/apps/{token}/chats/{room}"),
        None,
    )
    .await;
    assert_error(&got, StatusCode::NOT_FOUND, "chat_not_found");
    // A chat made by the compatible API is a room of the app, with app-sent messages.
    let chat = new_chat(&s, token).await;
    assert_eq!(chat, room + 1);
    new_message(&s, token, chat, "from a device").await;
    let (_, own) = s.get("/v1/app", &app.secret).await;
    let (_, compat) = call(&s, Method::GET, &format!("/api/v1/apps/{token}"), None).await;
    assert_eq!(own["rooms_count"], compat["chats_count"]);
    assert_eq!(own["messages_count"], 2);
    let (_, events) = s.get("/v1/events?limit=200", &app.secret).await;
    let text = events.to_string();
    assert!(text.contains("from a device"), "{text}");
    // The room made by the device has no members: alice can neither read nor join it.
    let got = s.get(&format!("/v1/rooms/{chat}/messages"), &alice).await;
    assert_eq!(got.0, StatusCode::NOT_FOUND, "{}", got.1);
    let got = s
        .call(
            Method::POST,
            &format!("/v1/rooms/{chat}/join"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(got.0, StatusCode::NOT_FOUND, "{}", got.1);
}

#[tokio::test]
async fn autocomplete_pages_through_matches_newest_first() {
    let s = Server::start().await;
    let (token, _) = compat_app(&s, "pages").await;
    let chat = new_chat(&s, &token).await;
    for i in 1..=25 {
        new_message(&s, &token, chat, &format!("hello number {i}")).await;
        new_message(&s, &token, chat, &format!("other {i}")).await;
    }
    let mut seen = Vec::new();
    for (page, count, more) in [(1, 10, true), (2, 10, true), (3, 5, false), (4, 0, false)] {
        let (status, body) = call(
            &s,
            Method::GET,
            &format!(
                "/api/v1/apps/{token}/chats/{chat}/messages/autocomplete?keyword=LLO&limit=10&page={page}"
            ),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let msgs = body["messages"].as_array().expect("valid");
        assert_eq!(msgs.len(), count, "page {page}");
        assert_eq!(body["has_more"], more, "page {page}");
        seen.extend(msgs.iter().map(|m| m["number"].as_i64().expect("valid")));
    }
    let expected: Vec<i64> = (1..=25).rev().map(|i| 2 * i - 1).collect();
    assert_eq!(seen, expected);
}
