//! Rate limits against the real server: one write budget per user over REST and the socket,
//! per-app and per-address budgets, metered expensive reads, metered WebSocket replays. Every
//! test sets low limits itself (the harness default is very high). Tests never race the
//! refill: they go on until the first refusal, or build a debt far longer than any stall.

use crate::common::{Server, TestApp, assert_error};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Generous: waiting for something that should come, never a timing assertion.
const WAIT: Duration = Duration::from_secs(30);
/// Most requests a loop makes while waiting for the first refusal.
const TRIES: usize = 100;

/// A request answered with its status, `Retry-After` (if any) and JSON body.
async fn call(
    client: &reqwest::Client,
    req: reqwest::RequestBuilder,
) -> (StatusCode, Option<u64>, Value) {
    let req = req.build().expect("request built");
    let resp = client.execute(req).await.expect("request sent");
    let status = resp.status();
    let retry = resp.headers().get(reqwest::header::RETRY_AFTER).map(|v| {
        v.to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in whole seconds")
    });
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}

/// Asserts a 429 with `Retry-After` of at least one second and the error body.
fn assert_limited(got: &(StatusCode, Option<u64>, Value)) {
    assert_error(
        &(got.0, got.2.clone()),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    assert!(got.1.is_some_and(|s| s >= 1), "Retry-After: {:?}", got.1);
}

fn send_req(s: &Server, token: &str, room: i64, text: &str) -> reqwest::RequestBuilder {
    s.client
        .post(format!("{}/v1/rooms/{room}/messages", s.base))
        .bearer_auth(token)
        .json(&json!({ "text": text }))
}

/// Sends over REST until the first refusal; returns the texts accepted and the refusal.
async fn send_until_limited(
    s: &Server,
    token: &str,
    room: i64,
    label: &str,
) -> (Vec<String>, (StatusCode, Option<u64>, Value)) {
    let mut sent = Vec::new();
    for i in 0..TRIES {
        let text = format!("{label}-{i}");
        let got = call(&s.client, send_req(s, token, room, &text)).await;
        if got.0 == StatusCode::CREATED {
            sent.push(text);
        } else {
            return (sent, got);
        }
    }
    panic!("no refusal after {TRIES} sends");
}

/// The texts of the room's messages, oldest first.
async fn texts(s: &Server, token: &str, room: i64) -> Vec<String> {
    let (status, page) = s
        .get(&format!("/v1/rooms/{room}/messages?limit=200"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == "message")
        .filter_map(|i| i["text"].as_str().map(str::to_owned))
        .collect()
}

/// Alice and Bob in a private room of a new app.
async fn pair(s: &Server) -> (TestApp, String, String, i64) {
    let app = s.app("limits").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let room = s.group(&alice, "private", &["bob"]).await;
    (app, alice, bob, room)
}

#[tokio::test]
async fn rest_sends_past_the_budget_are_429_and_store_nothing() {
    let s = Server::start_with(|c| {
        c.sends_per_second = 1;
        c.sends_burst = 3;
    })
    .await;
    let (_, alice, bob, room) = pair(&s).await;
    let (sent, refused) = send_until_limited(&s, &alice, room, "a").await;
    assert_limited(&refused);
    assert!(sent.len() >= 3, "the burst is allowed: {sent:?}");
    // What was refused is nowhere: the room holds exactly the accepted sends.
    assert_eq!(texts(&s, &bob, room).await, sent);
    // Bob has a budget of his own.
    let mine = s.send(&bob, room, "bob's").await;
    // Edits draw from the same kind of budget, and a refused edit changes nothing.
    let seq = mine["seq"].as_i64().expect("seq");
    let mut last = "bob's".to_owned();
    let mut refused = None;
    for i in 0..TRIES {
        let text = format!("edit-{i}");
        let edit = s
            .client
            .patch(format!("{}/v1/rooms/{room}/messages/{seq}", s.base))
            .bearer_auth(&bob)
            .json(&json!({ "text": text }));
        let got = call(&s.client, edit).await;
        if got.0 != StatusCode::OK {
            refused = Some(got);
            break;
        }
        last = text;
    }
    assert_limited(&refused.expect("edits are metered"));
    let (_, item) = s
        .get(&format!("/v1/rooms/{room}/messages/{seq}"), &alice)
        .await;
    assert_eq!(item["text"], last.as_str(), "{item}");
}

/// A WebSocket client that has authenticated.
struct Socket(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl Socket {
    /// Connects and authenticates, with an optional resume map; returns after `ready`.
    async fn login(s: &Server, token: &str, resume: Option<Value>) -> Socket {
        let url = format!("{}/v1/ws", s.base.replacen("http", "ws", 1));
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        let mut socket = Socket(ws);
        let mut auth = json!({"type": "auth", "token": token});
        if let Some(r) = resume {
            auth["resume"] = r;
        }
        socket.send(auth).await;
        let ready = socket.next_skipping_notices().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        socket
    }

    async fn send(&mut self, v: Value) {
        self.0
            .send(Message::text(v.to_string()))
            .await
            .expect("frame sent");
    }

    async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.0.next())
                .await
                .expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(t.as_str()).expect("JSON frame");
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => panic!("connection ended"),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame that is not a presence, typing or read notice.
    async fn next_skipping_notices(&mut self) -> Value {
        loop {
            let f = self.next().await;
            if !["presence", "presence_list", "typing", "read"]
                .contains(&f["type"].as_str().unwrap_or(""))
            {
                return f;
            }
        }
    }

    /// Sends a frame with `ref`, then collects every frame up to the answer with that ref
    /// (an ack, a pong or an error): the frames before it, and the answer.
    async fn ask(&mut self, mut frame: Value, reference: u64) -> (Vec<Value>, Value) {
        frame["ref"] = json!(reference);
        self.send(frame).await;
        let mut before = Vec::new();
        loop {
            let f = self.next_skipping_notices().await;
            if f["ref"] == json!(reference) {
                return (before, f);
            }
            before.push(f);
        }
    }
}

fn assert_ws_limited(answer: &Value) {
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "rate_limited", "{answer}");
    assert_eq!(answer["status"], 429, "{answer}");
    assert!(
        answer["retry_after_ms"].as_u64().is_some_and(|ms| ms >= 1),
        "{answer}"
    );
}

/// Sends over the socket until the first refusal; returns how many were acknowledged.
async fn ws_send_until_limited(socket: &mut Socket, room: i64, label: &str) -> usize {
    for i in 0..TRIES {
        let send = json!({"type": "send", "room": room, "text": format!("{label}-{i}")});
        let (_, answer) = socket.ask(send, i as u64).await;
        if answer["type"] != "ack" {
            assert_ws_limited(&answer);
            return i;
        }
    }
    panic!("no refusal after {TRIES} sends");
}

#[tokio::test]
async fn rest_and_websocket_sends_share_one_budget() {
    // A burst of 50 at one a second: with two budgets, each path would take 50 sends; with
    // one, the second path gets what the first left (25) plus the refill while the test runs.
    let s = Server::start_with(|c| {
        c.sends_per_second = 1;
        c.sends_burst = 50;
    })
    .await;
    let (_, alice, bob, room) = pair(&s).await;
    let mut a = Socket::login(&s, &alice, None).await;
    for i in 0..25 {
        s.send(&alice, room, &format!("rest-{i}")).await;
    }
    let over_ws = ws_send_until_limited(&mut a, room, "ws").await;
    assert!(
        over_ws < 45,
        "the socket had a budget of its own: {over_ws} sends"
    );
    let mut b = Socket::login(&s, &bob, None).await;
    let mut ws_sent = 0;
    for i in 0..25 {
        let send = json!({"type": "send", "room": room, "text": format!("bob-ws-{i}")});
        let (_, answer) = b.ask(send, 1000 + i).await;
        assert_eq!(answer["type"], "ack", "{answer}");
        ws_sent += 1;
    }
    let (over_rest, refused) = send_until_limited(&s, &bob, room, "bob-rest").await;
    assert_limited(&refused);
    assert!(
        over_rest.len() < 45,
        "REST had a budget of its own: {over_rest:?}"
    );
    // Nothing refused was stored, whatever the path.
    let stored = texts(&s, &alice, room).await;
    assert_eq!(stored.len(), 25 + over_ws + ws_sent + over_rest.len());
}

#[tokio::test]
async fn one_app_over_its_budget_does_not_stop_another() {
    let s = Server::start_with(|c| {
        c.app_requests_per_second = 1;
        c.app_requests_burst = 10;
    })
    .await;
    let busy = s.app("busy").await;
    let quiet = s.app("quiet").await;
    let busy_user = s.user(&busy, "u").await;
    let quiet_user = s.user(&quiet, "u").await;
    let mut refused = None;
    for _ in 0..TRIES {
        let req = s
            .client
            .get(format!("{}/v1/me", s.base))
            .bearer_auth(&busy_user);
        let got = call(&s.client, req).await;
        if got.0 != StatusCode::OK {
            refused = Some(got);
            break;
        }
    }
    assert_limited(&refused.expect("the app's users are limited together"));
    // The app's backend shares its users' budget (with a budget of its own it would get ten
    // more; it gets what refills while the test runs)…
    let mut served = 0;
    while s.get("/v1/app", &busy.secret).await.0 == StatusCode::OK {
        served += 1;
        assert!(served < 8, "the backend has a budget of its own");
    }
    // …and another app is served as usual.
    let (status, body) = s.get("/v1/me", &quiet_user).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A client whose requests come from `ip` (any address of 127/8 reaches the server).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(ip.parse().expect("ip")))
        .build()
        .expect("client")
}

