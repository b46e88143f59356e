//! The presence storm: N members of one room connect to a server at once, as they do when a
//! node restarts and every client reconnects. Each connection is told who in its rooms is
//! online; the question is what that costs. Announcing every connect to every connected member
//! costs about N²/2 frames; the server should spend O(N) frames on it. Measured: presence
//! frames received by all clients (`presence` and `presence_list`), the user entries they
//! carried, the server's CPU time from the first connect until the server is idle again, and
//! whether every client ended up knowing every member as online.

use crate::stats::{Table, thousands};
use crate::ws::proc::{Proc, cpu, quiesce};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Members of the room, each with one connection.
const MEMBERS: usize = 1000;

/// The storm is over when no presence frame has arrived for this long.
const QUIET: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Counts {
    frames: AtomicU64,
    entries: AtomicU64,
    bytes: AtomicU64,
    ready: AtomicU64,
}

pub async fn run() -> anyhow::Result<Table> {
    let mut t = Table::new(format!(
        "presence storm ({MEMBERS} members of one room connect at once; server in a child process)"
    ));
    eprintln!("[presence] starting the server child process");
    let mut server = Proc::spawn(&["ws-server".to_owned()])?;
    let first = server.line(Duration::from_secs(60)).await?;
    let (addr, admin) = first.split_once(' ').context("server banner")?;
    let (addr, admin) = (addr.to_owned(), admin.to_owned());
    let pid = server.child.id();
    let http = crate::harness::client()?;
    let base = format!("http://{addr}");
    let call = |method: reqwest::Method, path: String, bearer: String, body: Value| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let resp = http
                .request(method, format!("{base}{path}"))
                .bearer_auth(bearer)
                .json(&body)
                .send()
                .await?;
            let status = resp.status();
            let text = resp.text().await?;
            if !status.is_success() {
                bail!("{path}: {status}: {text}");
            }
            Ok::<Value, anyhow::Error>(serde_json::from_str(&text).unwrap_or(Value::Null))
        }
    };
    use reqwest::Method;
    let app = call(
        Method::POST,
        "/v1/apps".into(),
        admin.clone(),
        json!({"name": "storm"}),
    )
    .await?;
    let secret = app["secret"].as_str().context("secret")?.to_owned();
    let owner = make_user(&call, &secret, "owner").await?;
    let room = call(
        Method::POST,
        "/v1/rooms".into(),
        owner.clone(),
        json!({"kind": "group", "name": "storm", "visibility": "public"}),
    )
    .await?["number"]
        .as_i64()
        .context("room number")?;
    eprintln!("[presence] {MEMBERS} users join room {room}");
    let tokens: Vec<String> = futures_util::stream::iter((0..MEMBERS).map(|i| {
        let (call, secret) = (&call, &secret);
        async move {
            let tok = make_user(call, secret, &format!("s{i}")).await?;
            call(
                Method::POST,
                format!("/v1/rooms/{room}/join"),
                tok.clone(),
                json!({}),
            )
            .await?;
            Ok::<String, anyhow::Error>(tok)
        }
    }))
    .buffered(32)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<anyhow::Result<_>>()?;
    quiesce(pid).await;

    eprintln!("[presence] the storm: {MEMBERS} connections at once");
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let cpu0 = cpu(pid);
    let started = Instant::now();
    let url = format!("ws://{addr}/v1/ws");
    let clients: Vec<_> = tokens
        .into_iter()
        .map(|tok| tokio::spawn(client(url.clone(), tok, counts.clone(), stop.clone())))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while counts.ready.load(Ordering::Relaxed) < MEMBERS as u64 {
        if Instant::now() > deadline {
            bail!("the clients did not all get `ready` in time");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_ready = started.elapsed();
    let (mut last, mut since) = (counts.frames.load(Ordering::Relaxed), Instant::now());
    while since.elapsed() < QUIET && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = counts.frames.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    quiesce(pid).await;
    let used = cpu(pid).saturating_sub(cpu0);
    stop.store(true, Ordering::Relaxed);
    let mut known = Vec::with_capacity(MEMBERS);
    for c in clients {
        known.push(c.await.context("client task")??);
    }
    let frames = counts.frames.load(Ordering::Relaxed);
    let entries = counts.entries.load(Ordering::Relaxed);
    let n = MEMBERS as u64;
    t.check(
        "presence frames received (all clients)",
        format!(
            "{} ({:.1} per member)",
            thousands(frames),
            frames as f64 / n as f64
        ),
        "≤ 4 × members",
        frames <= 4 * n,
    );
    t.info(
        "user entries in them / bytes",
        format!(
            "{} / {} KiB",
            thousands(entries),
            thousands(counts.bytes.load(Ordering::Relaxed) / 1024)
        ),
    );
    t.info(
        "server CPU, first connect to idle (incl. auth, ready, subscribe)",
        format!("{:.2} s", used.as_secs_f64()),
    );
    t.info(
        "all clients ready after",
        format!("{:.2} s", all_ready.as_secs_f64()),
    );
    let fewest = known.iter().copied().min().unwrap_or(0);
    t.info(
        "members a client knows online at the end (fewest; others ≠ self)",
        format!("{fewest} of {}", MEMBERS - 1),
    );
    server.finish();
    Ok(t)
}

async fn make_user<F, Fut>(call: &F, secret: &str, id: &str) -> anyhow::Result<String>
where
    F: Fn(reqwest::Method, String, String, Value) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Value>>,
{
    use reqwest::Method;
    call(
        Method::PUT,
        format!("/v1/users/{id}"),
        secret.to_owned(),
        json!({"name": id}),
    )
    .await?;
    let t = call(
        Method::POST,
        format!("/v1/users/{id}/tokens"),
        secret.to_owned(),
        json!({}),
    )
    .await?;
    t["token"].as_str().map(str::to_owned).context("no token")
}

/// One member: connects, authenticates, and reads until told to stop, counting presence
/// frames. Gives how many other users it knows as online at the end.
async fn client(
    url: String,
    token: String,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<usize> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    ws.send(Message::text(
        json!({"type": "auth", "token": token}).to_string(),
    ))
    .await?;
    let mut me = String::new();
    let mut online: HashSet<String> = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        let msg = match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
            Err(_) => continue,
            Ok(Some(Ok(m))) => m,
            Ok(_) => bail!("a connection ended during the storm"),
        };
        let Message::Text(text) = msg else {
            continue;
        };
        let f: Value = serde_json::from_str(text.as_str())?;
        let mut apply = |u: &Value| {
            let user = u["user"].as_str().unwrap_or("").to_owned();
            if u["status"] == "online" {
                online.insert(user);
            } else {
                online.remove(&user);
            }
        };
        match f["type"].as_str() {
            Some("ready") => {
                me = f["user"].as_str().unwrap_or("").to_owned();
                counts.ready.fetch_add(1, Ordering::Relaxed);
            }
            Some("presence") => {
                counts.frames.fetch_add(1, Ordering::Relaxed);
                counts.entries.fetch_add(1, Ordering::Relaxed);
                counts.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
                apply(&f);
            }
            Some("presence_list") => {
                let users = f["users"].as_array().cloned().unwrap_or_default();
                counts.frames.fetch_add(1, Ordering::Relaxed);
                counts
                    .entries
                    .fetch_add(users.len() as u64, Ordering::Relaxed);
                counts.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
                users.iter().for_each(&mut apply);
            }
            _ => {}
        }
    }
    online.remove(&me);
    // The owner never connects; the other members are the ones to know.
    Ok(online.len())
}
