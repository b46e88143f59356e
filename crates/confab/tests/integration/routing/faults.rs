//! Routing under faults: the writer node stops, NATS stops. Sends keep succeeding (they run
//! locally when they cannot reach the writer), and routing resumes once it can.

use super::{app_on, assert_gapless, nodes};
use crate::bus::OwnNats;
use crate::common::Server;
use crate::nodes::timeline;
use crate::ws::cluster_services;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// Sends `text` through `node` with a client_id as a real client does: an answer of 503 (the
/// fate unknown: the writer may have it) is retried with the same client_id until the send
/// is acknowledged (201, or 200 for a retry the writer had already taken). Returns the seq.
async fn send_until_acknowledged(node: &Server, token: &str, room: i64, text: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = json!({ "text": text, "client_id": text });
        let (status, item) = node
            .post(&format!("/v1/rooms/{room}/messages"), token, body)
            .await;
        match status {
            StatusCode::CREATED | StatusCode::OK => {
                assert_eq!(item["text"], text);
                return item["seq"].as_i64().expect("seq");
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(
                    Instant::now() < deadline,
                    "{text} never acknowledged: {item}"
                );
            }
            other => panic!("{text}: {other} {item}"),
        }
    }
}

/// Polls `done` until it holds, for up to `within`.
async fn until(within: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The writer node stops: the other node's sends keep being answered 201 (running locally
/// while the writer's lease lasts), and once the lease has expired that node is the writer:
/// its sends neither go anywhere nor fall back any more.
#[tokio::test]
async fn routing_the_writer_stops_and_the_other_node_carries_on_then_takes_the_lease() {
    let Some((pg, nats)) = cluster_services("routing_the_writer_stops...") else {
        return;
    };
    let (_db, mut nodes) = nodes(&pg, &nats, 2, |c| c.write_lease_ms = 1_000).await;
    let (_app, tokens, room) = app_on(&nodes[0], &["alice", "bob"]).await;
    let b0 = nodes[1].routing();
    nodes[1].send(&tokens[1], room, "before").await;
    assert_eq!(
        nodes[1].routing().forwarded,
        b0.forwarded + 1,
        "forwarded to A"
    );

    nodes[0].stop().await;
    let b = &nodes[1];
    let stopped = b.routing();
    let mut n = 0;
    // Until B takes the lease, its sends fall back; each is still 201.
    until(
        Duration::from_secs(20),
        "B becomes the writer",
        async || {
            let before = b.routing();
            n += 1;
            b.send(&tokens[1], room, &format!("after {n}")).await;
            let after = b.routing();
            assert_eq!(
                after.forwarded, before.forwarded,
                "A is gone: nothing forwarded"
            );
            after.fallbacks == before.fallbacks
        },
    )
    .await;
    let writer = b.routing();
    for i in 0..5 {
        b.send(&tokens[1], room, &format!("as writer {i}")).await;
    }
    assert_eq!(b.routing(), writer, "B runs its sends as the writer");
    assert!(
        writer.fallbacks > stopped.fallbacks,
        "B fell back while A's lease lasted: {stopped:?} -> {writer:?}"
    );
    let items = timeline(b, &tokens[0], room).await;
    assert_gapless(&items);
    assert_eq!(
        items.values().filter(|t| t.starts_with("after ")).count(),
        n,
        "every send after the stop, once"
    );
}

/// The nodes' NATS stops: sends on the node that forwarded keep being acknowledged, run
/// locally (the writer serves nothing meanwhile); once NATS is back they go to the writer
/// again.
#[tokio::test]
async fn routing_nats_stopped_sends_run_locally_and_routing_resumes_after() {
    let Some((pg, _)) = cluster_services("routing_nats_stopped...") else {
        return;
    };
    let Some(mut nats) = OwnNats::start() else {
        return;
    };
    let url = format!("nats://127.0.0.1:{}", nats.port);
    let (_db, nodes) = nodes(&pg, &url, 2, |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (_app, tokens, room) = app_on(a, &["alice", "bob"]).await;
    send_until_acknowledged(b, &tokens[1], room, "before").await;
    assert!(
        b.routing().forwarded >= 1,
        "forwarded to A while NATS is up"
    );

    nats.stop();
    let served = a.routing().served;
    let mut sent = vec!["before".to_owned()];
    for i in 0..20 {
        let text = format!("during-{i}");
        send_until_acknowledged(b, &tokens[1], room, &text).await;
        sent.push(text);
    }
    assert_eq!(a.routing().served, served, "A served nothing without NATS");

    nats.restart();
    let forwarded = b.routing().forwarded;
    let mut i = 0;
    until(
        Duration::from_secs(20),
        "B forwards to A again",
        async || {
            i += 1;
            let text = format!("after-{i}");
            send_until_acknowledged(b, &tokens[1], room, &text).await;
            sent.push(text);
            b.routing().forwarded > forwarded
        },
    )
    .await;

    let items = timeline(a, &tokens[0], room).await;
    assert_gapless(&items);
    for text in &sent {
        let copies = items.values().filter(|t| *t == text).count();
        assert_eq!(copies, 1, "{text} once");
    }
}