#[tokio::test]
async fn anonymous_app_creation_is_limited_per_address() {
    let s = Server::start_with(|c| {
        c.anon_apps_per_hour = 1;
        c.anon_apps_burst = 2;
    })
    .await;
    let create = |client: &reqwest::Client, admin: Option<&str>| {
        let mut req = client
            .post(format!("{}/api/v1/apps", s.base))
            .json(&json!({"name": "anon"}));
        if let Some(key) = admin {
            req = req.bearer_auth(key);
        }
        req
    };
    for _ in 0..2 {
        let got = call(&s.client, create(&s.client, None)).await;
        assert_eq!(got.0, StatusCode::CREATED, "{}", got.2);
    }
    let refused = call(&s.client, create(&s.client, None)).await;
    assert_limited(&refused);
    // One an hour: the wait is far beyond a second.
    assert!(refused.1.is_some_and(|s| s > 60), "{:?}", refused.1);
    let (_, apps) = s.get("/v1/apps", &s.admin_key).await;
    assert_eq!(apps["apps"].as_array().map(Vec::len), Some(2), "{apps}");
    // The operator's key is not metered by address; another address has its own budget.
    let got = call(&s.client, create(&s.client, Some(&s.admin_key))).await;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.2);
    let other = client_from("127.0.0.2");
    let got = call(&other, create(&other, None)).await;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.2);
}

