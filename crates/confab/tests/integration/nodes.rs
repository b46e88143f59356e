//! Several nodes on one PostgreSQL database, and that database going away: run in the
//! PostgreSQL pass of `scripts/test` (`CONFAB_TEST_DATABASE_URL`); the SQLite pass says it
//! skips them.

use crate::common::{PgDatabase, Server, assert_error, postgres_server};
use crate::process::spawn_serve;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

fn pg(test: &str) -> Option<String> {
    let server = postgres_server();
    if server.is_none() {
        eprintln!("{test}: needs PostgreSQL (CONFAB_TEST_DATABASE_URL); run by scripts/test");
    }
    server
}

const ADMIN: &str = "ck_admin_nodes_test_key_0123456789";

/// Sends `text` with a client id; `Some(seq)` when acknowledged, `None` when the node failed.
async fn send(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    room: i64,
    text: &str,
) -> Option<i64> {
    let resp = client
        .post(format!("{base}/v1/rooms/{room}/messages"))
        .bearer_auth(token)
        .json(&json!({"text": text, "client_id": text.replace(' ', "-")}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if resp.status() != StatusCode::CREATED {
        return None;
    }
    let body: Value = resp.json().await.ok()?;
    body["seq"].as_i64()
}

/// Every item of a room, through `s`, as seq → text.
pub(crate) async fn timeline(s: &Server, token: &str, room: i64) -> BTreeMap<i64, String> {
    let mut all = BTreeMap::new();
    let mut after = 0;
    loop {
        let (status, page) = s
            .get(
                &format!("/v1/rooms/{room}/messages?after={after}&limit=200"),
                token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().expect("items").clone();
        if items.is_empty() {
            return all;
        }
        for i in items {
            after = i["seq"].as_i64().expect("seq");
            all.insert(after, i["text"].as_str().unwrap_or("").to_owned());
        }
    }
}

/// Two nodes on one database, senders on both; one node is killed with `kill -9` in the middle:
/// every acknowledged message is there, seqs stay gapless, and the other node carries on.
#[tokio::test]
async fn a_node_killed_during_sends_loses_no_acknowledged_message() {
    let Some(server) = pg("a_node_killed_during_sends_loses_no_acknowledged_message") else {
        return;
    };
    let db = PgDatabase::create(&server);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = db.url();
    let env = [
        ("CONFAB_DATABASE", url.as_str()),
        ("CONFAB_ADMIN_KEY", ADMIN),
    ];
    let mut nodes = Vec::new();
    for n in ["a", "b"] {
        let data = dir.path().join(n);
        nodes.push(spawn_serve(
            &data,
            &dir.path().join(format!("{n}.log")),
            "info",
            &env,
        ));
    }
    let a = Server::external(
        format!("http://{}", nodes[0].addr),
        ADMIN.into(),
        dir.path(),
    );
    let b_base = format!("http://{}", nodes[1].addr);
    let b = Server::external(b_base.clone(), ADMIN.into(), dir.path());
    let app = a.app("nodes").await;
    let alice = a.user(&app, "alice").await;
    let room = a.group(&alice, "private", &[]).await;
    let acked: Arc<Mutex<Vec<(i64, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for (i, base) in [
        &nodes[0].addr,
        &nodes[0].addr,
        &nodes[1].addr,
        &nodes[1].addr,
    ]
    .into_iter()
    .enumerate()
    {
        let (base, token, acked) = (format!("http://{base}"), alice.clone(), acked.clone());
        let client = a.client.clone();
        senders.push(tokio::spawn(async move {
            let mut failures = 0;
            for k in 0..150 {
                let text = format!("sender {i} message {k}");
                match send(&client, &base, &token, room, &text).await {
                    Some(seq) => acked.lock().expect("lock").push((seq, text)),
                    None => {
                        failures += 1;
                        if failures > 3 {
                            return;
                        }
                    }
                }
            }
        }));
    }
    // Kill node a once some sends went through both.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().expect("lock").len() < 100 {
        assert!(Instant::now() < deadline, "sends do not go through");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nodes[0].child.kill().expect("kill -9");
    nodes[0].child.wait().expect("reaped");
    for s in senders {
        s.await.expect("sender");
    }
    // Node b carries on.
    assert!(
        send(&b.client, &b_base, &alice, room, "after the crash")
            .await
            .is_some()
    );
    let items = timeline(&b, &alice, room).await;
    let seqs: Vec<i64> = items.keys().copied().collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "gapless seqs"
    );
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 100);
    for (seq, text) in &acked {
        assert_eq!(
            items.get(seq),
            Some(text),
            "acknowledged message {seq} lost or changed"
        );
    }
}

/// A TCP proxy owned by the test between a node and PostgreSQL, which can cut every
/// connection and refuse new ones for a while: the database "goes away".
struct Proxy {
    port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (flag, tasks) = (cut.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                tasks.lock().expect("lock").push(task.abort_handle());
            }
        });
        Proxy { port, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in self.open.lock().expect("lock").drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The database goes away for a while: requests answer 503 `unavailable` with `Retry-After`,
/// readiness says so, nothing acknowledged is lost, nothing half-written appears, and the node
/// serves again by itself when the database returns.
#[tokio::test]
async fn losing_the_database_answers_503_and_the_node_recovers() {
    let Some(server) = pg("losing_the_database_answers_503_and_the_node_recovers") else {
        return;
    };
    let db = PgDatabase::create(&server);
    let upstream = server
        .rsplit('@')
        .next()
        .and_then(|h| h.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_owned();
    let proxy = Proxy::start(upstream.clone()).await;
    let via_proxy = db
        .url()
        .replacen(&upstream, &format!("127.0.0.1:{}", proxy.port), 1);
    let s = Server::start_with(|c| c.database = via_proxy.clone()).await;
    let app = s.app("outage").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    let mut acked = Vec::new();
    for i in 0..10 {
        let text = format!("before {i}");
        acked.push((
            send(&s.client, &s.base, &alice, room, &text)
                .await
                .expect("sent"),
            text,
        ));
    }
    proxy.cut();
    let outage = Instant::now();
    let mut refused = 0;
    for i in 0..5 {
        let resp = s
            .client
            .post(format!("{}/v1/rooms/{room}/messages", s.base))
            .bearer_auth(&alice)
            .json(&json!({"text": format!("during {i}")}))
            .send()
            .await
            .expect("answered");
        let status = resp.status();
        let retry = resp.headers().get("retry-after").cloned();
        let body: Value = resp.json().await.expect("JSON");
        assert_error(
            &(status, body),
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        );
        assert!(retry.is_some(), "503 says when to retry");
        refused += 1;
    }
    let got = s.get(&format!("/v1/rooms/{room}/messages"), &alice).await;
    assert_eq!(got.0, StatusCode::SERVICE_UNAVAILABLE, "{}", got.1);
    let (status, _) = s.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // The outage lasts a few seconds here; nothing in the recovery depends on its length.
    while outage.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = s.call(reqwest::Method::GET, "/readyz", None, None).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the node did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..10 {
        let text = format!("after {i}");
        acked.push((
            send(&s.client, &s.base, &alice, room, &text)
                .await
                .expect("sent"),
            text,
        ));
    }
    assert_eq!(refused, 5);
    let items = timeline(&s, &alice, room).await;
    let seqs: Vec<i64> = items.keys().copied().collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "gapless, nothing half-written"
    );
    for (seq, text) in &acked {
        assert_eq!(
            items.get(seq),
            Some(text),
            "acknowledged message {seq} lost"
        );
    }
    assert!(
        items.values().all(|t| !t.starts_with("during")),
        "a refused send was kept"
    );
}
