//! Users and profiles: created and updated by the app, email shown only to the app and the user,
//! and `me`.

use super::token;
use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

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
