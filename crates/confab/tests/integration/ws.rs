//! The WebSocket gateway with real clients (tokio-tungstenite) against the real server:
//! delivery in order to every member, membership following, gapless resume, slow consumers,
//! presence, typing, read markers, limits and refusals.

use crate::common::Server;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod delivery;
mod nodes;
mod protocol;
mod refusals;
mod resume;

/// Generous: waiting for something that should come, never a timing assertion.
const WAIT: Duration = Duration::from_secs(30);

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) struct Client {
    ws: Ws,
}

fn ws_url(s: &Server) -> String {
    format!("{}/v1/ws", s.base.replacen("http", "ws", 1))
}

async fn connect(s: &Server) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(ws_url(s))
        .await
        .expect("websocket connects");
    Client { ws }
}

/// Connects, authenticates (with an optional resume map) and returns the `ready` frame.
pub(crate) async fn login(s: &Server, token: &str, resume: Option<Value>) -> (Client, Value) {
    let mut c = connect(s).await;
    let mut auth = json!({"type": "auth", "token": token});
    if let Some(r) = resume {
        auth["resume"] = r;
    }
    c.send(auth).await;
    let ready = c.next().await;
    assert_eq!(ready["type"], "ready", "{ready}");
    (c, ready)
}

/// What ended a connection, as the client saw it.
#[derive(Debug)]
pub(crate) enum Ended {
    Closed(Option<u16>),
    Error,
}

impl Client {
    pub(crate) async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("frame sent");
    }

    /// The next JSON frame; panics if the connection ends or nothing comes.
    async fn next(&mut self) -> Value {
        match self.next_or_end().await {
            Ok(v) => v,
            Err(e) => panic!("connection ended: {e:?}"),
        }
    }

    pub(crate) async fn next_or_end(&mut self) -> Result<Value, Ended> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Ok(serde_json::from_str(t.as_str()).expect("JSON frame"));
                }
                Some(Ok(Message::Close(f))) => {
                    return Err(Ended::Closed(f.map(|f| u16::from(f.code))));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) => return Err(Ended::Error),
                None => return Err(Ended::Closed(None)),
            }
        }
    }

    /// The next frame of type `ty`, skipping presence, typing and read notices (and, when
    /// waiting for an answer, changes).
    pub(crate) async fn next_of(&mut self, ty: &str) -> Value {
        let mut skip = vec!["presence", "presence_list", "typing", "read"];
        if ty == "ack" || ty == "error" || ty == "pong" {
            skip.push("change");
        }
        loop {
            let f = self.next().await;
            if f["type"] == ty {
                return f;
            }
            assert!(
                skip.contains(&f["type"].as_str().unwrap_or("")),
                "expected {ty}, got {f}"
            );
        }
    }

    /// The next `n` change frames, which must all be of `room`.
    pub(crate) async fn changes(&mut self, room: i64, n: usize) -> Vec<Value> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let f = self.next_of("change").await;
            assert_eq!(f["room"], room, "{f}");
            out.push(f);
        }
        out
    }

    /// Closes the connection as a client leaving does, and waits for the server's answer:
    /// by then the server's session has ended.
    pub(crate) async fn close(mut self) -> Ended {
        self.ws.close(None).await.expect("close sent");
        self.ended().await
    }

    /// Waits for the connection to end (reading and dropping whatever still comes).
    async fn ended(&mut self) -> Ended {
        loop {
            match self.next_or_end().await {
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    }
}

/// Alice and Bob (user tokens) in a private room of a new app, and the room's number.
pub(crate) async fn alice_and_bob(s: &Server) -> (String, String, i64) {
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let room = s.group(&alice, "private", &["bob"]).await;
    (alice, bob, room)
}

/// Sends `n` messages into `room` in the background, each answered 201.
fn sender(
    s: &Server,
    token: &str,
    room: i64,
    n: usize,
    label: usize,
) -> tokio::task::JoinHandle<()> {
    let (base, token) = (s.base.clone(), token.to_owned());
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        for i in 0..n {
            let r = client
                .post(format!("{base}/v1/rooms/{room}/messages"))
                .bearer_auth(&token)
                .json(&json!({"text": format!("{label}-{i}")}))
                .send()
                .await
                .expect("sent");
            assert_eq!(r.status(), StatusCode::CREATED);
        }
    })
}

/// Every change of a room after `since`, from `/changes`.
pub(crate) async fn store_changes(s: &Server, token: &str, room: i64, since: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut since = since;
    loop {
        let (status, page) = s
            .get(
                &format!("/v1/rooms/{room}/changes?since={since}&limit=1000"),
                token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        out.extend(page["changes"].as_array().cloned().unwrap_or_default());
        since = page["next_since"].as_i64().expect("next_since");
        if page["has_more"] != true {
            return out;
        }
    }
}

/// The received frames are exactly the store's changes: same content, in order, no gap.
pub(crate) fn assert_same(received: &[Value], store: &[Value]) {
    assert_eq!(received.len(), store.len(), "count");
    for (r, s) in received.iter().zip(store) {
        assert_eq!(r["pos"], s["pos"]);
        assert_eq!(&r["change"], s, "the frame carries what /changes returns");
    }
}

pub(crate) fn pos(f: &Value) -> i64 {
    f["pos"].as_i64().expect("pos")
}

pub(crate) fn room_pos(ready: &Value, room: i64) -> i64 {
    ready["rooms"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["room"] == room))
        .and_then(|r| r["pos"].as_i64())
        .expect("room in ready")
}

/// PostgreSQL and NATS for the cluster tests (the second pass of `scripts/test`), if set.
pub(crate) fn cluster_services(test: &str) -> Option<(String, String)> {
    match (
        crate::common::postgres_server(),
        std::env::var("CONFAB_TEST_NATS"),
    ) {
        (Some(pg), Ok(nats)) => Some((pg, nats)),
        _ => {
            eprintln!(
                "{test}: needs PostgreSQL and NATS (CONFAB_TEST_DATABASE_URL and \
                 CONFAB_TEST_NATS); run by scripts/test's second pass"
            );
            None
        }
    }
}

/// Three nodes on a new database of `pg` and on `nats`, under subjects of their own.
pub(crate) async fn cluster(pg: &str, nats: &str) -> (crate::common::PgDatabase, Vec<Server>) {
    cluster_of(pg, nats, 3, |_| {}).await
}

/// `n` nodes on a new database of `pg` and on `nats`, under one subject prefix of their own;
/// `tweak` adjusts every node's configuration.
pub(crate) async fn cluster_of(
    pg: &str,
    nats: &str,
    n: usize,
    tweak: impl Fn(&mut confab::config::Config),
) -> (crate::common::PgDatabase, Vec<Server>) {
    let db = crate::common::PgDatabase::create(pg);
    let prefix = format!("cluster{}", crate::common::unique_token());
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(
            Server::start_with(|c| {
                c.database = db.url();
                c.nats = nats.to_owned();
                c.nats_prefix = prefix.clone();
                c.admin_key = "ck_admin_cluster_test_0123456789".into();
                tweak(c);
            })
            .await,
        );
    }
    (db, nodes)
}
