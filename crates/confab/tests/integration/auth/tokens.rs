//! User tokens: minting (ttl, user, login recorded) and strict checking.

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
