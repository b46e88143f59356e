//! Durability and consistency: many concurrent senders, concurrent idempotent retries, a
//! restart that keeps everything, and a rebuild of every projection that equals the live state.

use crate::common::{Server, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Sends `text` with an optional client id on a task of its own; returns status and body.
fn spawn_send(
    s: &Server,
    token: &str,
    room: i64,
    text: String,
    client_id: Option<&str>,
) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    let client = s.client.clone();
    let url = format!("{}/v1/rooms/{room}/messages", s.base);
    let token = token.to_owned();
    let mut body = json!({ "text": text });
    if let Some(c) = client_id {
        body["client_id"] = json!(c);
    }
    tokio::spawn(async move {
        let resp = client
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = resp.status();
        let body: Value = resp.json().await.expect("json body");
        (status, body)
    })
}

/// The whole timeline of a room, read forwards in pages of 200.
async fn full_history(s: &Server, token: &str, room: i64) -> (StatusCode, Vec<Value>) {
    let mut items = Vec::new();
    let mut query = "after=0&limit=200".to_owned();
    loop {
        let (status, page) = s
            .get(&format!("/v1/rooms/{room}/messages?{query}"), token)
            .await;
        if status != StatusCode::OK {
            return (status, vec![page]);
        }
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("cursor={c}&limit=200"),
            None => return (status, items),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_senders_get_gapless_seqs_and_lose_nothing() {
    let s = Server::start().await;
    let app = s.app("demo").await;
    let mut tokens = Vec::new();
    for i in 0..5 {
        tokens.push(s.user(&app, &format!("user{i}")).await);
    }
    let others: Vec<String> = (1..5).map(|i| format!("user{i}")).collect();
    let others: Vec<&str> = others.iter().map(String::as_str).collect();
    let room = s.group(&tokens[0], "public", &others).await;
    let (_, before) = s.get(&format!("/v1/rooms/{room}"), &tokens[0]).await;
    let base = before["last_seq"].as_i64().expect("last_seq");

    let handles: Vec<_> = (0..200)
        .map(|i| spawn_send(&s, &tokens[i % 5], room, format!("concurrent {i}"), None))
        .collect();
    let mut seqs = Vec::new();
    for h in handles {
        let (status, item) = h.await.expect("sender task");
        assert_eq!(status, StatusCode::CREATED, "{item}");
        seqs.push(item["seq"].as_i64().expect("seq"));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (base + 1..=base + 200).collect::<Vec<_>>());

    let (_, after) = s.get(&format!("/v1/rooms/{room}"), &tokens[3]).await;
    assert_eq!(after["last_seq"], base + 200);
    assert_eq!(after["messages_count"], 200);

    let (status, items) = full_history(&s, &tokens[2], room).await;
    assert_eq!(status, StatusCode::OK);
    let all: Vec<i64> = items
        .iter()
        .map(|i| i["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(all, (1..=base + 200).collect::<Vec<_>>());
    let mut texts: Vec<&str> = items
        .iter()
        .filter(|i| i["kind"] == "message")
        .filter_map(|i| i["text"].as_str())
        .collect();
    texts.sort_unstable();
    let mut want: Vec<String> = (0..200).map(|i| format!("concurrent {i}")).collect();
    want.sort_unstable();
    assert_eq!(texts, want);
    // Each message came from the sender that sent it.
    for i in items.iter().filter(|i| i["kind"] == "message") {
        let n: usize = i["text"]
            .as_str()
            .and_then(|t| t.strip_prefix("concurrent "))
            .and_then(|n| n.parse().ok())
            .expect("our text");
        assert_eq!(i["sender"], format!("user{}", n % 5));
    }
    // The change feed holds every message once, gapless.
    let (status, feed) = s
        .get(
            &format!("/v1/rooms/{room}/changes?since=0&limit=1000"),
            &tokens[1],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let pos: Vec<i64> = feed["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["pos"].as_i64().expect("pos"))
        .collect();
    assert_eq!(
        pos,
        (1..=after["last_pos"].as_i64().expect("last_pos")).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_one_client_id_make_one_message() {
    let s = Server::start().await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let room = s.group(&alice, "public", &["bob"]).await;
    let (_, before) = s.get(&format!("/v1/rooms/{room}"), &alice).await;
    let base = before["last_seq"].as_i64().expect("last_seq");

    let mut handles = Vec::new();
    for _ in 0..20 {
        handles.push(spawn_send(
            &s,
            &alice,
            room,
            "exactly once".into(),
            Some("retry-1"),
        ));
        handles.push(spawn_send(
            &s,
            &bob,
            room,
            "bob once".into(),
            Some("retry-1"),
        ));
    }
    let mut created = BTreeMap::new();
    let mut seq_of = BTreeMap::new();
    for h in handles {
        let (status, item) = h.await.expect("task");
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status}: {item}"
        );
        let sender = item["sender"].as_str().expect("sender").to_owned();
        if status == StatusCode::CREATED {
            *created.entry(sender.clone()).or_insert(0) += 1;
        }
        let seq = item["seq"].as_i64().expect("seq");
        assert_eq!(
            *seq_of.entry(sender).or_insert(seq),
            seq,
            "one seq per sender"
        );
    }
    assert_eq!(created.get("alice"), Some(&1));
    assert_eq!(created.get("bob"), Some(&1));

    let (_, after) = s.get(&format!("/v1/rooms/{room}"), &alice).await;
    assert_eq!(after["last_seq"], base + 2);
    assert_eq!(after["messages_count"], 2);
    let (_, items) = full_history(&s, &bob, room).await;
    let texts: Vec<&str> = items
        .iter()
        .filter(|i| i["kind"] == "message")
        .filter_map(|i| i["text"].as_str())
        .collect();
    assert_eq!(texts.len(), 2);
    assert!(texts.contains(&"exactly once") && texts.contains(&"bob once"));
}

/// Everything a set of users and their app can see through the API, for comparisons. Leaves out
/// `last_seen_at` (written in the background whenever a user shows up) and the event log (which
/// records those sightings).
async fn snapshot(s: &Server, app: &TestApp, users: &[(String, String)], rooms: i64) -> Value {
    let mut out = serde_json::Map::new();
    let (status, me) = s.get("/v1/app", &app.secret).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    out.insert("app".into(), me);
    for (id, token) in users {
        let mut view = serde_json::Map::new();
        let (status, mut profile) = s.get(&format!("/v1/users/{id}"), &app.secret).await;
        assert_eq!(status, StatusCode::OK, "{profile}");
        if let Some(p) = profile.as_object_mut() {
            p.remove("last_seen_at");
        }
        view.insert("profile".into(), profile);
        for state in ["joined", "invited", "applied"] {
            let (status, list) = s
                .get(&format!("/v1/rooms?limit=200&state={state}"), token)
                .await;
            assert_eq!(status, StatusCode::OK, "{list}");
            view.insert(format!("rooms_{state}"), list);
        }
        let (status, public) = s.get("/v1/rooms/public?limit=200", token).await;
        assert_eq!(status, StatusCode::OK, "{public}");
        view.insert("public".into(), public);
        for n in 1..=rooms {
            let room = format!("/v1/rooms/{n}");
            let (st, details) = s.get(&room, token).await;
            let (sm, members) = s.get(&format!("{room}/members?limit=200"), token).await;
            let (sh, history) = full_history(s, token, n).await;
            let (sc, changes) = s
                .get(&format!("{room}/changes?since=0&limit=1000"), token)
                .await;
            for st in [st, sm, sh, sc] {
                assert!(st.as_u16() < 500, "{room}: {st}");
            }
            view.insert(
                format!("room {n}"),
                json!({
                    "details": [st.as_u16(), details],
                    "members": [sm.as_u16(), members],
                    "history": [sh.as_u16(), history],
                    "changes": [sc.as_u16(), changes],
                }),
            );
        }
        out.insert(id.clone(), Value::Object(view));
    }
    Value::Object(out)
}

/// Asserts two snapshots are equal, naming the first part that differs.
fn assert_same(a: &Value, b: &Value) {
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for k in keys {
            if let (Some(x), Some(y)) = (a.get(k), b.get(k))
                && x.is_object()
                && y.is_object()
            {
                assert_same(x, y);
                continue;
            }
            assert_eq!(a.get(k), b.get(k), "differs at {k}");
        }
    } else {
        assert_eq!(a, b);
    }
}

#[tokio::test]
async fn a_restart_keeps_apps_users_tokens_rooms_messages_and_markers() {
    let mut s = Server::start().await;
    let admin_key = s.admin_key.clone();
    let app = s.app("demo").await;
    let mut users = Vec::new();
    for id in ["alice", "bob", "carol"] {
        users.push((id.to_owned(), s.user(&app, id).await));
    }
    let (alice, bob, carol) = (users[0].1.clone(), users[1].1.clone(), users[2].1.clone());
    let public = s.group(&alice, "public", &["bob"]).await;
    let private = s.group(&bob, "private", &["alice", "carol"]).await;
    let (status, direct) = s
        .post(
            "/v1/rooms",
            &alice,
            json!({ "kind": "direct", "with": "carol" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{direct}");
    let direct = direct["number"].as_i64().expect("number");
    let m1 = s.send(&alice, public, "before the restart").await;
    let m2 = s.send(&bob, public, "me too").await;
    s.send(&carol, private, "psst").await;
    s.send(&carol, direct, "hi alice").await;
    let (status, _) = s
        .post(
            &format!("/v1/rooms/{public}/messages"),
            &bob,
            json!({ "text": "a reply", "reply_to": m1["seq"], "client_id": "keep-me" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = s
        .patch(
            &format!("/v1/rooms/{public}/messages/{}", m2["seq"]),
            &bob,
            json!({ "text": "me too!" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .put(
            &format!("/v1/rooms/{public}/read"),
            &alice,
            json!({ "seq": m2["seq"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .post(&format!("/v1/rooms/{public}/join"), &carol, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);

    let before = snapshot(&s, &app, &users, 3).await;
    let (_, apps_before) = s.get("/v1/apps", &admin_key).await;
    let (_, events_before) = s.get("/v1/events?after=0&limit=1000", &app.secret).await;

    s.restart().await;

    // The admin key, the app's secret and every user token still work.
    assert_eq!(s.admin_key, admin_key);
    let (status, apps_after) = s.get("/v1/apps", &admin_key).await;
    assert_eq!(status, StatusCode::OK, "{apps_after}");
    assert_eq!(apps_after, apps_before);
    for (id, token) in &users {
        let (status, me) = s.get("/v1/me", token).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["id"], id.as_str());
    }
    let after = snapshot(&s, &app, &users, 3).await;
    assert_same(&before, &after);
    assert_eq!(after["app"]["messages_count"], 5);

    // The event log kept every event (new sightings may follow it).
    let (_, events_after) = s.get("/v1/events?after=0&limit=1000", &app.secret).await;
    let old = events_before["events"].as_array().expect("events");
    let new = events_after["events"].as_array().expect("events");
    assert_eq!(&new[..old.len()], old.as_slice());

    // The read marker survived, and so did the client id.
    let alices = &after["alice"]["rooms_joined"]["rooms"];
    let row = alices
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["number"] == public)
        .expect("public room listed");
    assert_eq!(row["read_seq"], m2["seq"]);
    let (status, again) = s
        .post(
            &format!("/v1/rooms/{public}/messages"),
            &bob,
            json!({ "text": "a reply", "reply_to": m1["seq"], "client_id": "keep-me" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");

    // Writing goes on where it stopped.
    let (_, details) = s.get(&format!("/v1/rooms/{public}"), &alice).await;
    let next = s.send(&alice, public, "after the restart").await;
    assert_eq!(
        next["seq"].as_i64(),
        details["last_seq"].as_i64().map(|n| n + 1)
    );
    assert_eq!(
        next["pos"].as_i64(),
        details["last_pos"].as_i64().map(|n| n + 1)
    );
    let (status, _) = s
        .post("/v1/apps", &admin_key, json!({ "name": "second" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, fresh) = s
        .post("/v1/users/dave/tokens", &app.secret, json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{fresh}");
    let dave = s.user(&app, "dave").await;
    let room4 = s.group(&dave, "public", &[]).await;
    assert_eq!(room4, 4, "room numbers go on");
}

/// A small deterministic pseudo-random generator (no dependency needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

#[tokio::test]
async fn a_rebuild_equals_the_live_state_after_many_operations() {
    let s = Server::start().await;
    let app = s.app("demo").await;
    let ids = ["ann", "ben", "cat", "dan", "eve", "fay"];
    let mut users = Vec::new();
    for id in ids {
        users.push((id.to_owned(), s.user(&app, id).await));
    }
    let token = |i: usize| users[i].1.clone();

    // Scripted first: every kind of operation at least once.
    let r1 = s.group(&token(0), "public", &["ben", "cat"]).await;
    let r2 = s.group(&token(1), "private", &["ann"]).await;
    let (status, _) = s
        .post(
            "/v1/rooms",
            &token(2),
            json!({ "kind": "direct", "with": "dan" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let m = s.send(&token(0), r1, "first").await;
    s.post(
        &format!("/v1/rooms/{r1}/messages"),
        &token(1),
        json!({ "text": "reply", "reply_to": m["seq"] }),
    )
    .await;
    s.patch(
        &format!("/v1/rooms/{r1}/messages/{}", m["seq"]),
        &token(0),
        json!({ "text": "first!" }),
    )
    .await;
    s.post(&format!("/v1/rooms/{r1}/join"), &token(3), json!({}))
        .await;
    s.post(&format!("/v1/rooms/{r1}/leave"), &token(2), json!({}))
        .await;
    s.post(
        &format!("/v1/rooms/{r1}/members/dan/kick"),
        &token(0),
        json!({}),
    )
    .await;
    s.post(&format!("/v1/rooms/{r2}/join"), &token(4), json!({}))
        .await;
    s.post(
        &format!("/v1/rooms/{r2}/members/eve/approve"),
        &token(1),
        json!({}),
    )
    .await;
    s.post(
        &format!("/v1/rooms/{r2}/invites"),
        &token(1),
        json!({ "user_id": "fay" }),
    )
    .await;
    let m2 = s.send(&token(4), r2, "thanks for having me").await;
    s.delete(&format!("/v1/rooms/{r2}/messages/{}", m2["seq"]), &token(1))
        .await;
    s.put(
        &format!("/v1/rooms/{r1}/read"),
        &token(1),
        json!({ "seq": m["seq"] }),
    )
    .await;
    s.patch(
        &format!("/v1/rooms/{r1}"),
        &token(0),
        json!({ "name": "renamed" }),
    )
    .await;
    let gone = s.group(&token(5), "public", &["ann"]).await;
    s.send(&token(0), gone, "soon gone").await;
    s.delete(&format!("/v1/rooms/{gone}"), &token(5)).await;

    // Then a long pseudo-random run.
    let mut rng = Lcg(0x5eed);
    let mut rooms = gone;
    let mut high: BTreeMap<i64, i64> = BTreeMap::new();
    let mut codes: BTreeMap<u16, usize> = BTreeMap::new();
    for step in 0..800 {
        let u = rng.below(ids.len());
        let t = token(u);
        let room = 1 + rng.below(rooms as usize) as i64;
        let top = *high.get(&room).unwrap_or(&3);
        let seq = 1 + rng.below(top as usize + 2) as i64;
        let other = *rng.pick(&ids);
        let p = format!("/v1/rooms/{room}");
        let (method, path, body) = match rng.below(100) {
            0..=34 => (
                Method::POST,
                format!("{p}/messages"),
                json!({ "text": format!("step {step}") }),
            ),
            35..=42 => (
                Method::POST,
                format!("{p}/messages"),
                json!({ "text": format!("reply {step}"), "reply_to": seq }),
            ),
            43..=46 => (
                Method::POST,
                format!("{p}/messages"),
                json!({ "text": "retried", "client_id": format!("c{}", step % 7) }),
            ),
            47..=52 => (
                Method::PATCH,
                format!("{p}/messages/{seq}"),
                json!({ "text": format!("edit {step}") }),
            ),
            53..=57 => (Method::DELETE, format!("{p}/messages/{seq}"), Value::Null),
            58..=65 => (Method::PUT, format!("{p}/read"), json!({ "seq": seq })),
            66..=71 => (Method::POST, format!("{p}/join"), json!({})),
            72..=75 => (Method::POST, format!("{p}/leave"), json!({})),
            76..=79 => (
                Method::POST,
                format!("{p}/invites"),
                json!({ "user_id": other }),
            ),
            80..=85 => {
                let action = *rng.pick(&["approve", "reject", "kick", "ban", "unban"]);
                (
                    Method::POST,
                    format!("{p}/members/{other}/{action}"),
                    json!({}),
                )
            }
            86..=88 => (
                Method::PATCH,
                format!("{p}/members/{other}"),
                json!({ "role": rng.pick(&["admin", "member"]) }),
            ),
            89..=91 => (
                Method::PATCH,
                p.clone(),
                json!({ "name": format!("room {step}") }),
            ),
            92..=96 => {
                let vis = *rng.pick(&["public", "private"]);
                let a = *rng.pick(&ids);
                let b = *rng.pick(&ids);
                (
                    Method::POST,
                    "/v1/rooms".to_owned(),
                    json!({ "kind": "group", "name": "r", "visibility": vis, "members": [a, b] }),
                )
            }
            97..=98 => (
                Method::POST,
                "/v1/rooms".to_owned(),
                json!({ "kind": "direct", "with": other }),
            ),
            _ => (Method::DELETE, p.clone(), Value::Null),
        };
        let body = (!body.is_null()).then_some(body);
        let (status, answer) = s.call(method, &path, Some(&t), body).await;
        assert!(status.as_u16() < 500, "{path}: {status} {answer}");
        *codes.entry(status.as_u16()).or_insert(0) += 1;
        if let Some(n) = answer["seq"].as_i64() {
            let h = high.entry(room).or_insert(0);
            *h = (*h).max(n);
        }
        if path == "/v1/rooms" && status == StatusCode::CREATED {
            rooms = answer["number"].as_i64().expect("number");
        }
    }
    // The run did real work, not only refusals.
    assert!(codes.get(&201).copied().unwrap_or(0) > 100, "{codes:?}");
    assert!(codes.get(&200).copied().unwrap_or(0) > 50, "{codes:?}");

    let live = snapshot(&s, &app, &users, rooms).await;
    let replayed = s
        .store()
        .rebuild(std::sync::Arc::new(|_, _| {}))
        .await
        .expect("rebuild");
    assert!(replayed > 350, "{replayed} events replayed; {codes:?}");
    let rebuilt = snapshot(&s, &app, &users, rooms).await;
    assert_same(&live, &rebuilt);

    // A second rebuild changes nothing either, and writing goes on gaplessly.
    s.store()
        .rebuild(std::sync::Arc::new(|_, _| {}))
        .await
        .expect("rebuild again");
    assert_same(&live, &snapshot(&s, &app, &users, rooms).await);
    let (_, details) = s.get(&format!("/v1/rooms/{r1}"), &token(0)).await;
    let (status, next) = s
        .post(
            &format!("/v1/rooms/{r1}/messages"),
            &token(0),
            json!({ "text": "after" }),
        )
        .await;
    if status == StatusCode::CREATED {
        assert_eq!(
            next["seq"].as_i64(),
            details["last_seq"].as_i64().map(|n| n + 1)
        );
    }
}
