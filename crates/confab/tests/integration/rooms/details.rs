//! One room: its details by visibility, updates by admins, and deletion by the owner.

use super::{numbers, timeline};
use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn room_details_follow_visibility() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    s.user(&app, "bob").await;
    let dave = s.user(&app, "dave").await;
    let erin = s.user(&app, "erin").await;

    let public = s.group(&alice, "public", &["bob"]).await;
    let private = s.group(&alice, "private", &["bob"]).await;
    s.send(&alice, public, "hello").await;
    s.send(&alice, public, "again").await;

    let (status, own) = s.get(&format!("/v1/rooms/{public}"), &alice).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["member_count"], 2);
    assert_eq!(own["messages_count"], 2);
    assert_eq!(
        own["last_seq"], 4,
        "created, bob added, two messages: {own}"
    );
    assert_eq!(own["role"], "owner");
    assert_eq!(own["membership"], "joined");

    // Any user of the app sees a public room's details, but not its timeline.
    let (status, seen) = s.get(&format!("/v1/rooms/{public}"), &dave).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["member_count"], 2);
    assert_eq!(seen["last_seq"], 4);
    assert!(
        seen.get("role").is_none() && seen.get("membership").is_none(),
        "{seen}"
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{public}/messages"), &dave).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{public}/members"), &dave).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{public}/changes"), &dave).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{public}/messages/3"), &dave)
            .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );

    // A private room is not found for outsiders, exactly like a room that does not exist.
    let hidden = s.get(&format!("/v1/rooms/{private}"), &dave).await;
    let missing = s.get("/v1/rooms/999", &dave).await;
    assert_error(&hidden, StatusCode::NOT_FOUND, "room_not_found");
    assert_error(&missing, StatusCode::NOT_FOUND, "room_not_found");
    assert_eq!(hidden.1, missing.1, "no existence leak");
    assert_error(
        &s.get(&format!("/v1/rooms/{private}/messages"), &dave).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );

    // Invited users see the details of the private room they are invited to.
    let (status, _) = s
        .post(
            &format!("/v1/rooms/{private}/invites"),
            &alice,
            json!({"user_id": "erin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, invited) = s.get(&format!("/v1/rooms/{private}"), &erin).await;
    assert_eq!(status, StatusCode::OK, "{invited}");
    assert_eq!(invited["membership"], "invited");
    assert!(invited.get("role").is_none(), "{invited}");
    assert_error(
        &s.get(&format!("/v1/rooms/{private}/messages"), &erin).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );

    assert_error(
        &s.get("/v1/rooms/0", &alice).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.get("/v1/rooms/-3", &alice).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
}

#[tokio::test]
async fn only_admins_change_a_room_and_renames_are_announced() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let dave = s.user(&app, "dave").await;
    let n = s.group(&alice, "public", &["bob", "carol"]).await;
    let private = s.group(&alice, "private", &[]).await;

    let (_, before) = s.get(&format!("/v1/rooms/{n}"), &alice).await;
    let refused = s
        .patch(&format!("/v1/rooms/{n}"), &bob, json!({"name": "bob's"}))
        .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "not_allowed");
    assert_error(
        &s.patch(&format!("/v1/rooms/{n}"), &dave, json!({"name": "dave's"}))
            .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &s.patch(
            &format!("/v1/rooms/{private}"),
            &dave,
            json!({"name": "dave's"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.patch(
            &format!("/v1/rooms/{n}"),
            &alice,
            json!({"name": "x", "owner": "bob"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    );
    assert_error(
        &s.patch(&format!("/v1/rooms/{n}"), &alice, json!({"name": " "}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    let (_, after) = s.get(&format!("/v1/rooms/{n}"), &alice).await;
    assert_eq!(before, after, "refusals change nothing");

    // The owner renames; the timeline announces it and the change feed has it.
    let (status, renamed) = s
        .patch(
            &format!("/v1/rooms/{n}"),
            &alice,
            json!({"name": "Lounge", "image_url": "https://i/l.png"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Lounge");
    assert_eq!(renamed["image_url"], "https://i/l.png");
    assert_eq!(
        renamed["last_seq"],
        before["last_seq"].as_i64().expect("seq") + 1
    );
    let items = timeline(&s, &bob, n).await;
    let last = items.last().expect("an item");
    assert_eq!(last["kind"], "announcement");
    assert_eq!(last["announcement"]["type"], "room_renamed");
    assert_eq!(last["announcement"]["name"], "Lounge");
    assert_eq!(last["announcement"]["by"], "alice");
    assert!(
        last["text"].as_str().is_some_and(|t| t.contains("Lounge")),
        "{last}"
    );
    let since = before["last_pos"].as_i64().expect("pos");
    let (_, changes) = s
        .get(&format!("/v1/rooms/{n}/changes?since={since}"), &bob)
        .await;
    let changes = changes["changes"].as_array().expect("changes").clone();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["type"], "room_updated");
    assert_eq!(changes[0]["data"]["name"], "Lounge");
    assert_eq!(changes[0]["item"]["seq"], last["seq"]);

    // Renaming to the same name changes nothing.
    let (status, same) = s
        .patch(&format!("/v1/rooms/{n}"), &alice, json!({"name": "Lounge"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["last_pos"], renamed["last_pos"]);
    assert_eq!(same["last_seq"], renamed["last_seq"]);

    // An image change alone is a change but not an announcement.
    let (_, pic) = s
        .patch(
            &format!("/v1/rooms/{n}"),
            &alice,
            json!({"image_url": "https://i/2.png"}),
        )
        .await;
    assert_eq!(pic["last_seq"], renamed["last_seq"], "{pic}");
    assert_eq!(
        pic["last_pos"],
        renamed["last_pos"].as_i64().expect("pos") + 1,
        "{pic}"
    );

    // An admin may change the room too; a member made admin can.
    let (status, _) = s
        .patch(
            &format!("/v1/rooms/{n}/members/carol"),
            &alice,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, by_admin) = s
        .patch(
            &format!("/v1/rooms/{n}"),
            &carol,
            json!({"name": "Carol's lounge", "visibility": "private"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{by_admin}");
    assert_eq!(by_admin["visibility"], "private");
    // Now private: dave, an outsider, no longer sees it.
    assert_error(
        &s.get(&format!("/v1/rooms/{n}"), &dave).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    let (_, public) = s.get("/v1/rooms/public", &dave).await;
    assert!(!numbers(&public).contains(&n), "{public}");
}

#[tokio::test]
async fn only_the_owner_deletes_and_the_room_disappears() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let dave = s.user(&app, "dave").await;
    let (status, room) = s.post("/v1/rooms", &alice, json!({"kind": "group", "name": "Doomed", "visibility": "public", "alias": "doomed", "members": ["bob", "carol"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    let n = room["number"].as_i64().expect("number");
    let keep = s.group(&alice, "public", &["bob"]).await;
    s.send(&bob, n, "soon gone").await;
    s.send(&bob, keep, "stays").await;
    let (status, _) = s
        .patch(
            &format!("/v1/rooms/{n}/members/carol"),
            &alice,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    assert_error(
        &s.delete(&format!("/v1/rooms/{n}"), &bob).await,
        StatusCode::FORBIDDEN,
        "not_allowed",
    );
    assert_error(
        &s.delete(&format!("/v1/rooms/{n}"), &carol).await,
        StatusCode::FORBIDDEN,
        "not_allowed",
    );
    assert_error(
        &s.delete(&format!("/v1/rooms/{n}"), &dave).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    let (status, still) = s.get(&format!("/v1/rooms/{n}"), &bob).await;
    assert_eq!(status, StatusCode::OK, "{still}");

    let (_, events_before) = s.get("/v1/events?limit=1000", &app.secret).await;
    let after = events_before["next_after"].as_i64().expect("offset");

    let (status, body) = s.delete(&format!("/v1/rooms/{n}"), &alice).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    for who in [&alice, &bob, &carol, &dave] {
        assert_error(
            &s.get(&format!("/v1/rooms/{n}"), who).await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
        assert_error(
            &s.get(&format!("/v1/rooms/{n}/messages"), who).await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
        assert_error(
            &s.post(
                &format!("/v1/rooms/{n}/messages"),
                who,
                json!({"text": "hello?"}),
            )
            .await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
        assert_error(
            &s.post(&format!("/v1/rooms/{n}/join"), who, json!({})).await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
        let (_, mine) = s.get("/v1/rooms", who).await;
        assert!(!numbers(&mine).contains(&n), "{mine}");
    }
    assert_error(
        &s.get("/v1/rooms/alias/doomed", &bob).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{n}/changes"), &bob).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.get(&format!("/v1/rooms/{n}/members"), &bob).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &s.delete(&format!("/v1/rooms/{n}"), &alice).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    let (_, public) = s.get("/v1/rooms/public", &dave).await;
    assert_eq!(numbers(&public), vec![keep]);
    let (_, bobs) = s.get("/v1/rooms", &bob).await;
    assert_eq!(numbers(&bobs), vec![keep]);

    let (_, app_view) = s.get("/v1/app", &app.secret).await;
    assert_eq!(app_view["rooms_count"], 1, "{app_view}");
    assert_eq!(app_view["messages_count"], 1, "{app_view}");

    // The log keeps the room's history and records the deletion.
    let (status, events) = s
        .get(&format!("/v1/events?after={after}"), &app.secret)
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let deleted: Vec<&Value> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "room_deleted")
        .collect();
    assert_eq!(deleted.len(), 1, "{events}");
    assert_eq!(deleted[0]["room"], n);
    assert_eq!(deleted[0]["data"]["by"], "alice");
    let (_, all) = s.get("/v1/events?limit=1000", &app.secret).await;
    assert!(all.to_string().contains("soon gone"), "{all}");

    // The alias is free again, and numbers are never reused.
    let (status, again) = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "group", "alias": "doomed"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["number"], keep + 1);
}
