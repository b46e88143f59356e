//! Routing under faults: the writer node stops, the writer dies, NATS stops. Sends keep
//! succeeding (they run locally when they cannot reach the writer), and routing resumes once
//! it can.

use super::hostile::{app_id, lease_to, listen_as};
use super::{app_on, assert_gapless, nodes};
use crate::bus::OwnNats;
use crate::common::Server;
use crate::nodes::timeline;
use crate::ws::cluster_services;
use futures_util::{FutureExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

/// Sends `text` through `node` with a client_id as a real client does: an answer of 503 (the
/// fate unknown: the writer may have it) is retried with the same client_id until the send
/// is acknowledged (201, or 200 for a retry the writer had already taken). Returns the seq
/// and how many 503s came first.
async fn send_until_acknowledged(
    node: &Server,
    token: &str,
    room: i64,
    text: &str,
) -> (i64, usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut unavailable = 0;
    loop {
        let body = json!({ "text": text, "client_id": text });
        let (status, item) = node
            .post(&format!("/v1/rooms/{room}/messages"), token, body)
            .await;
        match status {
            StatusCode::CREATED | StatusCode::OK => {
                assert_eq!(item["text"], text);
                return (item["seq"].as_i64().expect("seq"), unavailable);
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                unavailable += 1;
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

/// The writer node stops: it releases its leases, so the other node, whose sends keep being
/// answered 201, is the writer at once (its first send may still go for the stopped node and
/// run locally), although the stopped node's lease would have lasted ten minutes.
#[tokio::test]
async fn routing_the_writer_stops_and_the_other_node_takes_its_lease_at_once() {
    let Some((pg, nats)) = cluster_services("routing_the_writer_stops...") else {
        return;
    };
    let (_db, mut nodes) = nodes(&pg, &nats, 2, |c| c.write_lease_ms = 600_000).await;
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
        writer.fallbacks <= stopped.fallbacks + 1,
        "B took the lease at its first or second send: {stopped:?} -> {writer:?}"
    );
    let items = timeline(b, &tokens[0], room).await;
    assert_gapless(&items);
    assert_eq!(
        items.values().filter(|t| t.starts_with("after ")).count(),
        n,
        "every send after the stop, once"
    );
}

/// The writer dies (here: a lease held by a node that never serves): the first command for
/// its app finds nobody on its subject and runs locally, and the node then leaves that
/// writer out while its lease lasts, instead of asking NATS for it at every command. A
/// listener that appears on the dead writer's subject meanwhile hears nothing.
#[tokio::test]
async fn routing_a_dead_writer_is_left_out_while_its_lease_lasts() {
    let Some((pg, nats)) = cluster_services("routing_a_dead_writer...") else {
        return;
    };
    let (_db, nodes) = nodes(&pg, &nats, 1, |_| {}).await;
    let node = &nodes[0];
    let app = node.app("routing").await;
    let id = app_id(node, &app).await;
    lease_to(node, id, "ghost").await;
    let start = node.routing();
    let alice = node.user(&app, "alice").await;
    let after_first = node.routing();
    assert_eq!(
        after_first.forwarded, start.forwarded,
        "nobody to forward to"
    );
    assert!(after_first.fallbacks > start.fallbacks, "{after_first:?}");

    let (client, mut listener) = listen_as(node, "ghost").await;
    node.user(&app, "bob").await;
    let room = node.group(&alice, "public", &["bob"]).await;
    for i in 0..5 {
        node.send(&alice, room, &format!("m {i}")).await;
    }
    let end = node.routing();
    assert_eq!(end.forwarded, start.forwarded, "nothing forwarded");
    assert!(
        end.fallbacks >= after_first.fallbacks + 7,
        "each ran locally: {after_first:?} -> {end:?}"
    );
    client.flush().await.expect("flushed");
    assert!(
        listener.next().now_or_never().is_none(),
        "nothing was sent to the dead writer"
    );
    let items = timeline(node, &alice, room).await;
    assert_gapless(&items);
}

/// The nodes' NATS stops for good (longer than a forwarded command waits): sends on the node
/// that forwarded keep being acknowledged, run locally (the writer serves nothing meanwhile);
/// at most one is answered 503 first (one B had sent A as NATS went: it waits for NATS until
/// its time is up, then its fate is unknown). Once NATS is back they go to the writer again.
/// No other send ever sees a 503.
#[tokio::test]
async fn routing_nats_stopped_sends_run_locally_and_routing_resumes_after() {
    let Some((pg, _)) = cluster_services("routing_nats_stopped...") else {
        return;
    };
    let Some(mut nats) = OwnNats::start() else {
        return;
    };
    let url = format!("nats://127.0.0.1:{}", nats.port);
    // A's lease outlasts the outage (a send waiting for NATS may make it long), so that A is
    // still the writer when NATS is back.
    let (_db, nodes) = nodes(&pg, &url, 2, |c| c.write_lease_ms = 120_000).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (_app, tokens, room) = app_on(a, &["alice", "bob"]).await;
    let (_, unavailable) = send_until_acknowledged(b, &tokens[1], room, "before").await;
    assert_eq!(unavailable, 0, "no 503 while NATS is up");
    assert!(
        b.routing().forwarded >= 1,
        "forwarded to A while NATS is up"
    );

    nats.stop();
    let served = a.routing().served;
    let mut sent = vec!["before".to_owned()];
    let mut during = 0;
    for i in 0..20 {
        let text = format!("during-{i}");
        during += send_until_acknowledged(b, &tokens[1], room, &text).await.1;
        sent.push(text);
    }
    assert!(during <= 1, "{during} sends answered 503 during the outage");
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
            let (_, unavailable) = send_until_acknowledged(b, &tokens[1], room, &text).await;
            assert_eq!(unavailable, 0, "{text}: no 503 once NATS is back");
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
