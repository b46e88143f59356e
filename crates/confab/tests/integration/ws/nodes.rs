//! Three nodes on PostgreSQL and NATS, as a cluster runs: delivery, kicks, typing and read
//! markers across nodes.

use super::{
    Client, assert_same, cluster, cluster_services, login, pos, room_pos, sender, store_changes,
};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

/// Three nodes on one PostgreSQL database and one NATS, as a cluster runs: senders on two
/// nodes into one room, a subscriber on each of the three. Every subscriber receives every
/// change, in order, with no gap and no duplicate, whichever node committed it; seqs are
/// 1..n; and a subscriber that reconnects to another node resumes exactly where it left.
#[tokio::test]
async fn ws_three_nodes_deliver_every_change_to_every_subscriber_in_order() {
    let Some((pg, nats)) = cluster_services("ws_three_nodes...") else {
        return;
    };
    let (_db, nodes) = cluster(&pg, &nats).await;
    let app = nodes[0].app("cluster").await;
    let alice = nodes[0].user(&app, "alice").await;
    let bob = nodes[1].user(&app, "bob").await;
    let carol = nodes[2].user(&app, "carol").await;
    let room = nodes[1].group(&alice, "private", &["bob", "carol"]).await;
    let (mut a, ready) = login(&nodes[0], &alice, None).await;
    let start = room_pos(&ready, room);
    let (mut b, _) = login(&nodes[1], &bob, None).await;
    let (mut c, _) = login(&nodes[2], &carol, None).await;
    let senders = [
        sender(&nodes[0], &alice, room, 25, 0),
        sender(&nodes[1], &bob, room, 25, 1),
    ];
    for s in senders {
        s.await.expect("sender");
    }
    let store = store_changes(&nodes[2], &carol, room, start).await;
    assert_eq!(store.len(), 50);
    let seqs: Vec<i64> = store
        .iter()
        .filter_map(|ch| ch["item"]["seq"].as_i64())
        .collect();
    let first = seqs[0];
    assert_eq!(
        seqs,
        (first..first + 50).collect::<Vec<_>>(),
        "gapless seqs"
    );
    for client in [&mut a, &mut b] {
        let got = client.changes(room, 50).await;
        assert_same(&got, &store);
    }
    // Carol reads half, leaves node C, more is sent, and she resumes on node A.
    let half = c.changes(room, 25).await;
    assert_same(&half, &store[..25]);
    let last = pos(half.last().expect("a change"));
    drop(c);
    sender(&nodes[1], &bob, room, 10, 2).await.expect("sender");
    let rest = store_changes(&nodes[0], &alice, room, last).await;
    assert_eq!(rest.len(), 35);
    let (mut c, _) = login(&nodes[0], &carol, Some(json!({ room.to_string(): last }))).await;
    let got = c.changes(room, 35).await;
    assert_same(&got, &rest);
}

/// A kick on node A while node B sends into the room: the kicked user, connected to node C,
/// receives what came before the kick, the kick, and nothing of that room after it.
#[tokio::test]
async fn ws_a_kick_on_one_node_stops_delivery_on_every_node() {
    let Some((pg, nats)) = cluster_services("ws_a_kick_on_one_node...") else {
        return;
    };
    let (_db, nodes) = cluster(&pg, &nats).await;
    let app = nodes[0].app("kick").await;
    let alice = nodes[0].user(&app, "alice").await;
    let bob = nodes[0].user(&app, "bob").await;
    let carol = nodes[0].user(&app, "carol").await;
    let room = nodes[0].group(&alice, "private", &["bob", "carol"]).await;
    let other = nodes[0].group(&alice, "private", &["bob"]).await;
    let (mut b, _) = login(&nodes[2], &bob, None).await;
    let burst = sender(&nodes[1], &carol, room, 30, 0);
    let (st, body) = nodes[0]
        .post(
            &format!("/v1/rooms/{room}/members/bob/kick"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    burst.await.expect("sender");
    nodes[1].send(&carol, room, "after the kick").await;
    nodes[0].send(&alice, other, "marker").await;
    let (mut kicked, mut marker, mut last) = (false, false, 0);
    while !(kicked && marker) {
        let f = b.next_of("change").await;
        if f["room"] == other {
            assert_eq!(f["change"]["item"]["text"], "marker");
            marker = true;
            continue;
        }
        assert_eq!(f["room"], room);
        assert!(!kicked, "a change of the room after the kick: {f}");
        assert!(pos(&f) > last, "in order");
        last = pos(&f);
        kicked = f["change"]["data"]["action"] == "kicked";
    }
    // One more marker, then nothing of the room may have come in between.
    nodes[1].send(&alice, other, "second marker").await;
    let f = b.next_of("change").await;
    assert_eq!(f["room"], other, "nothing of the room after the kick: {f}");
    assert_eq!(f["change"]["item"]["text"], "second marker");
}

/// `from` types in `room` until `to` (on another node) gets the notice, at most 20 times.
async fn typing_crosses(from: &mut Client, to: &mut Client, user: &str, room: i64) {
    for _ in 0..20 {
        from.send(json!({"type": "typing", "room": room})).await;
        if typing_from(to, user).await {
            return;
        }
    }
    panic!("{user}'s typing never reached the other node");
}

/// Waits up to a second for `c`'s next typing notice from `user`, or says there was none.
async fn typing_from(c: &mut Client, user: &str) -> bool {
    let wait = async {
        loop {
            let f = c.next_of("typing").await;
            if f["user"] == user {
                return f;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(1), wait)
        .await
        .is_ok()
}

#[tokio::test]
async fn ws_typing_and_read_markers_reach_members_on_other_nodes() {
    let Some((pg, nats)) = cluster_services("ws_typing_and_read_markers_reach_members...") else {
        return;
    };
    let (_db, nodes) = cluster(&pg, &nats).await;
    let app = nodes[0].app("typing").await;
    let alice = nodes[0].user(&app, "alice").await;
    let bob = nodes[0].user(&app, "bob").await;
    let room = nodes[0].group(&alice, "private", &["bob"]).await;
    let (mut a, _) = login(&nodes[0], &alice, None).await;
    let (mut b, _) = login(&nodes[1], &bob, None).await;
    // A message sent through the third node reaches both: each node follows the room.
    let item = nodes[2].send(&alice, room, "hello").await;
    for c in [&mut a, &mut b] {
        loop {
            let f = c.next_of("change").await;
            if f["change"]["item"]["text"] == "hello" {
                break;
            }
        }
    }
    // Typing is ephemeral (never stored, so never caught up): a client repeats it while the
    // user types, and so does this test until the notice crosses, within a bound.
    typing_crosses(&mut b, &mut a, "bob", room).await;
    typing_crosses(&mut a, &mut b, "alice", room).await;
    b.send(json!({"type": "read", "room": room, "seq": item["seq"], "ref": "r"}))
        .await;
    assert_eq!(b.next_of("ack").await["read_seq"], item["seq"]);
    let f = a.next_of("read").await;
    assert_eq!(
        (f["room"].clone(), f["user"].clone(), f["seq"].clone()),
        (json!(room), json!("bob"), item["seq"].clone())
    );
}
