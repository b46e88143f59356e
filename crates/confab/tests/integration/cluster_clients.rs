//! Clients of a cluster written as a real one is, for the fault tests: a subscriber that
//! loses its connection reconnects (to the same node, else the next one) and resumes from the
//! last position it saw; a sender whose request fails retries it with the same `client_id` on
//! the next node.

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

/// What a subscriber holds: every change frame of its room in arrival order, and why each of
/// its connections ended.
#[derive(Default)]
pub(crate) struct Feed {
    pub(crate) frames: Vec<Value>,
    pub(crate) resets: Vec<Value>,
    pub(crate) ends: Vec<String>,
    /// When each connection was ready.
    pub(crate) ready_at: Vec<Instant>,
}

impl Feed {
    pub(crate) fn last(&self) -> i64 {
        self.frames
            .last()
            .map_or(0, |f| f["pos"].as_i64().unwrap_or(0))
    }
}

/// A subscriber of `room` as `token`, following the room from its first change: connects to
/// `nodes[0]`, and after any end of its connection resumes from its last position, on the same
/// node while it answers, else on the next. Stops once it holds position `until` (set when the
/// test knows the room's last one). Returns when it has first connected.
pub(crate) async fn subscribe(
    nodes: Vec<String>,
    token: String,
    room: i64,
    until: watch::Receiver<i64>,
) -> (Arc<Mutex<Feed>>, tokio::task::JoinHandle<()>) {
    let feed = Arc::new(Mutex::new(Feed::default()));
    let (connected, first) = oneshot::channel();
    let task = tokio::spawn(follow(nodes, token, room, until, feed.clone(), connected));
    first.await.expect("the subscriber connects");
    (feed, task)
}

async fn follow(
    nodes: Vec<String>,
    token: String,
    room: i64,
    mut until: watch::Receiver<i64>,
    feed: Arc<Mutex<Feed>>,
    connected: oneshot::Sender<()>,
) {
    let mut connected = Some(connected);
    let mut node = 0;
    let done = |feed: &Mutex<Feed>, until: i64| feed.lock().expect("lock").last() >= until;
    loop {
        if done(&feed, *until.borrow()) {
            return;
        }
        let url = format!("{}/v1/ws", nodes[node].replacen("http", "ws", 1));
        let Ok(Ok((mut ws, _))) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(&url),
        )
        .await
        else {
            // This node is gone: the next one serves the same rooms. The pause only spaces
            // out attempts; nothing waits on it.
            feed.lock()
                .expect("lock")
                .ends
                .push(format!("no answer from {url}"));
            node = (node + 1) % nodes.len();
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let last = feed.lock().expect("lock").last();
        let auth = json!({"type": "auth", "token": token, "resume": { room.to_string(): last }});
        if ws.send(Message::text(auth.to_string())).await.is_err() {
            continue;
        }
        let end = loop {
            let msg = tokio::select! {
                m = ws.next() => m,
                changed = until.changed() => {
                    if changed.is_err() || done(&feed, *until.borrow()) {
                        return;
                    }
                    continue;
                }
            };
            let text = match msg {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(f))) => {
                    break format!("closed {:?}", f.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => break format!("error {e}"),
                None => break "ended".to_owned(),
            };
            let f: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
            match f["type"].as_str() {
                Some("ready") => {
                    feed.lock().expect("lock").ready_at.push(Instant::now());
                    if let Some(c) = connected.take() {
                        let _ = c.send(());
                    }
                }
                Some("change") if f["room"] == room => {
                    let mut feed = feed.lock().expect("lock");
                    feed.frames.push(f);
                    if feed.last() >= *until.borrow() {
                        return;
                    }
                }
                Some("reset") => feed.lock().expect("lock").resets.push(f),
                Some("error") => panic!("the subscriber was refused: {f}"),
                _ => {}
            }
        };
        feed.lock()
            .expect("lock")
            .ends
            .push(format!("{end} on {url}"));
    }
}

/// Sends messages into `room` until `stop`, one every `pace` (zero: as fast as answers come),
/// at most `max`. A failed request is retried with the same `client_id` on the next node when
/// `failover` is set; without it, every answer must be 201. Records each acknowledgement as
/// seq → text, with the time it came.
pub(crate) fn sender(
    nodes: Vec<String>,
    token: String,
    room: i64,
    label: &'static str,
    (pace, max, failover): (Duration, usize, bool),
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(i64, String, Instant)>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut node = 0;
        for i in 0..max {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let text = format!("{label} {i}");
            let body = json!({"text": text, "client_id": format!("{label}-{i}")});
            let deadline = Instant::now() + Duration::from_secs(60);
            let seq = loop {
                let resp = client
                    .post(format!("{}/v1/rooms/{room}/messages", nodes[node]))
                    .bearer_auth(&token)
                    .json(&body)
                    // Above the 17 s a node may wait to learn what became of a command it
                    // forwarded (NATS down for 10 s while it was at the writer).
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                let status = resp.as_ref().map(|r| r.status()).ok();
                if !failover {
                    assert_eq!(status, Some(StatusCode::CREATED), "{label} {i}: {resp:?}");
                }
                if let Some(StatusCode::CREATED | StatusCode::OK) = status {
                    let item: Value = resp.expect("answer").json().await.expect("JSON");
                    break item["seq"].as_i64().expect("seq");
                }
                assert!(Instant::now() < deadline, "{label} {i} never acknowledged");
                node = (node + 1) % nodes.len();
            };
            acked
                .lock()
                .expect("lock")
                .push((seq, text, Instant::now()));
            if !pace.is_zero() {
                tokio::time::sleep(pace).await;
            }
        }
    })
}

/// Waits, up to `within`, until `acked` holds at least `n` acknowledgements.
pub(crate) async fn until_acked(
    acked: &Mutex<Vec<(i64, String, Instant)>>,
    n: usize,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    while acked.lock().expect("lock").len() < n {
        assert!(Instant::now() < deadline, "sends do not go through");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
