//! Apps: the admin key that guards them, what an app sees of itself, and their isolation from
//! each other.

use crate::common::{Server, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::json;

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
