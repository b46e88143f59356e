//! Getting into a room: joining a public one, applying to a private one, and invitations.

use super::{act, announcements, ids, members, pair, room};
use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::json;

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
