//! Each app's writes routed to one node (issue 11): nodes in this process on one PostgreSQL
//! database and one NATS, under subjects of their own. Run in the second pass of
//! `scripts/test`; the first pass says it skips them.

mod faults;
mod hostile;
mod recall;

use crate::common::{Server, TestApp};
use crate::nodes::timeline;
use crate::ws::{cluster_of as nodes, cluster_services};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Asserts that a room's items, as seq → text, are numbered 1..n.
pub(crate) fn assert_gapless(items: &BTreeMap<i64, String>) {
    let seqs: Vec<i64> = items.keys().copied().collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "seqs 1..n"
    );
}

/// An app with `users` made through `writer`, which thereby holds the app's write lease (the
/// users' upserts are the app's first writes), and a public room of all of them owned by the
/// first. Returns the app, the users' tokens and the room.
pub(crate) async fn app_on(writer: &Server, users: &[&str]) -> (TestApp, Vec<String>, i64) {
    let app = writer.app("routing").await;
    let mut tokens = Vec::new();
    for u in users {
        tokens.push(writer.user(&app, u).await);
    }
    let room = writer.group(&tokens[0], "public", &users[1..]).await;
    (app, tokens, room)
}

fn message(text: &str, client_id: Option<&str>) -> Value {
    match client_id {
        Some(id) => json!({ "text": text, "client_id": id }),
        None => json!({ "text": text }),
    }
}

