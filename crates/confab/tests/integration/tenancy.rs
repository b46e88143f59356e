//! Tenancy: what a user token reveals (nothing usable), and what the compatible API's public
//! token reaches (only the chats made through it, never a room that users made).

use crate::common::{Server, TestApp, assert_error};
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn decode_segment(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// An app whose users alice and bob talk in a direct room, a private group and a public group,
/// with eve, another user of the app, outside all of them. Returns the app, the three room
/// numbers, and the tokens of alice and eve.
async fn conversations(s: &Server) -> (TestApp, [i64; 3], String, String) {
    let app = s.app("tenancy").await;
    let alice = s.user(&app, "alice").await;
    s.user(&app, "bob").await;
    let eve = s.user(&app, "eve").await;
    let (status, direct) = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "direct", "with": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{direct}");
    let direct = direct["number"].as_i64().expect("number");
    let private = s.group(&alice, "private", &["bob"]).await;
    let public = s.group(&alice, "public", &["bob"]).await;
    for room in [direct, private, public] {
        s.send(&alice, room, "our private plans").await;
    }
    (app, [direct, private, public], alice, eve)
}

#[tokio::test]
async fn a_user_token_reveals_no_credential() {
    let s = Server::start().await;
    let (app, rooms, _, eve) = conversations(&s).await;
    let keys = s
        .store()
        .app_keys_by_token(&app.token)
        .await
        .expect("store")
        .expect("app");
    // The header names an opaque key id; nothing in the token is a credential.
    let header = decode_segment(&eve, 0);
    let kid = header["kid"].as_str().expect("kid").to_owned();
    assert_ne!(kid, app.token);
    for secret in [&app.token, &app.secret, &keys.signing_key, &s.admin_key] {
        assert!(
            !eve.contains(secret.as_str()),
            "the token carries a credential"
        );
        assert!(!header.to_string().contains(secret.as_str()));
        assert!(
            !decode_segment(&eve, 1)
                .to_string()
                .contains(secret.as_str())
        );
    }
    // The key id opens nothing: not the compatible API, not /v1 as an app or as the admin.
    let chats = [
        format!("/api/v1/apps/{kid}"),
        format!("/api/v1/apps/{kid}/chats/{}", rooms[0]),
        format!("/api/v1/apps/{kid}/chats/{}/messages/1", rooms[0]),
        format!(
            "/api/v1/apps/{kid}/chats/{}/messages/autocomplete?keyword=plans",
            rooms[0]
        ),
    ];
    for path in chats {
        let got = s.call(Method::GET, &path, None, None).await;
        assert_error(&got, StatusCode::NOT_FOUND, "app_not_found");
    }
    let got = s
        .call(
            Method::PUT,
            &format!("/api/v1/apps/{kid}"),
            None,
            Some(json!({"name": "owned"})),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "app_not_found");
    for path in ["/v1/app", "/v1/events", "/v1/apps"] {
        let got = s.get(path, &kid).await;
        assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // Eve's own token still works, and still cannot read the others' rooms.
    let (status, _) = s.get("/v1/me", &eve).await;
    assert_eq!(status, StatusCode::OK);
    let got = s
        .get(&format!("/v1/rooms/{}/messages", rooms[0]), &eve)
        .await;
    assert_eq!(got.0, StatusCode::NOT_FOUND, "{}", got.1);
}

#[tokio::test]
async fn a_token_naming_the_app_token_as_key_is_refused() {
    let s = Server::start().await;
    let app = s.app("legacy").await;
    s.user(&app, "alice").await;
    let keys = s
        .store()
        .app_keys_by_token(&app.token)
        .await
        .expect("store")
        .expect("app");
    // Tokens minted before key ids named the app token; correctly signed, they are refused now.
    let legacy = confab_core::model::AppKeys {
        key_id: app.token.clone(),
        ..keys
    };
    let user = confab_core::ids::UserId("alice".into());
    let (token, _) = confab_api::auth::mint(&legacy, &user, 600).expect("mint");
    let got = s.get("/v1/me", &token).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn the_compatible_api_reaches_no_room_that_users_made() {
    let s = Server::start().await;
    let (app, rooms, alice, _) = conversations(&s).await;
    let t = &app.token;
    for room in rooms {
        let (_, before) = s.get(&format!("/v1/rooms/{room}/messages"), &alice).await;
        let last = before["items"]
            .as_array()
            .and_then(|a| a.last())
            .and_then(|i| i["seq"].as_i64())
            .expect("items");
        let mut refused = vec![
            s.call(
                Method::GET,
                &format!("/api/v1/apps/{t}/chats/{room}"),
                None,
                None,
            )
            .await,
            s.call(
                Method::GET,
                &format!("/api/v1/apps/{t}/chats/{room}/messages/autocomplete?keyword=plans"),
                None,
                None,
            )
            .await,
            s.call(
                Method::GET,
                &format!("/api/v1/apps/{t}/chats/{room}/messages/autocomplete?keyword=p"),
                None,
                None,
            )
            .await,
            s.call(
                Method::POST,
                &format!("/api/v1/apps/{t}/chats/{room}/messages"),
                None,
                Some(json!({"content": "injected"})),
            )
            .await,
        ];
        for seq in 1..=last {
            refused.push(
                s.call(
                    Method::GET,
                    &format!("/api/v1/apps/{t}/chats/{room}/messages/{seq}"),
                    None,
                    None,
                )
                .await,
            );
        }
        for got in &refused {
            assert_error(got, StatusCode::NOT_FOUND, "chat_not_found");
            assert!(!got.1.to_string().contains("plans"), "{}", got.1);
        }
        // Nothing was posted into the room.
        let (_, after) = s.get(&format!("/v1/rooms/{room}/messages"), &alice).await;
        assert_eq!(before, after, "room {room} changed");
    }
    // The app and its own chats still work through the compatible API.
    let (status, got) = s
        .call(Method::GET, &format!("/api/v1/apps/{t}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let (status, chat) = s
        .call(Method::POST, &format!("/api/v1/apps/{t}/chats"), None, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{chat}");
    let chat = chat["number"].as_i64().expect("number");
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/apps/{t}/chats/{chat}/messages"),
            None,
            Some(json!({"content": "device text"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, msg) = s
        .call(
            Method::GET,
            &format!("/api/v1/apps/{t}/chats/{chat}/messages/1"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{msg}");
    assert_eq!(msg["content"], "device text");
}

#[tokio::test]
async fn other_credentials_are_not_compatible_api_tokens() {
    let s = Server::start().await;
    let (app, rooms, alice, _) = conversations(&s).await;
    for credential in [app.secret.as_str(), alice.as_str(), s.admin_key.as_str()] {
        let got = s
            .call(
                Method::GET,
                &format!("/api/v1/apps/{credential}/chats/{}/messages/1", rooms[1]),
                None,
                None,
            )
            .await;
        assert_error(&got, StatusCode::NOT_FOUND, "app_not_found");
    }
}
