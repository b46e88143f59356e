//! Credentials and input checks: the admin key, app secrets, user tokens, profiles, malformed
//! and oversized requests, and the isolation of apps from each other.

use crate::common::{Server, TestApp, assert_error};
use confab_core::ids::UserId;
use confab_core::model::AppKeys;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The signing keys of an app, read from the running server's store (to forge tokens).
async fn keys(s: &Server, app: &TestApp) -> AppKeys {
    s.store()
        .app_keys_by_token(&app.token)
        .await
        .expect("store answers")
        .expect("app exists")
}

/// Mints a token for an existing user without touching their profile.
async fn token(s: &Server, app: &TestApp, id: &str) -> String {
    let (status, body) = s
        .post(&format!("/v1/users/{id}/tokens"), &app.secret, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

/// base64url without padding, for hand-made token parts.
fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

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
async fn the_admin_key_guards_the_apps() {
    let s = Server::start().await;

    let no_key = s
        .call(Method::POST, "/v1/apps", None, Some(json!({"name": "x"})))
        .await;
    assert_error(&no_key, StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong = s
        .post(
            "/v1/apps",
            "ck_admin_wrong_wrong_wrong",
            json!({"name": "x"}),
        )
        .await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_error(
        &s.call(Method::GET, "/v1/apps", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &s.get("/v1/apps", "nope").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // A key without the "Bearer" scheme is refused; the scheme name is case-insensitive.
    let resp = s
        .client
        .get(format!("{}/v1/apps", s.base))
        .header("authorization", s.admin_key.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = s
        .client
        .get(format!("{}/v1/apps", s.base))
        .header("authorization", format!("bearer {}", s.admin_key))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);

    let (status, created) = s
        .post("/v1/apps", &s.admin_key, json!({"name": "first"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "first");
    let secret = created["secret"].as_str().expect("secret shown once");
    let token = created["token"].as_str().expect("token");
    assert_ne!(secret, token);

    // An app's secret is not an admin key.
    assert_error(
        &s.get("/v1/apps", secret).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &s.post("/v1/apps", secret, json!({"name": "y"})).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    s.app("second").await;
    let (status, list) = s.get("/v1/apps", &s.admin_key).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let apps = list["apps"].as_array().expect("apps");
    assert_eq!(apps.len(), 2, "{list}");
    let first = apps
        .iter()
        .find(|a| a["token"] == token)
        .expect("first listed");
    assert_eq!(first["name"], "first");
    assert!(
        apps.iter().all(|a| a.get("secret").is_none()),
        "secrets are never listed: {list}"
    );

    // App names are checked like other names.
    let long = s
        .post("/v1/apps", &s.admin_key, json!({"name": "n".repeat(201)}))
        .await;
    assert_error(&long, StatusCode::PAYLOAD_TOO_LARGE, "name_too_long");
    let unknown = s
        .post(
            "/v1/apps",
            &s.admin_key,
            json!({"name": "z", "owner": "me"}),
        )
        .await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "invalid_json");
}

#[tokio::test]
async fn an_app_sees_itself_with_its_counts() {
    let s = Server::start().await;
    let app = s.app("counted").await;

    let (status, me) = s.get("/v1/app", &app.secret).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["token"], app.token.as_str());
    assert_eq!(me["name"], "counted");
    assert!(me.get("secret").is_none(), "{me}");
    assert_eq!(
        (
            me["rooms_count"].as_i64(),
            me["users_count"].as_i64(),
            me["messages_count"].as_i64()
        ),
        (Some(0), Some(0), Some(0))
    );

    let alice = s.user(&app, "alice").await;
    s.user(&app, "bob").await;
    // Updating a user does not count them twice.
    s.user(&app, "bob").await;
    let room = s.group(&alice, "public", &["bob"]).await;
    s.group(&alice, "private", &[]).await;
    s.send(&alice, room, "one").await;
    s.send(&alice, room, "two").await;

    let (_, me) = s.get("/v1/app", &app.secret).await;
    assert_eq!(me["users_count"], 2, "{me}");
    assert_eq!(me["rooms_count"], 2, "{me}");
    assert_eq!(
        me["messages_count"], 2,
        "announcements are not messages: {me}"
    );

    assert_error(
        &s.get("/v1/app", "cs_wrong").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &s.get("/v1/app", &s.admin_key).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &s.get("/v1/app", &alice).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &s.call(Method::GET, "/v1/app", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn the_app_creates_and_updates_users() {
    let s = Server::start().await;
    let app = s.app("a").await;

    let (status, u) = s
        .put(
            "/v1/users/alice",
            &app.secret,
            json!({"name": "Alice", "email": "a@example.com", "image_url": "https://i/a.png"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{u}");
    assert_eq!(u["id"], "alice");
    assert_eq!(u["name"], "Alice");
    assert_eq!(u["email"], "a@example.com");
    assert_eq!(u["image_url"], "https://i/a.png");
    assert!(u["created_at"].is_string());
    assert_eq!(u["last_login_at"], Value::Null);

    // PUT replaces the whole profile: fields left out are cleared.
    let (status, u) = s
        .put("/v1/users/alice", &app.secret, json!({"name": "Alice B."}))
        .await;
    assert_eq!(status, StatusCode::OK, "{u}");
    assert_eq!(u["name"], "Alice B.");
    assert_eq!(u["email"], Value::Null, "{u}");
    assert_eq!(u["image_url"], Value::Null, "{u}");

    let (status, got) = s.get("/v1/users/alice", &app.secret).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["name"], "Alice B.");

    // Only the app may create users, with valid ids and fields.
    let alice = s.user(&app, "alice").await;
    assert_error(
        &s.put("/v1/users/eve", &alice, json!({"name": "Eve"})).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &s.put("/v1/users/eve", &s.admin_key, json!({"name": "Eve"}))
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &s.put("/v1/users/a%20b", &app.secret, json!({"name": "x"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_error(
        &s.put(
            &format!("/v1/users/{}", "u".repeat(129)),
            &app.secret,
            json!({}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_error(
        &s.put(
            "/v1/users/eve",
            &app.secret,
            json!({"name": "Eve", "admin": true}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_error(
        &s.put(
            "/v1/users/eve",
            &app.secret,
            json!({"name": "n".repeat(201)}),
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "name_too_long",
    );
    assert_error(
        &s.put("/v1/users/eve", &app.secret, json!({"name": "   "}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_error(
        &s.get("/v1/users/eve", &app.secret).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );

    let (status, u) = s
        .put(
            "/v1/users/eve",
            &app.secret,
            json!({"name": "n".repeat(200)}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a name of exactly 200 characters is fine: {u}"
    );
}

#[tokio::test]
async fn minting_a_token_checks_ttl_and_user_and_records_the_login() {
    let s = Server::start_with(|c| c.max_token_ttl = 3600).await;
    let app = s.app("a").await;
    let (status, _) = s
        .put("/v1/users/alice", &app.secret, json!({"name": "Alice"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, before) = s.get("/v1/users/alice", &app.secret).await;
    assert_eq!(before["last_login_at"], Value::Null, "{before}");

    let (status, short) = s
        .post(
            "/v1/users/alice/tokens",
            &app.secret,
            json!({"ttl_seconds": 60}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{short}");
    assert_eq!(short["user_id"], "alice");
    let token = short["token"].as_str().expect("token");
    assert_eq!(token.matches('.').count(), 2, "a JWT: {token}");

    let (_, after) = s.get("/v1/users/alice", &app.secret).await;
    assert!(
        after["last_login_at"].is_string(),
        "minting records a login: {after}"
    );

    let (status, max) = s
        .post(
            "/v1/users/alice/tokens",
            &app.secret,
            json!({"ttl_seconds": 3600}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{max}");
    let (e_short, e_max) = (
        short["expires_at"].as_str().expect("exp"),
        max["expires_at"].as_str().expect("exp"),
    );
    assert!(e_short < e_max, "{e_short} vs {e_max}");

    // No body and an empty object both mean the default life.
    let (status, body) = s
        .call(
            Method::POST,
            "/v1/users/alice/tokens",
            Some(&app.secret),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let too_long = s
        .post(
            "/v1/users/alice/tokens",
            &app.secret,
            json!({"ttl_seconds": 3601}),
        )
        .await;
    assert_error(&too_long, StatusCode::UNPROCESSABLE_ENTITY, "invalid_ttl");
    let zero = s
        .post(
            "/v1/users/alice/tokens",
            &app.secret,
            json!({"ttl_seconds": 0}),
        )
        .await;
    assert_error(&zero, StatusCode::UNPROCESSABLE_ENTITY, "invalid_ttl");
    let negative = s
        .post(
            "/v1/users/alice/tokens",
            &app.secret,
            json!({"ttl_seconds": -5}),
        )
        .await;
    assert_error(&negative, StatusCode::UNPROCESSABLE_ENTITY, "invalid_ttl");
    let unknown_field = s
        .post("/v1/users/alice/tokens", &app.secret, json!({"ttl": 60}))
        .await;
    assert_error(&unknown_field, StatusCode::BAD_REQUEST, "invalid_json");

    let nobody = s
        .post("/v1/users/nobody/tokens", &app.secret, json!({}))
        .await;
    assert_error(&nobody, StatusCode::NOT_FOUND, "user_not_found");
    let (_, users) = s.get("/v1/app", &app.secret).await;
    assert_eq!(
        users["users_count"], 1,
        "minting for an unknown user creates nobody: {users}"
    );

    // Only the app mints.
    assert_error(
        &s.post("/v1/users/alice/tokens", token, json!({})).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    let (status, me) = s.get("/v1/me", token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], "alice");
}

#[tokio::test]
async fn user_tokens_are_checked_strictly() {
    let s = Server::start().await;
    let a = s.app("a").await;
    let b = s.app("b").await;
    let alice = s.user(&a, "alice").await;
    s.user(&b, "alice").await;

    let (status, _) = s.get("/v1/me", &alice).await;
    assert_eq!(status, StatusCode::OK);

    for bad in [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.e30.xxxx",
        a.secret.as_str(),
        s.admin_key.as_str(),
    ] {
        assert_error(
            &s.get("/v1/me", bad).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    assert_error(
        &s.call(Method::GET, "/v1/me", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // A user token is not an app secret, neither for its own app nor for another.
    assert_error(
        &s.get("/v1/app", &alice).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &s.get("/v1/events", &alice).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(
        &s.put("/v1/users/mallory", &alice, json!({})).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    let ka = keys(&s, &a).await;
    let kb = keys(&s, &b).await;
    let user = UserId("alice".into());

    // The forging path itself works: a token made with the right key and a future expiry passes.
    let (fresh, _) = confab_api::auth::mint(&ka, &user, 60).expect("mint");
    assert_eq!(s.get("/v1/me", &fresh).await.0, StatusCode::OK);

    // Expired, with the right key: refused, no leeway.
    let (expired, _) = confab_api::auth::mint(&ka, &user, -1).expect("mint");
    assert_error(
        &s.get("/v1/me", &expired).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (long_expired, _) = confab_api::auth::mint(&ka, &user, -86_400).expect("mint");
    assert_error(
        &s.get("/v1/me", &long_expired).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // Naming app A but signed with app B's key (and the reverse): refused.
    let wrong_key = AppKeys {
        id: ka.id,
        token: a.token.clone(),
        signing_key: kb.signing_key.clone(),
        key_id: ka.key_id.clone(),
    };
    let (forged, _) = confab_api::auth::mint(&wrong_key, &user, 60).expect("mint");
    assert_error(
        &s.get("/v1/me", &forged).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let swapped = AppKeys {
        id: kb.id,
        token: b.token.clone(),
        signing_key: ka.signing_key.clone(),
        key_id: kb.key_id.clone(),
    };
    let (forged, _) = confab_api::auth::mint(&swapped, &user, 60).expect("mint");
    assert_error(
        &s.get("/v1/me", &forged).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    // Naming a key that does not exist.
    let ghost = AppKeys {
        id: ka.id,
        token: a.token.clone(),
        signing_key: ka.signing_key.clone(),
        key_id: "0123456789abcdef0123456789abcdef".into(),
    };
    let (forged, _) = confab_api::auth::mint(&ghost, &user, 60).expect("mint");
    assert_error(
        &s.get("/v1/me", &forged).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // The algorithm is pinned: "none" and other algorithms are refused.
    let claims =
        b64url(format!(r#"{{"sub":"alice","iat":0,"exp":{}}}"#, 4_000_000_000u64).as_bytes());
    for alg in ["none", "HS512", "RS256"] {
        let header =
            b64url(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#, ka.key_id).as_bytes());
        let token = format!("{header}.{claims}.");
        assert_error(
            &s.get("/v1/me", &token).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
        let token = format!("{header}.{claims}.c2ln");
        assert_error(
            &s.get("/v1/me", &token).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        );
    }
    // A valid token with its payload swapped for another user's is refused (the signature no longer matches).
    let parts: Vec<&str> = fresh.split('.').collect();
    let other = b64url(format!(r#"{{"sub":"bob","iat":0,"exp":{}}}"#, 4_000_000_000u64).as_bytes());
    let tampered = format!("{}.{}.{}", parts[0], other, parts[2]);
    assert_error(
        &s.get("/v1/me", &tampered).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn profiles_show_email_only_to_the_app_and_the_user() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let (status, _) = s
        .put(
            "/v1/users/alice",
            &app.secret,
            json!({"name": "Alice", "email": "alice@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let alice = token(&s, &app, "alice").await;
    let bob = s.user(&app, "bob").await;

    let (status, own) = s.get("/v1/users/alice", &alice).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["email"], "alice@example.com");
    assert!(own["last_login_at"].is_string(), "{own}");
    assert!(own.get("last_seen_at").is_some(), "{own}");

    let (status, seen_by_bob) = s.get("/v1/users/alice", &bob).await;
    assert_eq!(status, StatusCode::OK, "{seen_by_bob}");
    assert_eq!(seen_by_bob["id"], "alice");
    assert_eq!(seen_by_bob["name"], "Alice");
    assert!(
        seen_by_bob.get("email").is_none() || seen_by_bob["email"].is_null(),
        "email hidden: {seen_by_bob}"
    );
    assert!(seen_by_bob["last_login_at"].is_string(), "{seen_by_bob}");

    let (status, by_app) = s.get("/v1/users/alice", &app.secret).await;
    assert_eq!(status, StatusCode::OK, "{by_app}");
    assert_eq!(by_app["email"], "alice@example.com");

    assert_error(
        &s.get("/v1/users/carol", &bob).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    assert_error(
        &s.get("/v1/users/alice", "junk").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn me_reads_and_updates_my_profile() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let (status, _) = s
        .put(
            "/v1/users/alice",
            &app.secret,
            json!({"name": "Alice", "email": "alice@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let alice = token(&s, &app, "alice").await;

    let (status, me) = s.get("/v1/me", &alice).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], "alice");
    assert_eq!(me["name"], "Alice");
    assert_eq!(me["email"], "alice@example.com");

    let (status, me) = s
        .patch(
            "/v1/me",
            &alice,
            json!({"name": "Al", "image_url": "https://img/al.png"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "Al");
    assert_eq!(me["image_url"], "https://img/al.png");
    assert_eq!(me["email"], "alice@example.com", "email untouched: {me}");

    // Only the named fields change.
    let (status, me) = s
        .patch("/v1/me", &alice, json!({"image_url": "https://img/2.png"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "Al");
    assert_eq!(me["image_url"], "https://img/2.png");

    // A user cannot change their email (the app owns it) or other fields.
    assert_error(
        &s.patch("/v1/me", &alice, json!({"email": "x@y"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_error(
        &s.patch("/v1/me", &alice, json!({"id": "bob"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_error(
        &s.patch("/v1/me", &alice, json!({"name": "n".repeat(201)}))
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "name_too_long",
    );
    assert_error(
        &s.patch("/v1/me", &alice, json!({"name": ""})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_error(
        &s.patch("/v1/me", &alice, json!({"name": "a\nb"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );

    let (_, me) = s.get("/v1/me", &alice).await;
    assert_eq!(me["name"], "Al", "refused updates changed nothing: {me}");
    let (_, by_app) = s.get("/v1/users/alice", &app.secret).await;
    assert_eq!(by_app["name"], "Al");
    assert_eq!(by_app["image_url"], "https://img/2.png");

    // The app's secret is not a user.
    assert_error(
        &s.get("/v1/me", &app.secret).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
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

    // Paths and queries that do not parse.
    assert_error(
        &s.get("/v1/rooms/abc", &alice).await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    );
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

/// Two apps, each with a user "alice" and a room 1 (and more): nothing of one is visible to the
/// other, whatever the numbers and names.
#[tokio::test]
async fn apps_are_isolated_from_each_other() {
    let s = Server::start().await;
    let a = s.app("a").await;
    let b = s.app("b").await;
    let alice_a = s.user(&a, "alice").await;
    let alice_b = s.user(&b, "alice").await;
    let bob_a = s.user(&a, "bob").await;
    let carol_b = s.user(&b, "carol").await;

    let (status, ra) = s
        .post(
            "/v1/rooms",
            &alice_a,
            json!({"kind": "group", "name": "A room", "visibility": "public", "alias": "lobby"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ra}");
    let (status, rb) = s.post("/v1/rooms", &alice_b, json!({"kind": "group", "name": "B room", "visibility": "public", "alias": "lobby", "members": ["carol"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{rb}");
    assert_eq!(ra["number"], 1);
    assert_eq!(rb["number"], 1);
    s.send(&alice_a, 1, "from A").await;
    s.send(&alice_b, 1, "secret of B").await;
    // B has a room 2 and a private room 3; A has neither.
    let b2 = s.group(&alice_b, "public", &[]).await;
    let b3 = s.group(&alice_b, "private", &["carol"]).await;
    assert_eq!((b2, b3), (2, 3));
    s.send(&alice_b, b3, "private in B").await;

    // A's alice reading room 1 sees A's room and A's messages only.
    let (status, room) = s.get("/v1/rooms/1", &alice_a).await;
    assert_eq!(status, StatusCode::OK, "{room}");
    assert_eq!(room["name"], "A room");
    let (_, page) = s.get("/v1/rooms/1/messages", &alice_a).await;
    let texts: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["text"].as_str())
        .collect();
    assert!(texts.contains(&"from A"), "{page}");
    assert!(!texts.iter().any(|t| t.contains("B")), "{page}");
    let (_, by_alias) = s.get("/v1/rooms/alias/lobby", &alice_a).await;
    assert_eq!(by_alias["name"], "A room");
    let (_, by_alias) = s.get("/v1/rooms/alias/lobby", &alice_b).await;
    assert_eq!(by_alias["name"], "B room");

    // A's users cannot see, join or post in B's rooms 2 and 3.
    for n in [b2, b3] {
        assert_error(
            &s.get(&format!("/v1/rooms/{n}"), &bob_a).await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
        assert_error(
            &s.post(&format!("/v1/rooms/{n}/join"), &bob_a, json!({}))
                .await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
        assert_error(
            &s.post(
                &format!("/v1/rooms/{n}/messages"),
                &alice_a,
                json!({"text": "x"}),
            )
            .await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
        assert_error(
            &s.get(&format!("/v1/rooms/{n}/messages"), &alice_a).await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
        assert_error(
            &s.get(&format!("/v1/rooms/{n}/members"), &alice_a).await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
        assert_error(
            &s.get(&format!("/v1/rooms/{n}/changes"), &alice_a).await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
        assert_error(
            &s.delete(&format!("/v1/rooms/{n}"), &alice_a).await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
    }
    // Joining room 1 as A's bob joins A's room, not B's.
    let (status, m) = s.post("/v1/rooms/1/join", &bob_a, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    let (_, members_b) = s.get("/v1/rooms/1/members", &alice_b).await;
    assert!(!members_b.to_string().contains("bob"), "{members_b}");
    let (_, room_b) = s.get("/v1/rooms/1", &alice_b).await;
    assert_eq!(room_b["member_count"], 2, "{room_b}");

    // Lists show only the caller's app.
    let (_, public_a) = s.get("/v1/rooms/public", &bob_a).await;
    let names: Vec<&str> = public_a["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, vec!["A room"], "{public_a}");
    let (_, mine) = s.get("/v1/rooms", &alice_a).await;
    assert_eq!(mine["rooms"].as_array().map(Vec::len), Some(1), "{mine}");

    // Users of one app do not exist in the other.
    assert_error(
        &s.get("/v1/users/carol", &alice_a).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    assert_error(
        &s.get("/v1/users/carol", &a.secret).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    assert_error(
        &s.post("/v1/users/carol/tokens", &a.secret, json!({})).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    assert_error(
        &s.post(
            "/v1/rooms",
            &alice_a,
            json!({"kind": "direct", "with": "carol"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    assert_error(
        &s.post("/v1/rooms/1/invites", &alice_a, json!({"user_id": "carol"}))
            .await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    let refused = s
        .post(
            "/v1/rooms",
            &alice_a,
            json!({"kind": "group", "members": ["carol"]}),
        )
        .await;
    assert_error(&refused, StatusCode::NOT_FOUND, "user_not_found");
    let (_, carol_me) = s.get("/v1/me", &carol_b).await;
    assert_eq!(carol_me["id"], "carol");

    // Same user id, different people: each alice has her own profile.
    let (status, _) = s
        .put(
            "/v1/users/alice",
            &a.secret,
            json!({"name": "Alice of A", "email": "a@a"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, me_b) = s.get("/v1/me", &alice_b).await;
    assert_eq!(me_b["name"], "alice", "{me_b}");
    assert!(me_b["email"].is_null(), "{me_b}");

    // A's secret sees A's counts and A's events only.
    let (_, app_a) = s.get("/v1/app", &a.secret).await;
    assert_eq!(app_a["token"], a.token.as_str());
    assert_eq!(app_a["rooms_count"], 1, "{app_a}");
    assert_eq!(app_a["messages_count"], 1, "{app_a}");
    let (status, events) = s.get("/v1/events?limit=1000", &a.secret).await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let text = events.to_string();
    assert!(text.contains("from A"), "{text}");
    for foreign in ["secret of B", "private in B", "B room", "carol"] {
        assert!(!text.contains(foreign), "A's log shows {foreign}: {text}");
    }
    let (_, events_b) = s.get("/v1/events?limit=1000", &b.secret).await;
    assert!(!events_b.to_string().contains("from A"), "{events_b}");
}