#[tokio::test]
async fn seed_routes_are_metered_per_address() {
    let s = Server::start_with(|c| {
        c.anon_requests_per_second = 1;
        c.anon_requests_burst = 3;
    })
    .await;
    let app = s.app("seed").await;
    let user = s.user(&app, "u").await;
    let get = |client: &reqwest::Client, token: &str| {
        client.get(format!("{}/api/v1/apps/{token}", s.base))
    };
    let mut refused = None;
    for _ in 0..TRIES {
        // Unknown tokens cost the same: guessing is metered too.
        let got = call(&s.client, get(&s.client, "no-such-token")).await;
        if got.0 != StatusCode::NOT_FOUND {
            refused = Some(got);
            break;
        }
    }
    assert_limited(&refused.expect("refused"));
    // Another address, and the credentialed API, are served.
    let other = client_from("127.0.0.3");
    let got = call(&other, get(&other, &app.token)).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.2);
    let (status, body) = s.get("/v1/me", &user).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_short_search_term_costs_more_than_a_long_one() {
    let s = Server::start_with(|c| {
        c.reads_per_second = 1;
        c.reads_burst = 20;
    })
    .await;
    let (_, alice, bob, room) = pair(&s).await;
    s.send(&alice, room, "hello world").await;
    // Fifteen searches for a long term fit in the burst of twenty…
    for _ in 0..15 {
        let (status, body) = s
            .get(&format!("/v1/rooms/{room}/search?q=hello"), &bob)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // …three with a two-letter term do not: each scans and costs ten.
    for _ in 0..2 {
        let (status, body) = s.get("/v1/search?q=lo", &alice).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let req = s
        .client
        .get(format!("{}/v1/search?q=lo", s.base))
        .bearer_auth(&alice);
    assert_limited(&call(&s.client, req).await);
}

#[tokio::test]
async fn history_changes_and_events_are_metered() {
    let s = Server::start_with(|c| {
        c.reads_per_second = 1;
        c.reads_burst = 3;
    })
    .await;
    let (app, alice, bob, room) = pair(&s).await;
    let routes = [
        (format!("/v1/rooms/{room}/messages"), alice.clone()),
        (format!("/v1/rooms/{room}/changes"), bob.clone()),
        ("/v1/events".to_owned(), app.secret.clone()),
    ];
    for (path, credential) in routes {
        let mut refused = None;
        for _ in 0..TRIES {
            let req = s
                .client
                .get(format!("{}{path}", s.base))
                .bearer_auth(&credential);
            let got = call(&s.client, req).await;
            if got.0 != StatusCode::OK {
                refused = Some(got);
                break;
            }
        }
        assert_limited(&refused.unwrap_or_else(|| panic!("{path} is not metered")));
    }
    // Cheap reads are not metered by the reads budget.
    let (status, body) = s.get(&format!("/v1/rooms/{room}"), &alice).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_looping_resume_is_refused_and_replays_nothing() {
    // A replay costs a unit, one per room and one per hundred changes. Thirty rooms cost 31
    // against a burst of 10: the first replay is granted (full bucket) and leaves a debt of
    // about 21 seconds, far longer than this test takes.
    let s = Server::start_with(|c| {
        c.sends_per_second = 1;
        c.sends_burst = 10;
    })
    .await;
    let app = s.app("resume").await;
    let alice = s.user(&app, "alice").await;
    let mut rooms = Vec::new();
    for _ in 0..30 {
        rooms.push(s.group(&alice, "private", &[]).await);
    }
    let from_start: serde_json::Map<String, Value> =
        rooms.iter().map(|r| (r.to_string(), json!(0))).collect();
    let mut a = Socket::login(&s, &alice, None).await;
    let resume = json!({"type": "resume", "rooms": from_start});
    let (replayed, answer) = a.ask(resume.clone(), 1).await;
    assert_eq!(answer["type"], "ack", "{answer}");
    assert!(
        replayed.iter().filter(|f| f["type"] == "change").count() >= 30,
        "the first resume replays every room"
    );
    for i in 0..5 {
        let (replayed, answer) = a.ask(resume.clone(), 10 + i).await;
        assert_ws_limited(&answer);
        assert!(
            replayed.is_empty(),
            "a refused resume replays nothing: {replayed:?}"
        );
    }
    // Sends share the budget: they wait for the debt too.
    let send = json!({"type": "send", "room": rooms[0], "text": "hi"});
    assert_ws_limited(&a.ask(send, 20).await.1);
    // Reconnecting to replay is no way round it: the rooms come as `reset` (page the history
    // over REST), never replayed, never skipped in silence.
    let mut again = Socket::login(&s, &alice, Some(json!(from_start))).await;
    let (frames, pong) = again.ask(json!({"type": "ping"}), 30).await;
    assert_eq!(pong["type"], "pong", "{pong}");
    assert!(frames.iter().all(|f| f["type"] == "reset"), "{frames:?}");
    assert_eq!(frames.len(), 30);
}
