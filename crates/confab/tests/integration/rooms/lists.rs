//! Room lists: my rooms (newest activity first, unread counts, cursors), the public rooms, and
//! listing by state without leaks.

use super::numbers;
use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;

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
