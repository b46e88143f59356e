//! Per-user limits in a cluster: each node keeps its own budgets, so with N nodes a user may
//! send N times a node's budget and hold N times a node's connections. These tests pin down the
//! README's statement of it on two nodes sharing one PostgreSQL database; the PostgreSQL pass
//! of `scripts/test` runs them.

use crate::common::{PgDatabase, Server, postgres_server};
use crate::ws::{Client, login};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A burst far above what the refill (one a second) adds while a test runs, so that the counts
/// do not depend on the machine's speed.
const BURST: usize = 50;

/// Two nodes on a new database of `pg`, with a small write budget and two connections per user.
async fn two_nodes(pg: &str) -> (PgDatabase, Server, Server) {
    let db = PgDatabase::create(pg);
    let mut nodes = Vec::new();
    for _ in 0..2 {
        nodes.push(
            Server::start_with(|c| {
                c.database = db.url();
                c.admin_key = "ck_admin_cluster_limits_0123456789".into();
                c.sends_per_second = 1;
                c.sends_burst = BURST as u32;
                c.ws_connections_per_user = 2;
            })
            .await,
        );
    }
    let b = nodes.pop().expect("node b");
    let a = nodes.pop().expect("node a");
    (db, a, b)
}

/// Sends over the socket until the first refusal, which must be `rate_limited`; returns how
/// many were acknowledged.
async fn sends_until_limited(c: &mut Client, room: i64) -> usize {
    for i in 0..BURST * 2 {
        c.send(json!({"type": "send", "room": room, "text": format!("m{i}"), "ref": i}))
            .await;
        let answer = loop {
            let f: Value = c.next_or_end().await.expect("the connection stays open");
            if f["ref"] == i {
                break f;
            }
        };
        if answer["type"] != "ack" {
            assert_eq!(answer["code"], "rate_limited", "{answer}");
            return i;
        }
    }
    panic!("no refusal after {} sends", BURST * 2);
}

/// A user who spent the write budget over a socket on node A still has a whole budget on node
/// B: WebSocket (and REST) sends are counted per node, N × `sends_burst` at once.
#[tokio::test]
async fn cluster_write_budgets_count_per_node() {
    let Some(pg) = postgres_server() else {
        eprintln!("cluster_write_budgets...: needs PostgreSQL (CONFAB_TEST_DATABASE_URL)");
        return;
    };
    let (_db, a, b) = two_nodes(&pg).await;
    let app = a.app("limits").await;
    let alice = a.user(&app, "alice").await;
    let room = a.group(&alice, "private", &[]).await;
    let (mut on_a, _) = login(&a, &alice, None).await;
    let sent_a = sends_until_limited(&mut on_a, room).await;
    let (mut on_b, _) = login(&b, &alice, None).await;
    let sent_b = sends_until_limited(&mut on_b, room).await;
    assert!(sent_a >= BURST, "node A took its burst: {sent_a}");
    assert!(sent_b >= BURST, "node B had a budget of its own: {sent_b}");
}

/// `ws_connections_per_user` holds per node: a user at the limit on node A is refused there
/// (4029) and still connects to node B up to the limit again.
#[tokio::test]
async fn cluster_connections_per_user_count_per_node() {
    let Some(pg) = postgres_server() else {
        eprintln!("cluster_connections_per_user...: needs PostgreSQL (CONFAB_TEST_DATABASE_URL)");
        return;
    };
    let (_db, a, b) = two_nodes(&pg).await;
    let app = a.app("limits").await;
    let alice = a.user(&app, "alice").await;
    let _held = [login(&a, &alice, None).await, login(&a, &alice, None).await];
    let url = format!("{}/v1/ws", a.base.replacen("http", "ws", 1));
    let (mut third, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects");
    let auth = json!({"type": "auth", "token": alice}).to_string();
    third.send(Message::text(auth)).await.expect("sent");
    let (mut refusal, mut code) = (None, None);
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(30), third.next()).await {
        match m {
            Message::Text(t) => refusal = serde_json::from_str::<Value>(t.as_str()).ok(),
            Message::Close(f) => {
                code = f.map(|f| u16::from(f.code));
                break;
            }
            _ => {}
        }
    }
    let refusal = refusal.expect("a refusal frame");
    assert_eq!(refusal["code"], "too_many_connections", "{refusal}");
    assert_eq!(code, Some(4029));
    let _more = [login(&b, &alice, None).await, login(&b, &alice, None).await];
}
