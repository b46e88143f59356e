//! Membership: joining, applications, invitations, leaving, kicks, bans, roles, the members list,
//! and how every change shows in the timeline and the change feed.

use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn room(s: &Server, token: &str, n: i64) -> Value {
    let (status, r) = s.get(&format!("/v1/rooms/{n}"), token).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    r
}

/// The members list (all states unless `state` is given), as seen by `token`.
async fn members(s: &Server, token: &str, n: i64, state: Option<&str>) -> Vec<Value> {
    let path = match state {
        Some(st) => format!("/v1/rooms/{n}/members?state={st}&limit=200"),
        None => format!("/v1/rooms/{n}/members?limit=200"),
    };
    let (status, list) = s.get(&path, token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["members"].as_array().expect("members").clone()
}

async fn member(s: &Server, token: &str, n: i64, user: &str) -> Value {
    members(s, token, n, None)
        .await
        .into_iter()
        .find(|m| m["user_id"] == user)
        .unwrap_or(Value::Null)
}

fn ids(list: &[Value]) -> Vec<&str> {
    list.iter().filter_map(|m| m["user_id"].as_str()).collect()
}

/// The announcements of a room's timeline after `after_seq`: (type, user).
async fn announcements(s: &Server, token: &str, n: i64, after_seq: i64) -> Vec<(String, String)> {
    let (status, page) = s
        .get(
            &format!("/v1/rooms/{n}/messages?after={after_seq}&limit=200"),
            token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == "announcement")
        .map(|i| {
            let a = &i["announcement"];
            (
                a["type"].as_str().unwrap_or("").to_owned(),
                a["user"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn act(s: &Server, token: &str, n: i64, user: &str, action: &str) -> (StatusCode, Value) {
    s.post(
        &format!("/v1/rooms/{n}/members/{user}/{action}"),
        token,
        json!({}),
    )
    .await
}

fn pair(t: &str, u: &str) -> (String, String) {
    (t.to_owned(), u.to_owned())
}

#[tokio::test]
async fn anyone_in_the_app_joins_a_public_room() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let n = s.group(&alice, "public", &[]).await;
    s.send(&alice, n, "before bob").await;
    let before = room(&s, &alice, n).await;

    let (status, m) = s
        .post(&format!("/v1/rooms/{n}/join"), &bob, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["user_id"], "bob");
    assert_eq!(m["state"], "joined");
    assert_eq!(m["role"], "member");
    let after = room(&s, &bob, n).await;
    assert_eq!(after["member_count"], 2);
    assert_eq!(after["membership"], "joined");
    assert_eq!(
        after["last_seq"],
        before["last_seq"].as_i64().expect("seq") + 1
    );
    assert_eq!(
        m["read_seq"], after["last_seq"],
        "a newcomer has nothing unread: {m}"
    );
    let (_, list) = s.get("/v1/rooms", &bob).await;
    assert_eq!(list["rooms"][0]["unread_count"], 0, "{list}");

    // Joining again is a no-op.
    let (status, again) = s
        .post(&format!("/v1/rooms/{n}/join"), &bob, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["state"], "joined");
    assert_eq!(room(&s, &bob, n).await["last_pos"], after["last_pos"]);

    // Bob reads the history from before he joined, and can talk.
    let (_, page) = s.get(&format!("/v1/rooms/{n}/messages"), &bob).await;
    assert!(page.to_string().contains("before bob"));
    s.send(&bob, n, "hi").await;
    let seen = announcements(&s, &alice, n, 0).await;
    assert_eq!(
        seen,
        vec![pair("room_created", ""), pair("member_joined", "bob")]
    );
}

#[tokio::test]
async fn a_private_room_takes_applications_that_admins_decide() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let dave = s.user(&app, "dave").await;
    let n = s.group(&alice, "private", &["bob"]).await;
    let base = room(&s, &alice, n).await["last_seq"].as_i64().expect("seq");

    let (status, m) = s
        .post(&format!("/v1/rooms/{n}/join"), &carol, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["state"], "applied");
    // Applying twice files one application.
    let (status, again) = s
        .post(&format!("/v1/rooms/{n}/join"), &carol, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["state"], "applied");
    // An applicant sees the room's details but not its timeline.
    let seen = room(&s, &carol, n).await;
    assert_eq!(seen["membership"], "applied");
    assert_eq!(seen["member_count"], 2);
    assert_error(
        &s.get(&format!("/v1/rooms/{n}/messages"), &carol).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{n}/messages"),
            &carol,
            json!({"text": "x"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );

    let (status, _) = s
        .post(&format!("/v1/rooms/{n}/join"), &dave, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let applied = members(&s, &alice, n, Some("applied")).await;
    assert_eq!(ids(&applied), vec!["carol", "dave"]);

    // Members cannot decide; the applicant cannot approve themself.
    let before = room(&s, &alice, n).await;
    assert_error(
        &act(&s, &bob, n, "carol", "approve").await,
        StatusCode::FORBIDDEN,
        "not_allowed",
    );
    assert_error(
        &act(&s, &carol, n, "carol", "approve").await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &act(&s, &alice, n, "bob", "approve").await,
        StatusCode::CONFLICT,
        "not_applied",
    );
    assert_error(
        &act(&s, &alice, n, "nobody", "approve").await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    assert_error(
        &act(&s, &alice, n, "carol", "promote").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let after = room(&s, &alice, n).await;
    assert_eq!(
        (&after["last_pos"], &after["member_count"]),
        (&before["last_pos"], &before["member_count"])
    );

    let (status, approved) = act(&s, &alice, n, "carol", "approve").await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["state"], "joined");
    assert_eq!(approved["role"], "member");
    let (status, rejected) = act(&s, &alice, n, "dave", "reject").await;
    assert_eq!(status, StatusCode::OK, "{rejected}");
    assert_eq!(rejected["state"], "rejected");
    assert_error(
        &act(&s, &alice, n, "dave", "approve").await,
        StatusCode::CONFLICT,
        "not_applied",
    );

    s.send(&carol, n, "thanks for having me").await;
    assert_eq!(room(&s, &alice, n).await["member_count"], 3);
    assert_error(
        &s.get(&format!("/v1/rooms/{n}"), &dave).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );

    // A rejected user may apply again, and withdraw by leaving.
    let (_, reapplied) = s
        .post(&format!("/v1/rooms/{n}/join"), &dave, json!({}))
        .await;
    assert_eq!(reapplied["state"], "applied");
    let (status, withdrawn) = s
        .post(&format!("/v1/rooms/{n}/leave"), &dave, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    assert_eq!(withdrawn["state"], "left");
    assert_eq!(members(&s, &alice, n, Some("applied")).await.len(), 0);

    let seen = announcements(&s, &alice, n, base).await;
    assert_eq!(
        seen,
        vec![
            pair("member_applied", "carol"),
            pair("member_applied", "dave"),
            pair("member_approved", "carol"),
            pair("member_rejected", "dave"),
            pair("member_applied", "dave"),
            pair("member_withdrew", "dave"),
        ]
    );
}

#[tokio::test]
async fn invitations_follow_visibility_and_are_accepted_or_declined() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let dave = s.user(&app, "dave").await;
    let erin = s.user(&app, "erin").await;
    let public = s.group(&alice, "public", &["bob"]).await;
    let private = s.group(&alice, "private", &["bob"]).await;

    // Public: any member may invite; the invitee joins.
    let (status, inv) = s
        .post(
            &format!("/v1/rooms/{public}/invites"),
            &bob,
            json!({"user_id": "carol"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{inv}");
    assert_eq!(inv["state"], "invited");
    assert_eq!(
        room(&s, &alice, public).await["member_count"],
        2,
        "an invitation is not membership"
    );
    let (status, joined) = s
        .post(&format!("/v1/rooms/{public}/join"), &carol, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["state"], "joined");
    // Outsiders of a public room cannot invite.
    assert_error(
        &s.post(
            &format!("/v1/rooms/{public}/invites"),
            &dave,
            json!({"user_id": "erin"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );

    // Private: only admins.
    let before = room(&s, &alice, private).await;
    assert_error(
        &s.post(
            &format!("/v1/rooms/{private}/invites"),
            &bob,
            json!({"user_id": "dave"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_allowed",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{private}/invites"),
            &carol,
            json!({"user_id": "dave"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{private}/invites"),
            &alice,
            json!({"user_id": "bob"}),
        )
        .await,
        StatusCode::CONFLICT,
        "already_member",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{private}/invites"),
            &alice,
            json!({"user_id": "ghost"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{private}/invites"),
            &alice,
            json!({"user_id": "bad id"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_error(
        &s.post(
            &format!("/v1/rooms/{private}/invites"),
            &alice,
            json!({"user": "dave"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    let after = room(&s, &alice, private).await;
    assert_eq!(before, after, "refused invitations change nothing");
    assert_eq!(members(&s, &alice, private, Some("invited")).await.len(), 0);

    let (status, inv) = s
        .post(
            &format!("/v1/rooms/{private}/invites"),
            &alice,
            json!({"user_id": "dave"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{inv}");
    assert_eq!(inv["state"], "invited");
    // Inviting twice is one invitation.
    let (status, _) = s
        .post(
            &format!("/v1/rooms/{private}/invites"),
            &alice,
            json!({"user_id": "dave"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .post(
            &format!("/v1/rooms/{private}/invites"),
            &alice,
            json!({"user_id": "erin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ids(&members(&s, &alice, private, Some("invited")).await),
        vec!["dave", "erin"]
    );

    // The invitee sees the room and its pending invitation, but not the timeline yet.
    assert_eq!(room(&s, &dave, private).await["membership"], "invited");
    let (_, pending) = s.get("/v1/rooms?state=invited", &dave).await;
    assert_eq!(pending["rooms"][0]["number"], private, "{pending}");
    assert_error(
        &s.get(&format!("/v1/rooms/{private}/messages"), &dave).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );

    // Dave accepts, Erin declines.
    let (status, accepted) = s
        .post(&format!("/v1/rooms/{private}/join"), &dave, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["state"], "joined");
    let (status, declined) = s
        .post(&format!("/v1/rooms/{private}/leave"), &erin, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{declined}");
    assert_eq!(declined["state"], "left");
    assert_error(
        &s.get(&format!("/v1/rooms/{private}"), &erin).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    // Having declined, joining a private room is an application again.
    let (_, applied) = s
        .post(&format!("/v1/rooms/{private}/join"), &erin, json!({}))
        .await;
    assert_eq!(applied["state"], "applied");
    // Inviting someone who applied lets them in.
    let (status, approved) = s
        .post(
            &format!("/v1/rooms/{private}/invites"),
            &alice,
            json!({"user_id": "erin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["state"], "joined");

    let r = room(&s, &alice, private).await;
    assert_eq!(r["member_count"], 4, "{r}");
    let seen = announcements(&s, &alice, private, 2).await;
    assert_eq!(
        seen,
        vec![
            pair("member_invited", "dave"),
            pair("member_invited", "erin"),
            pair("member_joined", "dave"),
            pair("member_declined", "erin"),
            pair("member_applied", "erin"),
            pair("member_approved", "erin"),
        ]
    );
}

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
async fn the_members_list_filters_by_state_and_shows_read_markers() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let outsider = s.user(&app, "zoe").await;
    for u in ["carol", "dave", "erin", "frank"] {
        s.user(&app, u).await;
    }
    let n = s.group(&alice, "public", &["bob", "carol", "dave"]).await;
    let private = s.group(&alice, "private", &[]).await;
    let (status, _) = s
        .post(
            &format!("/v1/rooms/{n}/invites"),
            &alice,
            json!({"user_id": "erin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = act(&s, &alice, n, "frank", "ban").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .post(&format!("/v1/rooms/{n}/leave"), &bob, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .post(&format!("/v1/rooms/{n}/join"), &bob, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let m1 = s.send(&alice, n, "one").await;
    s.send(&alice, n, "two").await;

    let all = members(&s, &alice, n, None).await;
    assert_eq!(
        ids(&all),
        vec!["alice", "bob", "carol", "dave", "erin", "frank"]
    );
    let joined = members(&s, &alice, n, Some("joined")).await;
    assert_eq!(ids(&joined), vec!["alice", "bob", "carol", "dave"]);
    assert_eq!(
        ids(&members(&s, &alice, n, Some("invited")).await),
        vec!["erin"]
    );
    assert_eq!(
        ids(&members(&s, &alice, n, Some("banned")).await),
        vec!["frank"]
    );
    assert_eq!(members(&s, &alice, n, Some("kicked")).await.len(), 0);
    let owner = &joined[0];
    assert_eq!(
        (owner["role"].as_str(), owner["state"].as_str()),
        (Some("owner"), Some("joined"))
    );
    assert_eq!(joined[1]["role"], "member");

    // Read markers.
    let carol_before = member(&s, &alice, n, "carol").await["read_seq"]
        .as_i64()
        .expect("read_seq");
    let carol = s
        .post("/v1/users/carol/tokens", &app.secret, json!({}))
        .await
        .1["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (status, marker) = s
        .put(
            &format!("/v1/rooms/{n}/read"),
            &carol,
            json!({"seq": m1["seq"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{marker}");
    let carol_after = member(&s, &alice, n, "carol").await["read_seq"]
        .as_i64()
        .expect("read_seq");
    assert!(carol_after > carol_before);
    assert_eq!(carol_after, m1["seq"].as_i64().expect("seq"));

    // Paging by one walks everyone once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/rooms/{n}/members?limit=1&cursor={c}"),
            None => format!("/v1/rooms/{n}/members?limit=1"),
        };
        let (status, page) = s.get(&path, &bob).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            ids(page["members"].as_array().expect("members"))
                .into_iter()
                .map(str::to_owned),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(seen.len() <= 6, "{seen:?}");
    }
    assert_eq!(seen, vec!["alice", "bob", "carol", "dave", "erin", "frank"]);

    assert_error(
        &s.get(&format!("/v1/rooms/{n}/members?state=lurking"), &alice)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{n}/members?cursor=bm9wZQ"), &alice)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{n}/members?limit=0"), &alice)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_limit",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{n}/members"), &outsider).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{private}/members"), &outsider)
            .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    let erin = s
        .post("/v1/users/erin/tokens", &app.secret, json!({}))
        .await
        .1["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_error(
        &s.get(&format!("/v1/rooms/{n}/members"), &erin).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
}

#[tokio::test]
async fn every_membership_change_is_in_the_timeline_and_the_change_feed() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    s.user(&app, "dave").await;
    let n = s.group(&alice, "public", &[]).await;

    let (_, start) = s.get(&format!("/v1/rooms/{n}/changes"), &alice).await;
    let start_pos = start["next_since"].as_i64().expect("pos");
    assert_eq!(
        start["changes"].as_array().map(Vec::len),
        Some(2),
        "created and the owner added: {start}"
    );
    assert_eq!(start_pos, 2);

    let steps: Vec<(&str, (StatusCode, Value))> = vec![
        (
            "joined",
            s.post(&format!("/v1/rooms/{n}/join"), &bob, json!({}))
                .await,
        ),
        (
            "invited",
            s.post(
                &format!("/v1/rooms/{n}/invites"),
                &bob,
                json!({"user_id": "carol"}),
            )
            .await,
        ),
        (
            "joined",
            s.post(&format!("/v1/rooms/{n}/join"), &carol, json!({}))
                .await,
        ),
        ("kicked", act(&s, &alice, n, "carol", "kick").await),
        ("banned", act(&s, &alice, n, "dave", "ban").await),
        ("unbanned", act(&s, &alice, n, "dave", "unban").await),
        (
            "left",
            s.post(&format!("/v1/rooms/{n}/leave"), &bob, json!({}))
                .await,
        ),
    ];
    for (what, (status, body)) in &steps {
        assert_eq!(*status, StatusCode::OK, "{what}: {body}");
    }

    let (status, feed) = s
        .get(&format!("/v1/rooms/{n}/changes?since={start_pos}"), &alice)
        .await;
    assert_eq!(status, StatusCode::OK, "{feed}");
    let changes = feed["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), steps.len(), "{feed}");
    let r = room(&s, &alice, n).await;
    assert_eq!(feed["next_since"], r["last_pos"]);
    assert_eq!(feed["has_more"], false);
    for (i, (c, (what, _))) in changes.iter().zip(&steps).enumerate() {
        assert_eq!(c["pos"], start_pos + 1 + i as i64, "gapless: {c}");
        assert_eq!(c["type"], "membership");
        assert_eq!(c["data"]["action"], *what, "{c}");
        let item = &c["item"];
        assert_eq!(item["kind"], "announcement", "{c}");
        assert_eq!(item["announcement"]["type"], format!("member_{what}"));
        assert_eq!(item["pos"], c["pos"]);
        assert!(c["at"].is_string());
    }
    let users: Vec<&str> = changes
        .iter()
        .filter_map(|c| c["data"]["user"].as_str())
        .collect();
    assert_eq!(
        users,
        vec!["bob", "carol", "carol", "carol", "dave", "dave", "bob"]
    );

    // The same announcements, in seq order, in the timeline; seqs are gapless.
    let (_, page) = s.get(&format!("/v1/rooms/{n}/messages"), &alice).await;
    let items = page["items"].as_array().expect("items");
    let seqs: Vec<i64> = items.iter().filter_map(|i| i["seq"].as_i64()).collect();
    assert_eq!(
        seqs,
        (1..=r["last_seq"].as_i64().expect("seq")).collect::<Vec<_>>()
    );
    assert!(items.iter().all(|i| i["kind"] == "announcement"), "{page}");
    let texts: Vec<&str> = items
        .iter()
        .skip(1)
        .filter_map(|i| i["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        vec![
            "bob joined",
            "bob invited carol",
            "carol joined",
            "alice removed carol",
            "alice banned dave",
            "alice lifted the ban on dave",
            "bob left"
        ]
    );

    // Reading the feed from the middle gives exactly the rest.
    let mid = start_pos + 3;
    let (_, rest) = s
        .get(
            &format!("/v1/rooms/{n}/changes?since={mid}&limit=2"),
            &alice,
        )
        .await;
    let rest_pos: Vec<i64> = rest["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["pos"].as_i64())
        .collect();
    assert_eq!(rest_pos, vec![mid + 1, mid + 2]);
    assert_eq!(rest["has_more"], true);
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

#[tokio::test]
async fn refused_requests_change_nothing() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let n = s.group(&alice, "private", &["bob"]).await;
    s.send(&bob, n, "hello").await;
    let before = room(&s, &alice, n).await;
    let members_before = members(&s, &alice, n, None).await;
    let (_, events_before) = s.get("/v1/events?limit=1000", &app.secret).await;

    let refusals = vec![
        (
            act(&s, &bob, n, "alice", "kick").await,
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
        (
            act(&s, &bob, n, "alice", "ban").await,
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
        (
            act(&s, &alice, n, "alice", "ban").await,
            StatusCode::FORBIDDEN,
            "cannot_target_rank",
        ),
        (
            act(&s, &carol, n, "bob", "kick").await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        ),
        (
            s.post(
                &format!("/v1/rooms/{n}/invites"),
                &bob,
                json!({"user_id": "carol"}),
            )
            .await,
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
        (
            s.post(
                &format!("/v1/rooms/{n}/invites"),
                &alice,
                json!({"user_id": "bob"}),
            )
            .await,
            StatusCode::CONFLICT,
            "already_member",
        ),
        (
            s.patch(
                &format!("/v1/rooms/{n}/members/bob"),
                &bob,
                json!({"role": "admin"}),
            )
            .await,
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
        (
            s.patch(&format!("/v1/rooms/{n}"), &bob, json!({"name": "mine"}))
                .await,
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
        (
            s.delete(&format!("/v1/rooms/{n}"), &bob).await,
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
        (
            s.post(&format!("/v1/rooms/{n}/leave"), &carol, json!({}))
                .await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        ),
        (
            act(&s, &alice, n, "carol", "unban").await,
            StatusCode::CONFLICT,
            "not_banned",
        ),
        (
            act(&s, &alice, n, "carol", "kick").await,
            StatusCode::CONFLICT,
            "target_not_member",
        ),
        (
            act(&s, &alice, n, "carol", "reject").await,
            StatusCode::CONFLICT,
            "not_applied",
        ),
    ];
    for (got, status, code) in &refusals {
        assert_error(got, *status, code);
    }

    assert_eq!(room(&s, &alice, n).await, before);
    assert_eq!(members(&s, &alice, n, None).await, members_before);
    let (_, events_after) = s.get("/v1/events?limit=1000", &app.secret).await;
    let count = |e: &Value| {
        e["events"]
            .as_array()
            .map(|a| a.iter().filter(|e| e["type"] != "user_seen").count())
    };
    assert_eq!(
        count(&events_after),
        count(&events_before),
        "no event was appended"
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