/// The keys of a JSON object, for comparing shapes.
fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Sends through node B of an app whose writer is node A run on A, and B's answers are those
/// a node answers for the commands it runs itself: successes with the same shape and status,
/// refusals with the same status and body, an idempotent retry with the same item.
#[tokio::test]
async fn routing_sends_through_another_node_run_on_the_writer_with_the_same_answers() {
    let Some((pg, nats)) = cluster_services("routing_sends_through_another_node...") else {
        return;
    };
    let (_db, nodes) = nodes(&pg, &nats, 2, |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (app, tokens, room) = app_on(a, &["alice", "bob"]).await;
    let (alice, carol) = (&tokens[0], &a.user(&app, "carol").await);
    let path = format!("/v1/rooms/{room}/messages");
    let (a0, b0) = (a.routing(), b.routing());

    // A first send, then its retry with the same client_id, on each node.
    let on_a = a.post(&path, alice, message("hi", Some("a-1"))).await;
    let on_b = b.post(&path, alice, message("hi", Some("b-1"))).await;
    assert_eq!(on_a.0, StatusCode::CREATED, "{}", on_a.1);
    assert_eq!(on_b.0, on_a.0, "{}", on_b.1);
    assert_eq!(keys(&on_b.1), keys(&on_a.1));
    assert_eq!(on_b.1["text"], "hi");
    assert_eq!(on_b.1["seq"], on_a.1["seq"].as_i64().expect("seq") + 1);
    let retry_a = a.post(&path, alice, message("hi", Some("a-1"))).await;
    let retry_b = b.post(&path, alice, message("hi", Some("b-1"))).await;
    assert_eq!(retry_b.0, retry_a.0, "{}", retry_b.1);
    assert_eq!(retry_a.1, on_a.1, "a retry returns the same item");
    assert_eq!(retry_b.1, on_b.1, "a forwarded retry returns the same item");

    // Refusals: the rules' (run on the writer) and the input checks' (run before routing).
    let nowhere = format!("/v1/rooms/{}/messages", room + 100);
    let refusals = [
        (
            carol,
            path.as_str(),
            message("let me in", None),
            StatusCode::FORBIDDEN,
            "not_a_member",
        ),
        (
            alice,
            path.as_str(),
            message("   ", None),
            StatusCode::UNPROCESSABLE_ENTITY,
            "text_empty",
        ),
        (
            alice,
            path.as_str(),
            message("other text", Some("b-1")),
            StatusCode::CONFLICT,
            "client_id_reused",
        ),
        (
            alice,
            path.as_str(),
            json!({"text": "re", "reply_to": 999}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reply_target_not_found",
        ),
        (
            alice,
            nowhere.as_str(),
            message("lost", None),
            StatusCode::NOT_FOUND,
            "room_not_found",
        ),
    ];
    for (token, path, body, status, code) in refusals {
        let on_a = a.post(path, token, body.clone()).await;
        let on_b = b.post(path, token, body).await;
        crate::common::assert_error(&on_b, status, code);
        assert_eq!(on_b, on_a, "{code}: the same refusal through either node");
    }

    // Other writes go the same way: an edit through B.
    let seq = on_b.1["seq"].as_i64().expect("seq");
    let (status, body) = b
        .patch(&format!("{path}/{seq}"), alice, json!({"text": "hello"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["text"], "hello");
    let items = timeline(a, alice, room).await;
    assert_eq!(items.get(&seq).map(String::as_str), Some("hello"));

    let (a1, b1) = (a.routing(), b.routing());
    // B's forwarded commands: its send, its retry, four refusals by the rules, the edit.
    assert!(
        b1.forwarded >= b0.forwarded + 7,
        "B forwarded: {b0:?} -> {b1:?}"
    );
    assert!(a1.served >= a0.served + 7, "A served: {a0:?} -> {a1:?}");
    assert_eq!(b1.fallbacks, b0.fallbacks, "nothing fell back");
    assert_eq!(a1.forwarded, a0.forwarded, "A ran its own commands");
}

/// Many senders on both nodes into one room at once: the seqs are 1..n and every message is
/// there once, and the other node's sends were forwarded to the writer.
#[tokio::test]
async fn routing_concurrent_senders_on_two_nodes_keep_one_gapless_room() {
    let Some((pg, nats)) = cluster_services("routing_concurrent_senders...") else {
        return;
    };
    let (_db, nodes) = nodes(&pg, &nats, 2, |_| {}).await;
    let users = ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"];
    let (_app, tokens, room) = app_on(&nodes[0], &users).await;
    let b0 = nodes[1].routing();
    let per_sender = 40;
    let mut tasks = Vec::new();
    for (k, token) in tokens.iter().enumerate() {
        let (base, client) = (nodes[k % 2].base.clone(), nodes[k % 2].client.clone());
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_sender {
                let resp = client
                    .post(format!("{base}/v1/rooms/{room}/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"text": format!("m {k} {i}"), "client_id": format!("{k}-{i}")}))
                    .send()
                    .await
                    .expect("answered");
                assert_eq!(resp.status(), StatusCode::CREATED, "{k} {i}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("every send acknowledged");
    }
    let items = timeline(&nodes[1], &tokens[0], room).await;
    assert_gapless(&items);
    let sent: Vec<&String> = items.values().filter(|t| t.starts_with("m ")).collect();
    let distinct: BTreeSet<&String> = sent.iter().copied().collect();
    assert_eq!(sent.len(), users.len() * per_sender, "every message");
    assert_eq!(distinct.len(), sent.len(), "each once");
    let b1 = nodes[1].routing();
    assert!(
        b1.forwarded >= b0.forwarded + (users.len() / 2 * per_sender) as u64,
        "B's sends went to the writer: {b0:?} -> {b1:?}"
    );
}

/// Sends spread evenly over sixteen rooms: no room is hot on the node they arrive at, so that
/// node writes them itself instead of handing them to the writer (and says so in its
/// counters), while a room that takes most of the sends there is handed over. Every room
/// keeps its seqs 1..n either way.
#[tokio::test]
async fn routing_sends_spread_over_many_rooms_are_written_where_they_arrive() {
    let Some((pg, nats)) = cluster_services("routing_sends_spread_over_many_rooms...") else {
        return;
    };
    let (_db, nodes) = nodes(&pg, &nats, 2, |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (_app, tokens, first) = app_on(a, &["owner", "bob"]).await;
    let mut rooms = vec![first];
    for _ in 1..16 {
        rooms.push(a.group(&tokens[0], "public", &["bob"]).await);
    }
    let send = async |room: i64, text: String| {
        let (status, item) = b
            .post(
                &format!("/v1/rooms/{room}/messages"),
                &tokens[1],
                message(&text, None),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{item}");
    };
    let b0 = b.routing();
    for round in 0..10 {
        for room in &rooms {
            send(*room, format!("spread {round}")).await;
        }
    }
    let b1 = b.routing();
    let (cold, forwarded) = (b1.cold - b0.cold, b1.forwarded - b0.forwarded);
    assert_eq!(
        cold + forwarded,
        160,
        "every send either way: {b0:?} -> {b1:?}"
    );
    assert!(
        cold >= 140,
        "thinly spread sends are written on B: {b0:?} -> {b1:?}"
    );
    // Now one room takes every send: it turns hot and goes to the writer.
    // It has 10 of the 160 commands remembered: from its 12th send on, one in eight.
    for i in 0..60 {
        send(rooms[3], format!("busy {i}")).await;
    }
    let b2 = b.routing();
    assert!(
        b2.forwarded - b1.forwarded >= 45,
        "the busy room's sends went to the writer: {b1:?} -> {b2:?}"
    );
    for room in &rooms {
        let items = timeline(a, &tokens[0], *room).await;
        assert_gapless(&items);
        let spread = items.values().filter(|t| t.starts_with("spread ")).count();
        assert_eq!(spread, 10, "room {room}");
    }
}
