//! Leaving a room: access goes with it, and an owner who leaves passes the room on.

use super::{act, announcements, ids, member, members, pair, room};
use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn leaving_gives_up_access() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let public = s.group(&alice, "public", &["bob"]).await;
    let private = s.group(&alice, "private", &["bob"]).await;

    for n in [public, private] {
        let (status, left) = s
            .post(&format!("/v1/rooms/{n}/leave"), &bob, json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{left}");
        assert_eq!(left["state"], "left");
        assert_eq!(room(&s, &alice, n).await["member_count"], 1);
        assert_eq!(
            ids(&members(&s, &alice, n, Some("joined")).await),
            vec!["alice"]
        );
        assert_eq!(member(&s, &alice, n, "bob").await["state"], "left");
    }
    assert_error(
        &s.get(&format!("/v1/rooms/{public}/messages"), &bob).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{public}/messages"),
            &bob,
            json!({"text": "x"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{private}"), &bob).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{private}/messages"), &bob).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    let (_, mine) = s.get("/v1/rooms", &bob).await;
    assert_eq!(mine["rooms"].as_array().map(Vec::len), Some(0), "{mine}");

    // Leaving what one is not in is refused and changes nothing.
    let before = room(&s, &alice, public).await;
    assert_error(
        &s.post(&format!("/v1/rooms/{public}/leave"), &bob, json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &s.post(&format!("/v1/rooms/{public}/leave"), &carol, json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &s.post(&format!("/v1/rooms/{private}/leave"), &carol, json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_eq!(room(&s, &alice, public).await, before);

    // Coming back to a public room works.
    let (_, back) = s
        .post(&format!("/v1/rooms/{public}/join"), &bob, json!({}))
        .await;
    assert_eq!(back["state"], "joined");
    let seen = announcements(&s, &alice, public, 0).await;
    assert_eq!(
        seen,
        vec![
            pair("room_created", ""),
            pair("member_added", "bob"),
            pair("member_left", "bob"),
            pair("member_joined", "bob")
        ]
    );
}

#[tokio::test]
async fn an_owner_who_leaves_passes_the_room_on() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let dave = s.user(&app, "dave").await;
    let n = s.group(&alice, "private", &["bob", "carol", "dave"]).await;

    // An admin is preferred over a longer-standing member.
    let (status, _) = s
        .patch(
            &format!("/v1/rooms/{n}/members/carol"),
            &alice,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, left) = s
        .post(&format!("/v1/rooms/{n}/leave"), &alice, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{left}");
    assert_eq!(left["state"], "left");
    assert_eq!(member(&s, &bob, n, "carol").await["role"], "owner");
    assert_eq!(room(&s, &carol, n).await["role"], "owner");
    assert_eq!(room(&s, &bob, n).await["member_count"], 3);
    // The new owner has the owner's powers, the old one none.
    let (status, _) = s
        .patch(
            &format!("/v1/rooms/{n}/members/bob"),
            &carol,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        &s.get(&format!("/v1/rooms/{n}"), &alice).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );

    // Without admins, the longest-standing member takes over.
    let (status, _) = s
        .patch(
            &format!("/v1/rooms/{n}/members/bob"),
            &carol,
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .post(&format!("/v1/rooms/{n}/leave"), &carol, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let joined = members(&s, &bob, n, Some("joined")).await;
    let roles: Vec<(&str, &str)> = joined
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap_or(""),
                m["role"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(roles, vec![("bob", "owner"), ("dave", "member")]);
    let (status, _) = act(&s, &bob, n, "dave", "kick").await;
    assert_eq!(status, StatusCode::OK);

    // The last one out leaves an empty room behind; it stays for the log but has nobody.
    let (status, _) = s
        .post(&format!("/v1/rooms/{n}/leave"), &bob, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    for who in [&alice, &bob, &carol, &dave] {
        assert_error(
            &s.get(&format!("/v1/rooms/{n}"), who).await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
    }
    let (_, events) = s.get("/v1/events?limit=1000", &app.secret).await;
    let handovers: Vec<&Value> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["data"]["new_owner"].is_string())
        .collect();
    let new_owners: Vec<&str> = handovers
        .iter()
        .filter_map(|e| e["data"]["new_owner"].as_str())
        .collect();
    assert_eq!(new_owners, vec!["carol", "bob"], "{events}");
}
