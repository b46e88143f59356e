//! What admins and owners do to members: kicks, bans, roles, and the limits among equals.

use super::{act, announcements, ids, member, members, pair, room};
use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn admins_kick_and_kicked_users_lose_access() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    s.user(&app, "dave").await;
    let public = s.group(&alice, "public", &["bob", "carol", "dave"]).await;
    let private = s.group(&alice, "private", &["bob", "carol", "dave"]).await;

    for n in [public, private] {
        let (status, _) = s
            .patch(
                &format!("/v1/rooms/{n}/members/bob"),
                &alice,
                json!({"role": "admin"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let before = room(&s, &alice, n).await;
        // A member cannot kick; an admin cannot kick the owner, another admin, or themself.
        assert_error(
            &act(&s, &carol, n, "dave", "kick").await,
            StatusCode::FORBIDDEN,
            "not_allowed",
        );
        assert_error(
            &act(&s, &bob, n, "alice", "kick").await,
            StatusCode::FORBIDDEN,
            "cannot_target_rank",
        );
        assert_error(
            &act(&s, &bob, n, "bob", "kick").await,
            StatusCode::FORBIDDEN,
            "cannot_target_rank",
        );
        assert_error(
            &act(&s, &alice, n, "alice", "kick").await,
            StatusCode::FORBIDDEN,
            "cannot_target_rank",
        );
        assert_error(
            &act(&s, &bob, n, "nobody", "kick").await,
            StatusCode::NOT_FOUND,
            "user_not_found",
        );
        let after = room(&s, &alice, n).await;
        assert_eq!(
            (&after["member_count"], &after["last_pos"]),
            (&before["member_count"], &before["last_pos"]),
            "refusals change nothing"
        );

        let (status, kicked) = act(&s, &bob, n, "carol", "kick").await;
        assert_eq!(status, StatusCode::OK, "{kicked}");
        assert_eq!(kicked["state"], "kicked");
        assert_eq!(room(&s, &alice, n).await["member_count"], 3);
        // Kicking again: carol is no longer a member.
        assert_error(
            &act(&s, &bob, n, "carol", "kick").await,
            StatusCode::CONFLICT,
            "target_not_member",
        );
        // The owner may kick an admin.
        let (status, _) = act(&s, &alice, n, "bob", "kick").await;
        assert_eq!(status, StatusCode::OK);
        let seen = announcements(&s, &alice, n, before["last_seq"].as_i64().expect("seq")).await;
        assert_eq!(
            seen,
            vec![pair("member_kicked", "carol"), pair("member_kicked", "bob")]
        );
    }

    assert_error(
        &s.get(&format!("/v1/rooms/{public}/messages"), &carol).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{public}/messages"),
            &carol,
            json!({"text": "still here?"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{private}/messages"), &carol)
            .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{private}/messages"),
            &carol,
            json!({"text": "still here?"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{private}"), &carol).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    // Bob, kicked as admin, lost the role with the membership.
    assert_error(
        &act(&s, &bob, public, "dave", "kick").await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );

    // A kick is not a ban: the public room can be rejoined (as a plain member); the private
    // one takes an application.
    let (_, back) = s
        .post(&format!("/v1/rooms/{public}/join"), &bob, json!({}))
        .await;
    assert_eq!(
        (back["state"].as_str(), back["role"].as_str()),
        (Some("joined"), Some("member"))
    );
    let (_, applied) = s
        .post(&format!("/v1/rooms/{private}/join"), &carol, json!({}))
        .await;
    assert_eq!(applied["state"], "applied");
}

#[tokio::test]
async fn banned_users_stay_out_until_unbanned() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let n = s.group(&alice, "public", &["bob", "carol"]).await;
    let base = room(&s, &alice, n).await["last_seq"].as_i64().expect("seq");

    assert_error(
        &act(&s, &carol, n, "bob", "ban").await,
        StatusCode::FORBIDDEN,
        "not_allowed",
    );
    let (status, banned) = act(&s, &alice, n, "bob", "ban").await;
    assert_eq!(status, StatusCode::OK, "{banned}");
    assert_eq!(banned["state"], "banned");
    assert_eq!(room(&s, &alice, n).await["member_count"], 2);
    // Banning twice changes nothing more.
    let pos = room(&s, &alice, n).await["last_pos"].clone();
    let (status, _) = act(&s, &alice, n, "bob", "ban").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(room(&s, &alice, n).await["last_pos"], pos);

    // The banned user is out and cannot come back by any door.
    assert_error(
        &s.get(&format!("/v1/rooms/{n}/messages"), &bob).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &s.post(&format!("/v1/rooms/{n}/join"), &bob, json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "banned",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{n}/invites"),
            &carol,
            json!({"user_id": "bob"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "banned",
    );
    assert_eq!(
        room(&s, &alice, n).await["last_pos"],
        pos,
        "refused joins change nothing"
    );
    assert_eq!(
        ids(&members(&s, &alice, n, Some("banned")).await),
        vec!["bob"]
    );

    // Users can be banned before they ever joined.
    s.user(&app, "dave").await;
    let (status, pre) = act(&s, &alice, n, "dave", "ban").await;
    assert_eq!(status, StatusCode::OK, "{pre}");
    assert_eq!(pre["state"], "banned");

    assert_error(
        &act(&s, &alice, n, "carol", "unban").await,
        StatusCode::CONFLICT,
        "not_banned",
    );
    assert_error(
        &act(&s, &carol, n, "bob", "unban").await,
        StatusCode::FORBIDDEN,
        "not_allowed",
    );
    let (status, unbanned) = act(&s, &alice, n, "bob", "unban").await;
    assert_eq!(status, StatusCode::OK, "{unbanned}");
    assert_eq!(unbanned["state"], "left");
    assert_error(
        &s.get(&format!("/v1/rooms/{n}/messages"), &bob).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    let (status, back) = s
        .post(&format!("/v1/rooms/{n}/join"), &bob, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["state"], "joined");
    s.send(&bob, n, "I'm back").await;

    let seen = announcements(&s, &alice, n, base).await;
    assert_eq!(
        seen,
        vec![
            pair("member_banned", "bob"),
            pair("member_banned", "dave"),
            pair("member_unbanned", "bob"),
            pair("member_joined", "bob")
        ]
    );
}

#[tokio::test]
async fn only_the_owner_sets_roles() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    s.user(&app, "dave").await;
    let n = s.group(&alice, "private", &["bob", "carol"]).await;
    let before = room(&s, &alice, n).await;

    assert_error(
        &s.patch(
            &format!("/v1/rooms/{n}/members/carol"),
            &bob,
            json!({"role": "admin"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_allowed",
    );
    assert_error(
        &s.patch(
            &format!("/v1/rooms/{n}/members/bob"),
            &bob,
            json!({"role": "admin"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_allowed",
    );
    assert_error(
        &s.patch(
            &format!("/v1/rooms/{n}/members/bob"),
            &alice,
            json!({"role": "owner"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_error(
        &s.patch(
            &format!("/v1/rooms/{n}/members/bob"),
            &alice,
            json!({"role": "god"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_error(
        &s.patch(
            &format!("/v1/rooms/{n}/members/bob"),
            &alice,
            json!({"role": "admin", "x": 1}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_error(
        &s.patch(
            &format!("/v1/rooms/{n}/members/alice"),
            &alice,
            json!({"role": "member"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "cannot_target_rank",
    );
    assert_error(
        &s.patch(
            &format!("/v1/rooms/{n}/members/dave"),
            &alice,
            json!({"role": "admin"}),
        )
        .await,
        StatusCode::CONFLICT,
        "target_not_member",
    );
    assert_eq!(room(&s, &alice, n).await, before, "refusals change nothing");

    let (status, m) = s
        .patch(
            &format!("/v1/rooms/{n}/members/bob"),
            &alice,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(
        (
            m["user_id"].as_str(),
            m["role"].as_str(),
            m["state"].as_str()
        ),
        (Some("bob"), Some("admin"), Some("joined"))
    );
    assert_eq!(member(&s, &carol, n, "bob").await["role"], "admin");
    assert_eq!(room(&s, &bob, n).await["role"], "admin");

    // An admin still cannot set roles, but now may invite and decide.
    assert_error(
        &s.patch(
            &format!("/v1/rooms/{n}/members/carol"),
            &bob,
            json!({"role": "admin"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_allowed",
    );
    let (status, _) = s
        .post(
            &format!("/v1/rooms/{n}/invites"),
            &bob,
            json!({"user_id": "dave"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // A role change is a change in the feed, without a timeline item.
    let since = before["last_pos"].as_i64().expect("pos");
    let (_, feed) = s
        .get(&format!("/v1/rooms/{n}/changes?since={since}"), &carol)
        .await;
    let first = &feed["changes"][0];
    assert_eq!(first["type"], "membership", "{feed}");
    assert_eq!(first["data"]["action"], "role_changed");
    assert_eq!(first["data"]["user"], "bob");
    assert_eq!(first["data"]["role"], "admin");
    assert_eq!(first["item"], Value::Null);

    // Back to member: the admin powers go.
    let (status, m) = s
        .patch(
            &format!("/v1/rooms/{n}/members/bob"),
            &alice,
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(m["role"], "member");
    assert_error(
        &act(&s, &bob, n, "carol", "kick").await,
        StatusCode::FORBIDDEN,
        "not_allowed",
    );
}

#[tokio::test]
async fn admins_cannot_act_on_their_equals() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let dave = s.user(&app, "dave").await;
    let n = s.group(&alice, "private", &["bob", "carol"]).await;
    for u in ["bob", "carol"] {
        let (status, _) = s
            .patch(
                &format!("/v1/rooms/{n}/members/{u}"),
                &alice,
                json!({"role": "admin"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let before = room(&s, &alice, n).await;
    for action in ["kick", "ban"] {
        assert_error(
            &act(&s, &bob, n, "carol", action).await,
            StatusCode::FORBIDDEN,
            "cannot_target_rank",
        );
        assert_error(
            &act(&s, &carol, n, "alice", action).await,
            StatusCode::FORBIDDEN,
            "cannot_target_rank",
        );
    }
    assert_eq!(room(&s, &alice, n).await, before);

    // An admin decides on applications and invites to the private room.
    let (_, applied) = s
        .post(&format!("/v1/rooms/{n}/join"), &dave, json!({}))
        .await;
    assert_eq!(applied["state"], "applied");
    let (status, approved) = act(&s, &bob, n, "dave", "approve").await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["state"], "joined");
    s.send(&dave, n, "hello all").await;
    // ... and may remove a plain member, who then is out.
    let (status, _) = act(&s, &carol, n, "dave", "ban").await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        &s.post(&format!("/v1/rooms/{n}/join"), &dave, json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "banned",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{n}/messages"), &dave).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    // The owner outranks admins.
    let (status, kicked) = act(&s, &alice, n, "carol", "kick").await;
    assert_eq!(status, StatusCode::OK, "{kicked}");
}
