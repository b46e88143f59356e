//! Message search over HTTP: the matching rules, consistency with writes, paging, and the
//! refusals (nobody finds messages of a room they may not read).

use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn enc(q: &str) -> String {
    let mut out = String::new();
    for b in q.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn search(s: &Server, token: &str, room: Option<i64>, q: &str) -> Value {
    let path = match room {
        Some(r) => format!("/v1/rooms/{r}/search?q={}", enc(q)),
        None => format!("/v1/search?q={}", enc(q)),
    };
    let (status, body) = s.get(&path, token).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

fn texts(page: &Value) -> Vec<String> {
    page["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["text"].as_str().expect("text").to_owned())
        .collect()
}

#[tokio::test]
async fn partial_case_insensitive_unicode_matches() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    for t in [
        "Hello",
        "wassup!!!!",
        "Grüße aus München",
        "ok",
        "hello world, hello",
    ] {
        s.send(&alice, room, t).await;
    }
    let cases: &[(&str, &[&str])] = &[
        ("ello", &["hello world, hello", "Hello"]),
        ("wass", &["wassup!!!!"]),
        ("ünch", &["Grüße aus München"]),
        ("MÜNCHEN", &["Grüße aus München"]),
        ("ÜßE", &["Grüße aus München"]),
        ("o", &["hello world, hello", "ok", "Hello"]),
        ("!!", &["wassup!!!!"]),
        ("hello wor", &["hello world, hello"]),
        ("ok hello", &[]),
        ("xyzzy", &[]),
    ];
    for (q, want) in cases {
        assert_eq!(
            texts(&search(&s, &alice, Some(room), q).await),
            *want,
            "room search {q:?}"
        );
        assert_eq!(
            texts(&search(&s, &alice, None, q).await),
            *want,
            "global search {q:?}"
        );
    }
    // Each hit names its room, seq, sender and time, and the matched character ranges.
    let page = search(&s, &alice, None, "hello").await;
    let hit = &page["hits"][0];
    assert_eq!(hit["room"], room);
    assert_eq!(hit["sender"], "alice");
    assert!(hit["seq"].as_i64().expect("valid") > 1);
    assert!(hit["created_at"].as_str().expect("valid").ends_with('Z'));
    assert_eq!(
        hit["spans"],
        json!([{"start": 0, "end": 5}, {"start": 13, "end": 18}])
    );
    let page = search(&s, &alice, None, "ünch").await;
    assert_eq!(page["hits"][0]["spans"], json!([{"start": 11, "end": 15}]));
    assert!(page.get("next_cursor").is_none());
}

#[tokio::test]
async fn search_follows_sends_edits_and_deletes_at_once() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    for i in 0..20 {
        // Each message is searchable as soon as its send is acknowledged.
        let text = format!("fresh note {i}");
        let item = s.send(&alice, room, &text).await;
        let found = search(&s, &alice, Some(room), &format!("note {i}")).await;
        assert_eq!(found["hits"][0]["text"], text.as_str());
        assert_eq!(found["hits"][0]["seq"], item["seq"]);
    }
    let item = s.send(&alice, room, "the original words").await;
    let seq = item["seq"].as_i64().expect("valid");
    let (status, _) = s
        .patch(
            &format!("/v1/rooms/{room}/messages/{seq}"),
            &alice,
            json!({"text": "replacement text"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(texts(&search(&s, &alice, None, "original").await).is_empty());
    assert_eq!(
        texts(&search(&s, &alice, None, "placem").await),
        ["replacement text"]
    );
    let (status, _) = s
        .delete(&format!("/v1/rooms/{room}/messages/{seq}"), &alice)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(texts(&search(&s, &alice, None, "placem").await).is_empty());
    // A rebuild of the projections rebuilds the index too.
    s.store()
        .rebuild(std::sync::Arc::new(|_, _| {}))
        .await
        .expect("rebuild");
    assert_eq!(
        search(&s, &alice, None, "fresh").await["hits"]
            .as_array()
            .expect("valid")
            .len(),
        20
    );
    assert!(texts(&search(&s, &alice, None, "placem").await).is_empty());
}

#[tokio::test]
async fn nobody_finds_what_they_may_not_read() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let public = s.group(&alice, "public", &["bob"]).await;
    let private = s.group(&alice, "private", &[]).await;
    s.send(&alice, public, "secret plans in public").await;
    s.send(&alice, private, "secret plans in private").await;
    // Another app with the same room numbers and words.
    let other = s.app("b").await;
    let mallory = s.user(&other, "mallory").await;
    let theirs = s.group(&mallory, "public", &[]).await;
    assert_eq!(theirs, public);
    s.send(&mallory, theirs, "secret plans elsewhere").await;

    assert_eq!(texts(&search(&s, &alice, None, "secret").await).len(), 2);
    assert_eq!(
        texts(&search(&s, &bob, None, "secret").await),
        ["secret plans in public"]
    );
    assert!(texts(&search(&s, &carol, None, "secret").await).is_empty());
    assert_eq!(
        texts(&search(&s, &mallory, None, "secret").await),
        ["secret plans elsewhere"]
    );

    let got = s
        .get(&format!("/v1/rooms/{public}/search?q=secret"), &carol)
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "not_a_member");
    let got = s
        .get(&format!("/v1/rooms/{private}/search?q=secret"), &bob)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "room_not_found");
    let got = s.get("/v1/rooms/99/search?q=secret", &alice).await;
    assert_error(&got, StatusCode::NOT_FOUND, "room_not_found");
    let got = s.get("/v1/search?q=secret", &app.secret).await;
    assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{}", got.1);
    let got = s
        .call(reqwest::Method::GET, "/v1/search?q=secret", None, None)
        .await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized");

    // Leaving a room takes it out of bob's search at once; a deleted room is gone for all.
    let (status, _) = s
        .post(&format!("/v1/rooms/{public}/leave"), &bob, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(texts(&search(&s, &bob, None, "secret").await).is_empty());
    let (status, _) = s.delete(&format!("/v1/rooms/{private}"), &alice).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        texts(&search(&s, &alice, None, "secret").await),
        ["secret plans in public"]
    );
}

#[tokio::test]
async fn bad_queries_are_refused() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    let long = "a".repeat(201);
    for (path, status, code) in [
        (
            "/v1/search".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_search",
        ),
        (
            "/v1/search?q=".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_search",
        ),
        (
            "/v1/search?q=%20".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_search",
        ),
        // Nine terms: too long, as the README says (it used to be 422 here).
        (
            "/v1/search?q=a+b+c+d+e+f+g+h+i".to_owned(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "query_too_long",
        ),
        (
            format!("/v1/search?q={long}"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "query_too_long",
        ),
        (
            "/v1/search?q=a&limit=0".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_limit",
        ),
        (
            "/v1/search?q=a&limit=101".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_limit",
        ),
        (
            "/v1/search?q=a&cursor=zzz".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            "/v1/search?q=a&sort=old".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("/v1/rooms/{room}/search"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_search",
        ),
    ] {
        let got = s.get(&path, &alice).await;
        assert_error(&got, status, code);
    }
    // A cursor from another listing is refused too.
    s.send(&alice, room, "one").await;
    s.send(&alice, room, "two").await;
    let (_, page) = s
        .get(&format!("/v1/rooms/{room}/messages?limit=1"), &alice)
        .await;
    let foreign = page["prev_cursor"].as_str().expect("cursor").to_owned();
    let got = s
        .get(&format!("/v1/search?q=o&cursor={foreign}"), &alice)
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_cursor");
}

#[tokio::test]
async fn pages_run_newest_first_across_rooms_without_repeats() {
    let s = Server::start().await;
    let app = s.app("a").await;
    let alice = s.user(&app, "alice").await;
    let rooms = [
        s.group(&alice, "private", &[]).await,
        s.group(&alice, "private", &[]).await,
        s.group(&alice, "private", &[]).await,
    ];
    let mut sent: Vec<(String, i64, i64, String)> = Vec::new();
    for i in 0..40 {
        let room = rooms[(i * 5) % 3];
        let text = format!("needle {i}");
        let item = s.send(&alice, room, &text).await;
        s.send(&alice, room, "hay").await;
        sent.push((
            item["created_at"].as_str().expect("valid").to_owned(),
            room,
            item["seq"].as_i64().expect("valid"),
            text,
        ));
    }
    sent.sort_by(|a, b| b.cmp(a));
    let mut got: Vec<(i64, i64, String)> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/search?q=needle&limit=7&cursor={c}"),
            None => "/v1/search?q=needle&limit=7".to_owned(),
        };
        let (status, page) = s.get(&path, &alice).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for h in page["hits"].as_array().expect("valid") {
            got.push((
                h["room"].as_i64().expect("valid"),
                h["seq"].as_i64().expect("valid"),
                h["text"].as_str().expect("valid").to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let want: Vec<(i64, i64, String)> = sent.into_iter().map(|(_, r, q, t)| (r, q, t)).collect();
    assert_eq!(got, want);
}
