//! Creating rooms: one direct room per pair, and group rooms with unique aliases per app.

use super::timeline;
use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_direct_room_is_one_per_pair_and_fixed() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;

    let (status, room) = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "direct", "with": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_eq!(room["kind"], "direct");
    assert_eq!(room["visibility"], "private");
    assert_eq!(room["member_count"], 2);
    assert_eq!(room["membership"], "joined");
    let n = room["number"].as_i64().expect("number");

    // A second create, from either side, returns the same room with 200.
    let (status, again) = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "direct", "with": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["number"], n);
    let (status, from_bob) = s
        .post(
            "/v1/rooms",
            &bob,
            json!({"kind": "direct", "with": "alice"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{from_bob}");
    assert_eq!(from_bob["number"], n);
    let (_, app_view) = s.get("/v1/app", &app.secret).await;
    assert_eq!(app_view["rooms_count"], 1, "{app_view}");

    // Another pair gets another room.
    let (status, other) = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "direct", "with": "carol"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_ne!(other["number"], n);

    assert_error(
        &s.post(
            "/v1/rooms",
            &alice,
            json!({"kind": "direct", "with": "alice"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "direct_with_self",
    );
    assert_error(
        &s.post(
            "/v1/rooms",
            &alice,
            json!({"kind": "direct", "with": "nobody"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    assert_error(
        &s.post("/v1/rooms", &alice, json!({"kind": "direct"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_error(
        &s.post(
            "/v1/rooms",
            &alice,
            json!({"kind": "direct", "with": "bob", "name": "x"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );

    // Both members can talk.
    s.send(&alice, n, "hi bob").await;
    s.send(&bob, n, "hi alice").await;

    // Nobody else gets in, and nobody else even sees it.
    assert_error(
        &s.post(
            &format!("/v1/rooms/{n}/invites"),
            &alice,
            json!({"user_id": "carol"}),
        )
        .await,
        StatusCode::CONFLICT,
        "direct_room_fixed",
    );
    assert_error(
        &s.post(&format!("/v1/rooms/{n}/join"), &carol, json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{n}"), &carol).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{n}/messages"), &carol).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{n}/members"), &carol).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{n}/messages"),
            &carol,
            json!({"text": "let me in"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{n}/invites"),
            &carol,
            json!({"user_id": "carol"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );

    // The two members cannot be removed, renamed away or deleted.
    assert_error(
        &s.post(&format!("/v1/rooms/{n}/leave"), &alice, json!({}))
            .await,
        StatusCode::CONFLICT,
        "direct_room_fixed",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{n}/members/bob/kick"),
            &alice,
            json!({}),
        )
        .await,
        StatusCode::CONFLICT,
        "direct_room_fixed",
    );
    assert_error(
        &s.patch(&format!("/v1/rooms/{n}"), &alice, json!({"name": "ours"}))
            .await,
        StatusCode::CONFLICT,
        "direct_room_fixed",
    );
    assert_error(
        &s.delete(&format!("/v1/rooms/{n}"), &alice).await,
        StatusCode::CONFLICT,
        "direct_room_fixed",
    );

    let (_, members) = s.get(&format!("/v1/rooms/{n}/members"), &bob).await;
    let mut ids: Vec<&str> = members["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["user_id"].as_str())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["alice", "bob"], "{members}");
    let (_, room) = s.get(&format!("/v1/rooms/{n}"), &bob).await;
    assert_eq!(room["member_count"], 2, "{room}");
    assert_eq!(room["messages_count"], 2, "{room}");
}

#[tokio::test]
async fn group_rooms_have_unique_aliases_per_app() {
    let s = Server::start().await;
    let a = s.app("a").await;
    let b = s.app("b").await;
    let alice = s.user(&a, "alice").await;
    s.user(&a, "bob").await;
    let carol = s.user(&a, "carol").await;
    let zed = s.user(&b, "zed").await;

    let (status, room) = s.post("/v1/rooms", &alice, json!({"kind": "group", "name": "General", "visibility": "public", "alias": "general", "members": ["bob", "bob", "alice"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    assert_eq!(room["kind"], "group");
    assert_eq!(room["name"], "General");
    assert_eq!(room["alias"], "general");
    assert_eq!(room["visibility"], "public");
    assert_eq!(room["creator"], "alice");
    assert_eq!(room["role"], "owner");
    assert_eq!(
        room["member_count"], 2,
        "duplicates and the creator count once: {room}"
    );
    let n = room["number"].as_i64().expect("number");

    let taken = s
        .post(
            "/v1/rooms",
            &carol,
            json!({"kind": "group", "name": "Other", "alias": "general"}),
        )
        .await;
    assert_error(&taken, StatusCode::CONFLICT, "room_alias_taken");
    // Another app may use the same alias.
    let (status, theirs) = s
        .post(
            "/v1/rooms",
            &zed,
            json!({"kind": "group", "alias": "general"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");

    let (status, found) = s.get("/v1/rooms/alias/general", &carol).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["number"], n);
    assert_eq!(found["name"], "General");
    assert!(
        found.get("role").is_none(),
        "carol is not a member: {found}"
    );
    assert_error(
        &s.get("/v1/rooms/alias/nothing", &carol).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );

    // A private room's alias does not leak to non-members.
    let (status, private) = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "group", "alias": "backroom"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{private}");
    assert_eq!(
        private["visibility"], "private",
        "groups are private unless asked: {private}"
    );
    assert_error(
        &s.get("/v1/rooms/alias/backroom", &carol).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    let (status, _) = s.get("/v1/rooms/alias/backroom", &alice).await;
    assert_eq!(status, StatusCode::OK);

    for bad in ["Has Caps", "with space", "", "ü"] {
        let r = s
            .post("/v1/rooms", &alice, json!({"kind": "group", "alias": bad}))
            .await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input");
    }
    let r = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "group", "visibility": "secret"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_json");
    let r = s
        .post("/v1/rooms", &alice, json!({"kind": "channel"}))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_json");

    // An unknown initial member refuses the whole creation.
    let r = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "group", "alias": "fresh", "members": ["bob", "ghost"]}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "user_not_found");
    let members: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let r = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "group", "members": members}),
        )
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "too_many_members");
    let (_, app_view) = s.get("/v1/app", &a.secret).await;
    assert_eq!(app_view["rooms_count"], 2, "{app_view}");
    let (status, fresh) = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "group", "alias": "fresh"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the alias was not taken by the refused creation: {fresh}"
    );
    assert_eq!(fresh["number"], 3, "numbers stay gapless: {fresh}");

    // The creation is announced; initial members are in.
    let items = timeline(&s, &alice, n).await;
    assert_eq!(items[0]["seq"], 1);
    assert_eq!(items[0]["kind"], "announcement");
    assert_eq!(items[0]["announcement"]["type"], "room_created");
    assert_eq!(items[0]["announcement"]["by"], "alice");
}
