//! Rooms: direct and group creation, aliases, my rooms and the public rooms with paging, room
//! details, updates and deletion.

use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;

fn numbers(list: &Value) -> Vec<i64> {
    list["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .map(|r| r["number"].as_i64().expect("number"))
        .collect()
}

/// All items of a room's timeline (fits in one page in these tests).
async fn timeline(s: &Server, token: &str, room: i64) -> Vec<Value> {
    let (status, page) = s
        .get(&format!("/v1/rooms/{room}/messages?limit=200"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().expect("items").clone()
}

/// Walks a paged room list with `limit` per page; returns the numbers in order.
async fn walk(s: &Server, token: &str, path: &str, limit: usize) -> Vec<i64> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let (status, page) = s.get(&url, token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let got = numbers(&page);
        assert!(got.len() <= limit, "{page}");
        out.extend(got);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("paging did not end");
}

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

#[tokio::test]
async fn my_rooms_come_newest_activity_first_with_unread_counts() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;

    let r1 = s.group(&alice, "public", &["bob"]).await;
    let r2 = s.group(&bob, "private", &["alice"]).await;
    let r3 = s.group(&alice, "private", &[]).await;
    let r4 = s.group(&carol, "public", &[]).await; // alice is not in it

    let (status, list) = s.get("/v1/rooms", &alice).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(numbers(&list), vec![r3, r2, r1]);

    s.send(&bob, r1, "first in r1").await;
    s.send(&bob, r2, "one").await;
    s.send(&bob, r2, "two").await;
    s.send(&alice, r2, "mine").await;
    s.send(&carol, r4, "elsewhere").await;
    s.send(&bob, r1, "latest in r1").await;

    let (_, list) = s.get("/v1/rooms", &alice).await;
    assert_eq!(numbers(&list), vec![r1, r2, r3], "{list}");
    let rooms = list["rooms"].as_array().expect("rooms");
    let (first, second, third) = (&rooms[0], &rooms[1], &rooms[2]);
    assert_eq!(first["last_item"]["text"], "latest in r1");
    assert_eq!(first["last_item"]["sender"], "bob");
    assert_eq!(first["unread_count"], 2, "{first}");
    assert_eq!(first["role"], "owner");
    assert_eq!(second["last_item"]["text"], "mine");
    assert_eq!(
        second["unread_count"], 2,
        "my own message is not unread: {second}"
    );
    assert_eq!(second["role"], "member");
    assert_eq!(third["unread_count"], 0);
    assert_eq!(third["last_item"]["kind"], "announcement", "{third}");

    // Reading clears the count; the marker shows in the list.
    let last = first["last_seq"].as_i64().expect("last_seq");
    let (status, marker) = s
        .put(
            &format!("/v1/rooms/{r1}/read"),
            &alice,
            json!({"seq": last}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{marker}");
    let (_, list) = s.get("/v1/rooms", &alice).await;
    let first = &list["rooms"][0];
    assert_eq!(first["number"], r1);
    assert_eq!(first["unread_count"], 0, "{first}");
    assert_eq!(first["read_seq"], last);

    // Bob sees his own view.
    let (_, bobs) = s.get("/v1/rooms", &bob).await;
    assert_eq!(numbers(&bobs), vec![r1, r2]);
    assert_eq!(bobs["rooms"][0]["unread_count"], 0);
    assert_eq!(bobs["rooms"][1]["role"], "owner");
}

#[tokio::test]
async fn my_rooms_page_with_cursors_without_duplicates() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let mut rooms = Vec::new();
    for _ in 0..7 {
        rooms.push(s.group(&alice, "private", &["bob"]).await);
    }
    // Activity puts three rooms ahead of higher-numbered ones. They are bumped in ascending
    // number: activity is a millisecond time, and two sends within one millisecond tie, which
    // the listing breaks by the higher number, so this order holds whatever the clock does.
    for n in [rooms[0], rooms[2], rooms[5]] {
        s.send(&bob, n, "bump").await;
    }
    let (_, all) = s.get("/v1/rooms?limit=200", &alice).await;
    let expected = numbers(&all);
    assert_eq!(expected.len(), 7);
    assert_eq!(&expected[..4], &[rooms[5], rooms[2], rooms[0], rooms[6]]);
    assert!(all["next_cursor"].is_null(), "{all}");

    for limit in [1, 2, 3, 7] {
        let walked = walk(&s, &alice, "/v1/rooms", limit).await;
        assert_eq!(walked, expected, "limit {limit}");
        assert_eq!(walked.iter().collect::<HashSet<_>>().len(), 7);
    }

    // Invitations are listed with state=invited.
    let carol = s.user(&app, "carol").await;
    let (status, _) = s
        .post(
            &format!("/v1/rooms/{}/invites", rooms[1]),
            &alice,
            json!({"user_id": "carol"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, joined) = s.get("/v1/rooms", &carol).await;
    assert_eq!(numbers(&joined), Vec::<i64>::new());
    let (_, invited) = s.get("/v1/rooms?state=invited", &carol).await;
    assert_eq!(numbers(&invited), vec![rooms[1]], "{invited}");
    assert_eq!(invited["rooms"][0]["membership"], "invited");
    assert_error(
        &s.get("/v1/rooms?state=lurking", &carol).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );

    for bad in ["garbage", "!!!", "cHVibGljCjE"] {
        assert_error(
            &s.get(&format!("/v1/rooms?cursor={bad}"), &alice).await,
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        );
    }
    // A cursor from another list is not valid here.
    let (_, public_page) = {
        for _ in 0..2 {
            s.group(&alice, "public", &[]).await;
        }
        s.get("/v1/rooms/public?limit=1", &alice).await
    };
    let foreign = public_page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    assert_error(
        &s.get(&format!("/v1/rooms?cursor={foreign}"), &alice).await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    );
    for bad in ["0", "201", "-1"] {
        assert_error(
            &s.get(&format!("/v1/rooms?limit={bad}"), &alice).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_limit",
        );
    }
    assert_error(
        &s.get("/v1/rooms?limit=many", &alice).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    let (status, _) = s.get("/v1/rooms?limit=200", &alice).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn public_rooms_are_listed_for_every_user_with_paging() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let dave = s.user(&app, "dave").await;
    let mut public = Vec::new();
    for i in 0..5 {
        public.push(s.group(&alice, "public", &[]).await);
        if i % 2 == 0 {
            s.group(&alice, "private", &[]).await;
        }
    }
    let (_, dm) = s
        .post(
            "/v1/rooms",
            &alice,
            json!({"kind": "direct", "with": "dave"}),
        )
        .await;
    assert!(dm["number"].is_i64());

    let (status, list) = s.get("/v1/rooms/public", &dave).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        numbers(&list),
        public,
        "ascending by number, public only: {list}"
    );
    assert!(list["rooms"][0].get("role").is_none(), "{list}");
    assert!(
        list["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .all(|r| r["visibility"] == "public")
    );

    for limit in [1, 2, 4, 5] {
        assert_eq!(
            walk(&s, &dave, "/v1/rooms/public", limit).await,
            public,
            "limit {limit}"
        );
    }

    // A deleted room disappears; a room made public appears.
    let (status, _) = s.delete(&format!("/v1/rooms/{}", public[1]), &alice).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, made_public) = s
        .patch("/v1/rooms/2", &alice, json!({"visibility": "public"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{made_public}");
    let (_, list) = s.get("/v1/rooms/public", &dave).await;
    let mut expected = public.clone();
    expected.remove(1);
    expected.push(2);
    expected.sort();
    assert_eq!(numbers(&list), expected, "{list}");

    assert_error(
        &s.get("/v1/rooms/public?cursor=xyz", &dave).await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    );
    assert_error(
        &s.get("/v1/rooms/public?limit=0", &dave).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_limit",
    );
    assert_error(
        &s.get("/v1/rooms/public?limit=201", &dave).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_limit",
    );
    assert_error(
        &s.get("/v1/rooms/public", &app.secret).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

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

#[tokio::test]
async fn listing_rooms_by_state_leaks_nothing_of_rooms_i_cannot_read() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let dave = s.user(&app, "dave").await;
    let n = s.group(&alice, "private", &["bob"]).await;
    let (status, _) = s
        .post(
            &format!("/v1/rooms/{n}/invites"),
            &alice,
            json!({"user_id": "carol"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .post(&format!("/v1/rooms/{n}/join"), &dave, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .post(
            &format!("/v1/rooms/{n}/members/bob/kick"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    s.send(&alice, n, "top secret").await;

    // Invited and applying users see the room (as they do its details), not its content.
    for (who, state) in [(&carol, "invited"), (&dave, "applied")] {
        let (status, list) = s.get(&format!("/v1/rooms?state={state}"), who).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert!(!list.to_string().contains("top secret"), "{state}: {list}");
        let rooms = list["rooms"].as_array().expect("rooms");
        assert_eq!(rooms.len(), 1, "{list}");
        assert_eq!(rooms[0]["number"], n);
        assert_eq!(rooms[0]["membership"], state);
        assert_eq!(rooms[0]["last_item"], Value::Null, "{list}");
        assert_eq!(rooms[0]["unread_count"], 0, "{list}");
    }
    // Rooms one was removed from are not listed at all.
    for state in ["kicked", "left", "banned", "rejected"] {
        let got = s.get(&format!("/v1/rooms?state={state}"), &bob).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_query");
    }
    let (_, joined) = s.get("/v1/rooms", &bob).await;
    assert_eq!(numbers(&joined), Vec::<i64>::new());
}
