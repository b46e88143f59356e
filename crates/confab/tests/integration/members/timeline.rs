//! How membership changes show in the timeline and the change feed, and that refused
//! requests show nowhere.

use super::{act, members, room};
use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

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
