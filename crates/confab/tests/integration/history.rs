//! History paging (latest, cursors, before / after / around / from..to, limits, refusals), the
//! per-room change feed, and the app's event log.

use crate::common::{Server, TestApp, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn seqs(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
        .iter()
        .map(|i| i["seq"].as_i64().expect("seq"))
        .collect()
}

/// Sends `n` messages into `room` from `senders`, `tasks` requests at a time; returns nothing,
/// the history is what is checked.
async fn fill(s: &Server, senders: &[String], room: i64, n: usize, tasks: usize) {
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let client = s.client.clone();
        let url = format!("{}/v1/rooms/{room}/messages", s.base);
        let senders = senders.to_vec();
        set.spawn(async move {
            let mut i = t;
            while i < n {
                let token = &senders[i % senders.len()];
                let resp = client
                    .post(&url)
                    .bearer_auth(token)
                    .json(&json!({ "text": format!("message {i}") }))
                    .send()
                    .await
                    .expect("request sent");
                assert_eq!(resp.status(), StatusCode::CREATED);
                i += tasks;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("sender task");
    }
}

/// A room holding one announcement (seq 1) and 300 messages (seqs 2..=301).
async fn big_room() -> (Server, String, i64) {
    let s = Server::start().await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "public", &[]).await;
    fill(&s, std::slice::from_ref(&alice), room, 300, 8).await;
    let (status, details) = s.get(&format!("/v1/rooms/{room}"), &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(details["last_seq"], 301, "{details}");
    assert_eq!(details["messages_count"], 300, "{details}");
    (s, alice, room)
}

async fn page(s: &Server, token: &str, room: i64, query: &str) -> Value {
    let (status, body) = s
        .get(&format!("/v1/rooms/{room}/messages{query}"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body
}

#[tokio::test]
async fn walking_back_from_the_latest_page_yields_every_seq_once() {
    let (s, alice, room) = big_room().await;
    let latest = page(&s, &alice, room, "").await;
    assert_eq!(seqs(&latest), (252..=301).collect::<Vec<_>>());
    assert!(latest["prev_cursor"].is_string(), "{latest}");
    assert_eq!(latest["next_cursor"], Value::Null);

    let mut all: Vec<i64> = Vec::new();
    let mut current = latest;
    let mut pages = 0;
    loop {
        pages += 1;
        let got = seqs(&current);
        assert!(!got.is_empty() && got.len() <= 50, "{current}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "ascending: {got:?}");
        if let Some(first) = all.first() {
            assert!(got.last().is_some_and(|l| l < first), "older than before");
        }
        let mut older = got;
        older.extend(all);
        all = older;
        match current["prev_cursor"].as_str() {
            Some(c) => {
                let c = c.to_owned();
                current = page(&s, &alice, room, &format!("?cursor={c}")).await;
                assert!(current["next_cursor"].is_string(), "{current}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 7);
    assert_eq!(all, (1..=301).collect::<Vec<_>>());
    assert_eq!(
        current["items"][0]["kind"], "announcement",
        "seq 1: the room was made"
    );
}

#[tokio::test]
async fn walking_forward_from_the_start_yields_every_seq_and_text_once() {
    let (s, alice, room) = big_room().await;
    let mut current = page(&s, &alice, room, "?after=0&limit=64").await;
    assert_eq!(current["prev_cursor"], Value::Null, "the start: {current}");
    let mut all: Vec<i64> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    loop {
        let got = seqs(&current);
        assert!(!got.is_empty() && got.len() <= 64, "{current}");
        all.extend(got);
        for i in current["items"].as_array().expect("items") {
            if i["kind"] == "message" {
                texts.push(i["text"].as_str().expect("text").to_owned());
            }
        }
        match current["next_cursor"].as_str() {
            Some(c) => {
                let c = c.to_owned();
                current = page(&s, &alice, room, &format!("?cursor={c}&limit=64")).await;
                assert!(current["prev_cursor"].is_string(), "{current}");
            }
            None => break,
        }
    }
    assert_eq!(all, (1..=301).collect::<Vec<_>>());
    texts.sort();
    let mut want: Vec<String> = (0..300).map(|i| format!("message {i}")).collect();
    want.sort();
    assert_eq!(texts, want);
}

#[tokio::test]
async fn before_after_around_and_ranges_select_the_right_seqs() {
    let (s, alice, room) = big_room().await;

    let p = page(&s, &alice, room, "?before=100&limit=10").await;
    assert_eq!(seqs(&p), (90..=99).collect::<Vec<_>>());
    assert!(
        p["prev_cursor"].is_string() && p["next_cursor"].is_string(),
        "{p}"
    );

    let p = page(&s, &alice, room, "?before=5").await;
    assert_eq!(seqs(&p), vec![1, 2, 3, 4]);
    assert_eq!(p["prev_cursor"], Value::Null);
    assert!(p["next_cursor"].is_string());

    let p = page(&s, &alice, room, "?after=100&limit=10").await;
    assert_eq!(seqs(&p), (101..=110).collect::<Vec<_>>());
    assert!(
        p["prev_cursor"].is_string() && p["next_cursor"].is_string(),
        "{p}"
    );

    let p = page(&s, &alice, room, "?after=295").await;
    assert_eq!(seqs(&p), (296..=301).collect::<Vec<_>>());
    assert_eq!(p["next_cursor"], Value::Null);

    let p = page(&s, &alice, room, "?after=301").await;
    assert_eq!(seqs(&p), Vec::<i64>::new());
    assert_eq!(p["next_cursor"], Value::Null);
    let p = page(&s, &alice, room, &format!("?after={}", i64::MAX)).await;
    assert_eq!(seqs(&p), Vec::<i64>::new());

    let p = page(&s, &alice, room, "?around=150&limit=10").await;
    let got = seqs(&p);
    assert_eq!(got.len(), 10, "{p}");
    assert!(
        got.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous: {got:?}"
    );
    assert!(got.contains(&150), "{got:?}");
    assert!(got[0] < 150 && got[9] > 150, "on both sides: {got:?}");
    assert!(
        p["prev_cursor"].is_string() && p["next_cursor"].is_string(),
        "{p}"
    );

    let p = page(&s, &alice, room, "?around=1&limit=10").await;
    assert_eq!(seqs(&p), (1..=10).collect::<Vec<_>>());
    assert_eq!(p["prev_cursor"], Value::Null);

    let p = page(&s, &alice, room, "?from=10&to=20").await;
    assert_eq!(seqs(&p), (10..=20).collect::<Vec<_>>(), "inclusive");
    assert!(
        p["prev_cursor"].is_string() && p["next_cursor"].is_string(),
        "{p}"
    );
    let p = page(&s, &alice, room, "?from=1&to=1").await;
    assert_eq!(seqs(&p), vec![1]);
    assert_eq!(p["prev_cursor"], Value::Null);
    let p = page(&s, &alice, room, "?from=290&to=400").await;
    assert_eq!(seqs(&p), (290..=301).collect::<Vec<_>>());
    assert_eq!(p["next_cursor"], Value::Null);
    // A range wider than the limit is cut at the limit, and continues by cursor.
    let p = page(&s, &alice, room, "?from=1&to=301&limit=100").await;
    assert_eq!(seqs(&p), (1..=100).collect::<Vec<_>>());
    let c = p["next_cursor"].as_str().expect("more").to_owned();
    let p = page(&s, &alice, room, &format!("?cursor={c}&limit=100")).await;
    assert_eq!(seqs(&p), (101..=200).collect::<Vec<_>>());
}

#[tokio::test]
async fn limits_and_bad_queries_are_refused() {
    let (s, alice, room) = big_room().await;
    let p = page(&s, &alice, room, "?limit=200").await;
    assert_eq!(seqs(&p), (102..=301).collect::<Vec<_>>());
    let p = page(&s, &alice, room, "?limit=1").await;
    assert_eq!(seqs(&p), vec![301]);

    let base = format!("/v1/rooms/{room}/messages");
    for bad in ["?limit=201", "?limit=0", "?limit=-1"] {
        let got = s.get(&format!("{base}{bad}"), &alice).await;
        assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", got.1);
        assert!(got.1["error"]["code"].is_string());
    }
    for bad in ["?cursor=nonsense", "?cursor=!!!", "?cursor=cm9vbXMKMQoy"] {
        let got = s.get(&format!("{base}{bad}"), &alice).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_cursor");
    }
    // A cursor of another list (the room list's) is not a history cursor.
    let (_, rooms) = s.get("/v1/rooms?limit=1", &alice).await;
    if let Some(c) = rooms["next_cursor"].as_str() {
        let got = s.get(&format!("{base}?cursor={c}"), &alice).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_cursor");
    }
    for mixed in [
        "?before=10&after=5",
        "?before=10&around=5",
        "?after=10&from=1&to=20",
    ] {
        let got = s.get(&format!("{base}{mixed}"), &alice).await;
        assert_eq!(got.0, StatusCode::BAD_REQUEST, "{mixed}: {}", got.1);
        assert!(got.1["error"]["code"].is_string());
    }
    let c = p["prev_cursor"].as_str().expect("cursor").to_owned();
    let got = s.get(&format!("{base}?cursor={c}&before=10"), &alice).await;
    assert_eq!(got.0, StatusCode::BAD_REQUEST, "{}", got.1);
    let got = s.get(&format!("{base}?before=abc"), &alice).await;
    assert_eq!(got.0, StatusCode::BAD_REQUEST, "{}", got.1);
    let got = s.get(&format!("{base}?sort=desc"), &alice).await;
    assert_eq!(got.0, StatusCode::BAD_REQUEST, "{}", got.1);
}

/// Every change of a room, read in pages of `limit` by following `next_since`.
async fn all_changes(s: &Server, token: &str, room: i64, since: i64, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut since = since;
    loop {
        let (status, body) = s
            .get(
                &format!("/v1/rooms/{room}/changes?since={since}&limit={limit}"),
                token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let changes = body["changes"].as_array().expect("changes").clone();
        assert!(changes.len() <= limit, "{body}");
        let next = body["next_since"].as_i64().expect("next_since");
        match changes.last() {
            Some(c) => assert_eq!(c["pos"].as_i64(), Some(next)),
            None => assert_eq!(next, since),
        }
        out.extend(changes);
        if body["has_more"] != true {
            break;
        }
        since = next;
    }
    out
}

#[tokio::test]
async fn changes_since_a_position_are_exactly_what_happened_after_it() {
    let s = Server::start().await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let dave = s.user(&app, "dave").await;
    let room = s.group(&alice, "public", &["bob"]).await;
    let path = format!("/v1/rooms/{room}");

    let m1 = s.send(&alice, room, "one").await;
    let m2 = s.send(&bob, room, "two").await;
    let (_, mid) = s.get(&path, &alice).await;
    let p = mid["last_pos"].as_i64().expect("last_pos");

    let (status, _) = s.post(&format!("{path}/join"), &carol, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.post(&format!("{path}/join"), &dave, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let reply = s
        .post(
            &format!("{path}/messages"),
            &carol,
            json!({ "text": "three", "reply_to": m1["seq"] }),
        )
        .await;
    assert_eq!(reply.0, StatusCode::CREATED);
    let (status, edited) = s
        .patch(
            &format!("{path}/messages/{}", m2["seq"]),
            &bob,
            json!({ "text": "two (edited)" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .delete(&format!("{path}/messages/{}", m1["seq"]), &alice)
        .await;
    assert_eq!(status, StatusCode::OK);
    // A read marker is not a change of the room.
    let (status, _) = s
        .put(&format!("{path}/read"), &bob, json!({ "seq": m2["seq"] }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.post(&format!("{path}/leave"), &carol, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .post(&format!("{path}/members/dave/kick"), &alice, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.patch(&path, &alice, json!({ "name": "renamed" })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .patch(
            &format!("{path}/members/bob"),
            &alice,
            json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let last = s.send(&bob, room, "four").await;

    let (_, end) = s.get(&path, &alice).await;
    let last_pos = end["last_pos"].as_i64().expect("last_pos");
    assert_eq!(last["pos"].as_i64(), Some(last_pos));

    // Everything from the start: gapless positions 1..=last_pos.
    let all = all_changes(&s, &bob, room, 0, 1000).await;
    let positions: Vec<i64> = all
        .iter()
        .map(|c| c["pos"].as_i64().expect("pos"))
        .collect();
    assert_eq!(positions, (1..=last_pos).collect::<Vec<_>>());
    let types: BTreeSet<&str> = all.iter().filter_map(|c| c["type"].as_str()).collect();
    for t in [
        "room_created",
        "membership",
        "message_posted",
        "message_edited",
        "message_deleted",
        "room_updated",
    ] {
        assert!(types.contains(t), "{t} missing from {types:?}");
    }

    // Since P: exactly the changes after it, in order.
    let after_p = all_changes(&s, &bob, room, p, 1000).await;
    assert_eq!(after_p.as_slice(), &all[p as usize..]);
    let kinds: Vec<(String, Value)> = after_p
        .iter()
        .map(|c| {
            let t = c["type"].as_str().unwrap_or_default().to_owned();
            let what = match t.as_str() {
                "membership" => json!([c["data"]["user"], c["data"]["action"]]),
                "room_updated" => c["data"]["name"].clone(),
                _ => c["item"]["seq"].clone(),
            };
            (t, what)
        })
        .collect();
    let want: Vec<(String, Value)> = vec![
        ("membership".into(), json!(["carol", "joined"])),
        ("membership".into(), json!(["dave", "joined"])),
        ("message_posted".into(), reply.1["seq"].clone()),
        ("message_edited".into(), m2["seq"].clone()),
        ("message_deleted".into(), m1["seq"].clone()),
        ("membership".into(), json!(["carol", "left"])),
        ("membership".into(), json!(["dave", "kicked"])),
        ("room_updated".into(), json!("renamed")),
        ("membership".into(), json!(["bob", "role_changed"])),
        ("message_posted".into(), last["seq"].clone()),
    ];
    assert_eq!(kinds, want);
    // The rename carries its announcement as the item.
    assert_eq!(after_p[7]["item"]["kind"], "announcement");
    // Items carry their current state; the item's pos is that of its last change.
    let edit = &after_p[3];
    assert_eq!(edit["item"]["text"], "two (edited)");
    assert_eq!(edit["item"]["pos"], edit["pos"]);
    assert_eq!(edit["item"], edited);
    let deletion = &after_p[4];
    assert_eq!(deletion["item"]["deleted"], true);
    assert_eq!(deletion["item"]["text"], Value::Null);
    assert_eq!(deletion["item"]["pos"], deletion["pos"]);

    // Paged in small steps via next_since: nothing missed, nothing repeated.
    for limit in [1, 2, 3, 7] {
        assert_eq!(
            all_changes(&s, &bob, room, 0, limit).await,
            all,
            "limit {limit}"
        );
        assert_eq!(
            all_changes(&s, &bob, room, p, limit).await,
            after_p,
            "limit {limit}"
        );
    }

    // At the end: nothing, and next_since stays.
    let (status, body) = s
        .get(&format!("{path}/changes?since={last_pos}"), &bob)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["changes"], json!([]));
    assert_eq!(body["next_since"], last_pos);
    assert_eq!(body["has_more"], false);

    // New changes appear after the old end.
    let more = s.send(&alice, room, "five").await;
    let tail = all_changes(&s, &bob, room, last_pos, 10).await;
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0]["pos"].as_i64(), Some(last_pos + 1));
    assert_eq!(tail[0]["item"], more);

    // Bad parameters.
    let got = s.get(&format!("{path}/changes?since=-1"), &bob).await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    let got = s.get(&format!("{path}/changes?limit=0"), &bob).await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
}

/// Reads the app's event log from `after` in pages of `limit` until it has no more; returns the
/// events and the last offset.
async fn drain_events(s: &Server, app: &TestApp, after: i64, limit: usize) -> (Vec<Value>, i64) {
    let mut out = Vec::new();
    let mut after = after;
    loop {
        let (status, body) = s
            .get(
                &format!("/v1/events?after={after}&limit={limit}"),
                &app.secret,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let events = body["events"].as_array().expect("events").clone();
        assert!(events.len() <= limit);
        let next = body["next_after"].as_i64().expect("next_after");
        match events.last() {
            Some(e) => assert_eq!(e["offset"].as_i64(), Some(next)),
            None => assert_eq!(next, after),
        }
        out.extend(events);
        after = next;
        if body["has_more"] != true {
            return (out, after);
        }
    }
}

fn offsets(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e["offset"].as_i64().expect("offset"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_event_log_read_in_small_pages_never_misses_or_repeats() {
    let s = Server::start().await;
    let app = s.app("demo").await;
    let other = s.app("other").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    s.user(&other, "mallory").await;
    let room = s.group(&alice, "public", &["bob"]).await;

    // A consumer reads while writers write.
    let writers = {
        let senders = [alice.clone(), bob.clone()];
        let client = s.client.clone();
        let base = s.base.clone();
        tokio::spawn(async move {
            let mut set = tokio::task::JoinSet::new();
            for t in 0..4 {
                let client = client.clone();
                let url = format!("{base}/v1/rooms/{room}/messages");
                let token = senders[t % 2].clone();
                set.spawn(async move {
                    for i in 0..30 {
                        let resp = client
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&json!({ "text": format!("w{t} m{i}") }))
                            .send()
                            .await
                            .expect("sent");
                        assert_eq!(resp.status(), StatusCode::CREATED);
                    }
                });
            }
            while let Some(r) = set.join_next().await {
                r.expect("writer");
            }
        })
    };
    let mut seen: Vec<Value> = Vec::new();
    let mut after = 0;
    while !writers.is_finished() {
        let (got, next) = drain_events(&s, &app, after, 3).await;
        seen.extend(got);
        after = next;
    }
    writers.await.expect("writers");
    let (got, next) = drain_events(&s, &app, after, 3).await;
    seen.extend(got);
    after = next;

    // More writes after the consumer caught up, then read on.
    let late = s.send(&alice, room, "late").await;
    let (status, _) = s
        .put(
            &format!("/v1/rooms/{room}/read"),
            &bob,
            json!({ "seq": late["seq"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (got, _) = drain_events(&s, &app, after, 5).await;
    assert!(!got.is_empty());
    seen.extend(got);

    let got = offsets(&seen);
    let n = got.len() as i64;
    assert_eq!(got, (1..=n).collect::<Vec<_>>(), "gapless, no repeats");

    // One big read agrees with what the small pages saw.
    let (status, full) = s.get("/v1/events?after=0&limit=1000", &app.secret).await;
    assert_eq!(status, StatusCode::OK);
    let full = full["events"].as_array().expect("events").clone();
    assert!(full.len() >= seen.len());
    assert_eq!(&full[..seen.len()], seen.as_slice());

    // Every message appears once in the log.
    let posted: Vec<String> = seen
        .iter()
        .filter(|e| e["type"] == "message_posted")
        .filter_map(|e| e["data"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(posted.len(), 121, "{posted:?}");
    let unique: BTreeSet<&String> = posted.iter().collect();
    assert_eq!(unique.len(), 121);
    assert!(
        seen.iter()
            .all(|e| e["room"].is_null() || e["room"] == room)
    );
    assert!(seen.iter().any(|e| e["type"] == "read_marker_set"));

    // The other app's log is its own, numbered from 1, without this app's events.
    let (theirs, _) = drain_events(&s, &other, 0, 2).await;
    let o = offsets(&theirs);
    assert_eq!(o, (1..=o.len() as i64).collect::<Vec<_>>());
    assert!(theirs.iter().all(|e| e["type"] != "message_posted"));

    // Past the end: nothing, and next_after stays.
    let end = *got.last().expect("events");
    let big = end + 1000;
    let (status, body) = s.get(&format!("/v1/events?after={big}"), &app.secret).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["events"], json!([]));
    assert_eq!(body["next_after"], big);
    // Users cannot read the log; bad offsets are refused.
    let (status, _) = s.get("/v1/events", &alice).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let got = s.get("/v1/events?after=-1", &app.secret).await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
}
