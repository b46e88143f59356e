//! The members list: filtered by state, with read markers.

use super::{act, ids, member, members};
use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::json;

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
