//! The WebSocket scenarios. One process may hold at most 20,000 open files here, so the server
//! runs in a child process (`confab-bench ws-server`) and the 10,000+ client connections in
//! worker processes (`confab-bench ws-clients`), each bound to its own 127.0.0.x source
//! address. This process orchestrates: it sets up users and rooms over HTTP, drives the sends,
//! and collects what the workers saw. Delivery latency is measured with the wall clock, which
//! all processes of the machine share: each message carries its send time in its text.

use crate::Opts;
use crate::stats::{Samples, Table, ms, rate, thousands};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Message ids a worker keeps figures for.
const MAX_IDS: usize = 100_000;
/// Connections opened at once by a worker.
const CONNECT_CONCURRENCY: usize = 128;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A child process speaking lines on stdin/stdout.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Proc {
    fn spawn(args: &[String]) -> anyhow::Result<Proc> {
        Self::spawn_with(args, false)
    }

    /// With `batch`, the child runs under `SCHED_BATCH` (through `chrt`, when present): it
    /// does not preempt the server on every wake-up, as clients on other machines would not.
    fn spawn_with(args: &[String], batch: bool) -> anyhow::Result<Proc> {
        let exe = std::env::current_exe().context("cannot find the bench binary")?;
        let chrt = std::path::Path::new("/usr/bin/chrt");
        let mut cmd = if batch && chrt.exists() {
            let mut c = Command::new(chrt);
            c.args(["--batch", "0"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot spawn a child process")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            child,
            stdin,
            lines,
        })
    }

    async fn line(&mut self, within: Duration) -> anyhow::Result<String> {
        tokio::time::timeout(within, self.lines.recv())
            .await
            .context("a child process did not answer in time")?
            .context("a child process ended")
    }

    fn say(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("child stdin closed")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Closes stdin (the child's signal to end) and waits for it.
    fn finish(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")?;
    Ok(kb * 1024)
}

/// CPU time a process has used so far: (user, system).
fn cpu_split(pid: u32) -> (Duration, Duration) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'; in ticks
    // of 10 ms.
    let tick = |i: usize| Duration::from_millis(f.get(i).copied().unwrap_or(0) * 10);
    (tick(11), tick(12))
}

/// CPU time (user + system) a process has used so far.
fn cpu(pid: u32) -> Duration {
    let (u, s) = cpu_split(pid);
    u + s
}

/// Waits until the server is idle (under 5 % of a core over half a second), at most 60 s:
/// work left over from one phase (users going offline after the presence grace, their
/// `last_seen_at` writes) must not be measured as part of the next.
async fn quiesce(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let before = cpu(pid);
        tokio::time::sleep(Duration::from_millis(500)).await;
        if cpu(pid).saturating_sub(before) <= Duration::from_millis(25) {
            return;
        }
    }
}

// ---------------------------------------------------------------- the server child

/// `confab-bench ws-server`: runs the server until stdin closes. Prints `addr ADMIN_KEY`.
pub fn server_main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let mut config = confab::config::Config::default();
        config.set("listen", "127.0.0.1:0", "bench")?;
        config.data_dir = dir.path().to_path_buf();
        config.set("log", "warn", "bench")?;
        // The latency run sends one message after the other from one user, far above the
        // default per-user rate.
        config.set("ws_sends_per_second", "1000000", "bench")?;
        let running = confab::start(&config).await?;
        println!("{} {}", running.addr, running.admin_key);
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).map_or(0, |n| n) > 0 {}
        })
        .await?;
        running.stop().await
    })
}

// ---------------------------------------------------------------- the client workers

#[derive(Default)]
struct Seen {
    count: Vec<AtomicU32>,
    max_ns: Vec<AtomicU64>,
    closed: AtomicU64,
}

/// `confab-bench ws-clients ADDR SRC TOKENS_FILE`: one connection per token, from `SRC`.
/// Prints `ready N` once all are authenticated; answers `report FROM TO` with a JSON line.
pub fn clients_main(args: &[String]) -> anyhow::Result<()> {
    let [addr, src, file] = args else {
        bail!("usage: ws-clients ADDR SRC TOKENS_FILE");
    };
    let tokens: Vec<String> = std::fs::read_to_string(file)?
        .lines()
        .map(str::to_owned)
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let seen = Arc::new(Seen {
            count: (0..MAX_IDS).map(|_| AtomicU32::new(0)).collect(),
            max_ns: (0..MAX_IDS).map(|_| AtomicU64::new(0)).collect(),
            closed: AtomicU64::new(0),
        });
        let addr: std::net::SocketAddr = addr.parse()?;
        let src: std::net::IpAddr = src.parse()?;
        let opened = futures_util::stream::iter(tokens.into_iter().map(|t| {
            let seen = seen.clone();
            async move { client(addr, src, t, seen).await }
        }))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect::<Vec<anyhow::Result<()>>>()
        .await;
        let failed = opened.iter().filter(|r| r.is_err()).count();
        if let Some(Err(e)) = opened.iter().find(|r| r.is_err()) {
            eprintln!("[ws-clients {src}] {failed} connections failed, first: {e:#}");
        }
        println!("ready {}", opened.len() - failed);
        // Answer commands as they come (read on a thread, handed over one by one).
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(cmd) = rx.recv().await {
            let parts: Vec<&str> = cmd.split_whitespace().collect();
            if let ["report", from, to] = parts.as_slice() {
                let (from, to): (usize, usize) = (from.parse()?, to.parse()?);
                let to = to.min(MAX_IDS);
                let count: Vec<u32> = (from..to)
                    .map(|i| seen.count[i].load(Ordering::Relaxed))
                    .collect();
                let max: Vec<u64> = (from..to)
                    .map(|i| seen.max_ns[i].load(Ordering::Relaxed))
                    .collect();
                let closed = seen.closed.load(Ordering::Relaxed);
                println!(
                    "{}",
                    json!({"count": count, "max_ns": max, "closed": closed})
                );
            }
        }
        Ok(())
    })
}

async fn client(
    addr: std::net::SocketAddr,
    src: std::net::IpAddr,
    token: String,
    seen: Arc<Seen>,
) -> anyhow::Result<()> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(src, 0))?;
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}/v1/ws"),
        stream,
        Some(config),
    )
    .await?;
    // After the handshake (the server says nothing before `auth`), the client speaks the
    // frames itself: a load generator that parses as little as possible leaves more of the
    // machine's two cores to the server.
    let mut raw = RawClient {
        tcp: ws.into_inner(),
        buf: Vec::with_capacity(4096),
    };
    raw.write(
        0x1,
        json!({"type": "auth", "token": token})
            .to_string()
            .as_bytes(),
    )
    .await?;
    loop {
        match raw.next().await? {
            Some((0x1, text)) if text.contains("\"type\":\"ready\"") => break,
            Some((0x1, text)) if text.contains("\"type\":\"error\"") => {
                bail!("refused: {text}")
            }
            Some(_) => {}
            None => bail!("closed before ready"),
        }
    }
    tokio::spawn(async move {
        while let Ok(Some((op, text))) = raw.next().await {
            if op == 0x1 {
                record(&text, &seen);
            }
        }
        seen.closed.fetch_add(1, Ordering::Relaxed);
    });
    Ok(())
}

/// The client side of WebSocket framing, just enough for the bench: reads unmasked frames
/// (answering pings), writes masked ones (with a zero key, which the protocol allows).
struct RawClient {
    tcp: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    async fn write(&mut self, opcode: u8, payload: &[u8]) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(payload);
        self.tcp.write_all(&frame).await?;
        Ok(())
    }

    /// The next text (opcode 1) or other data frame; pings are answered on the way.
    async fn next(&mut self) -> anyhow::Result<Option<(u8, String)>> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some((op, start, end)) = self.frame() {
                let payload = self.buf[start..end].to_vec();
                self.buf.drain(..end);
                match op {
                    0x8 => return Ok(None),
                    0x9 => self.write(0xA, &payload).await?,
                    0xA => {}
                    _ => return Ok(Some((op, String::from_utf8_lossy(&payload).into_owned()))),
                }
                continue;
            }
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(4096);
            }
            if self.tcp.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// A complete frame at the start of the buffer: opcode and payload range.
    fn frame(&self) -> Option<(u8, usize, usize)> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let op = b[0] & 0x0F;
        let (len, head) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        (b.len() >= head + len).then_some((op, head, head + len))
    }
}

/// Notes the delivery of a bench message (`"text":"b:ID:SENT_NS"`), without parsing JSON.
fn record(frame: &str, seen: &Seen) {
    let Some(at) = frame.find("\"text\":\"b:") else {
        return;
    };
    let now = now_ns();
    let rest = &frame[at + 10..];
    let mut parts = rest.splitn(3, ':');
    let id: Option<usize> = parts.next().and_then(|v| v.parse().ok());
    let sent: Option<u64> = parts
        .next()
        .and_then(|v| v.split('"').next())
        .and_then(|v| v.parse().ok());
    if let (Some(id), Some(sent)) = (id, sent)
        && id < MAX_IDS
    {
        seen.count[id].fetch_add(1, Ordering::Relaxed);
        seen.max_ns[id].fetch_max(now.saturating_sub(sent), Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------- the orchestrator

struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let resp = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(bearer)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn user(&self, secret: &str, id: String) -> anyhow::Result<String> {
        use reqwest::Method;
        self.call(
            Method::PUT,
            &format!("/v1/users/{id}"),
            secret,
            json!({"name": id}),
        )
        .await?;
        let t = self
            .call(
                Method::POST,
                &format!("/v1/users/{id}/tokens"),
                secret,
                json!({}),
            )
            .await?;
        t["token"].as_str().map(str::to_owned).context("no token")
    }
}

/// Many requests at once, in order of the inputs.
async fn all<T, F, Fut>(inputs: Vec<T>, f: F) -> anyhow::Result<Vec<String>>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    futures_util::stream::iter(inputs.into_iter().map(f))
        .buffered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

struct Report {
    count: Vec<u64>,
    max_ns: Vec<u64>,
    closed: u64,
}

async fn report(workers: &mut [Proc], from: usize, to: usize) -> anyhow::Result<Report> {
    let mut r = Report {
        count: vec![0; to - from],
        max_ns: vec![0; to - from],
        closed: 0,
    };
    for w in workers.iter_mut() {
        w.say(&format!("report {from} {to}"))?;
        let line = w.line(Duration::from_secs(30)).await?;
        let v: Value = serde_json::from_str(&line)?;
        for (i, c) in v["count"].as_array().into_iter().flatten().enumerate() {
            r.count[i] += c.as_u64().unwrap_or(0);
        }
        for (i, m) in v["max_ns"].as_array().into_iter().flatten().enumerate() {
            r.max_ns[i] = r.max_ns[i].max(m.as_u64().unwrap_or(0));
        }
        r.closed += v["closed"].as_u64().unwrap_or(0);
    }
    Ok(r)
}

/// Sends `n` messages with ids from `first` at `per_second` into `room`; returns the send
/// times (ns) of the first and the last.
async fn drive(
    http: &Http,
    token: &str,
    room: i64,
    first: usize,
    n: usize,
    per_second: f64,
) -> anyhow::Result<(u64, u64)> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (mut t0, mut t1) = (0, 0);
    for id in first..first + n {
        tick.tick().await;
        let sent = now_ns();
        if id == first {
            t0 = sent;
        }
        t1 = sent;
        http.call(
            reqwest::Method::POST,
            &format!("/v1/rooms/{room}/messages"),
            token,
            json!({"text": format!("b:{id}:{sent}")}),
        )
        .await?;
    }
    Ok((t0, t1))
}

/// Waits until every message `from..to` reached `expected` connections (or 60 s pass).
async fn settle(
    workers: &mut [Proc],
    from: usize,
    to: usize,
    expected: u64,
) -> anyhow::Result<Report> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = report(workers, from, to).await?;
        let done = r.count.iter().all(|c| *c >= expected);
        if done || Instant::now() > deadline {
            return Ok(r);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn run(opts: &Opts) -> anyhow::Result<Table> {
    let members = opts.ws_members;
    let idle_extra = opts.ws_idle_extra;
    let mut t = Table::new(format!(
        "ws (server in a child process; {members} members in one room; clients in worker processes)"
    ));
    eprintln!("[ws] starting the server child process");
    let mut server = Proc::spawn(&["ws-server".to_owned()])?;
    let first = server.line(Duration::from_secs(60)).await?;
    let (addr, admin) = first.split_once(' ').context("server banner")?;
    let (addr, admin) = (addr.to_owned(), admin.to_owned());
    let server_pid = server.child.id();
    let http = Http {
        base: format!("http://{addr}"),
        client: crate::harness::client()?,
    };
    let a = http
        .call(
            reqwest::Method::POST,
            "/v1/apps",
            &admin,
            json!({"name": "ws-bench"}),
        )
        .await?;
    let secret = a["secret"].as_str().context("secret")?.to_owned();
    // Two members, one sender: the latency of one delivery.
    let (pa, pb) = (
        http.user(&secret, "pa".into()).await?,
        http.user(&secret, "pb".into()).await?,
    );
    let pair = http
        .call(
            reqwest::Method::POST,
            "/v1/rooms",
            &pa,
            json!({"kind": "group", "name": "pair", "members": ["pb"]}),
        )
        .await?["number"]
        .as_i64()
        .context("room number")?;
    let lat = pair_latency(&addr, &pa, &pb, pair, opts.messages).await?;
    t.check(
        "2 members: send → delivery p50 / p99",
        format!("{} / {}", ms(lat.pct(50.0)), ms(lat.pct(99.0))),
        "p99 ≤ 2 ms",
        lat.pct(99.0) <= Duration::from_millis(2),
    );
    t.info(
        "2 members: sends (sequential, over the socket)",
        thousands(lat.len() as u64),
    );

    let total_users = members + idle_extra;
    eprintln!("[ws] creating {total_users} users");
    let tokens = all((0..total_users).collect(), |i| {
        http.user(&secret, format!("u{i}"))
    })
    .await?;
    let sender = http.user(&secret, "sender".into()).await?;
    let big = http
        .call(
            reqwest::Method::POST,
            "/v1/rooms",
            &sender,
            json!({"kind": "group", "name": "big", "visibility": "public"}),
        )
        .await?["number"]
        .as_i64()
        .context("room number")?;
    eprintln!("[ws] {members} members join room {big}");
    all(tokens[..members].to_vec(), |tok| {
        let http = &http;
        async move {
            http.call(
                reqwest::Method::POST,
                &format!("/v1/rooms/{big}/join"),
                &tok,
                json!({}),
            )
            .await
            .map(|_| String::new())
        }
    })
    .await?;

    // Idle connections: RSS with them minus RSS before them.
    let rss0 = rss(server_pid)?;
    let dir = tempfile::tempdir()?;
    let spawn_worker = |src: &str, toks: &[String], name: &str| -> anyhow::Result<Proc> {
        let file = dir.path().join(name);
        std::fs::write(&file, toks.join("\n"))?;
        Proc::spawn_with(
            &[
                "ws-clients".to_owned(),
                addr.clone(),
                src.to_owned(),
                file.display().to_string(),
            ],
            true,
        )
    };
    let half = members / 2;
    let idle_half = idle_extra / 2;
    eprintln!(
        "[ws] opening {} connections from 4 worker processes",
        members + idle_extra
    );
    let mut fan = vec![
        spawn_worker("127.0.0.2", &tokens[..half], "w1")?,
        spawn_worker("127.0.0.3", &tokens[half..members], "w2")?,
    ];
    let mut idle = vec![
        spawn_worker("127.0.0.4", &tokens[members..members + idle_half], "w3")?,
        spawn_worker("127.0.0.5", &tokens[members + idle_half..], "w4")?,
    ];
    let mut connected = 0u64;
    for w in fan.iter_mut().chain(idle.iter_mut()) {
        let line = w.line(Duration::from_secs(600)).await?;
        connected += line
            .strip_prefix("ready ")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss1 = rss(server_pid)?;
    let per = (rss1.saturating_sub(rss0)) as f64 / connected.max(1) as f64;
    t.check(
        &format!(
            "{} idle authenticated connections: RSS per connection",
            thousands(connected)
        ),
        format!(
            "{:.2} KiB ({} MiB → {} MiB)",
            per / 1024.0,
            rss0 >> 20,
            rss1 >> 20
        ),
        "≤ 8 KiB",
        per <= 8192.0,
    );
    t.note(format!(
        "50,000 idle connections cannot be opened here: one process may hold at most 20,000 \
         files (hard limit), so the server was measured with {} ({} in the big room, {} in no room)",
        thousands(connected),
        thousands(members as u64),
        thousands(idle_extra as u64)
    ));
    for w in idle.drain(..) {
        w.finish();
    }
    // The presence grace (5 s) must pass before the server is really quiet.
    tokio::time::sleep(Duration::from_secs(6)).await;
    quiesce(server_pid).await;

    // Fan-out at 10 messages/s: p99 from send to the last delivery.
    let n = (opts.seconds * 10.0).round().max(1.0) as usize;
    eprintln!("[ws] fan-out: {n} messages at 10/s to {members} members");
    drive(&http, &sender, big, 0, n, 10.0).await?;
    let r = settle(&mut fan, 0, n, members as u64).await?;
    let last = Samples::new(r.max_ns.iter().map(|v| Duration::from_nanos(*v)).collect());
    let complete = r.count.iter().all(|c| *c == members as u64);
    t.check(
        "fan-out 10 msg/s: send → last delivery p50 / p99",
        format!("{} / {}", ms(last.pct(50.0)), ms(last.pct(99.0))),
        "p99 ≤ 100 ms",
        last.pct(99.0) <= Duration::from_millis(100) && complete,
    );
    t.info(
        "fan-out 10 msg/s: every member got every message",
        complete.to_string(),
    );

    // Higher rate: deliveries per second sustained.
    let per_second = opts.ws_rate;
    let n2 = (opts.seconds * per_second).round().max(1.0) as usize;
    let first = 1000;
    eprintln!("[ws] fan-out: {n2} messages at {per_second}/s to {members} members");
    quiesce(server_pid).await;
    let pids: Vec<u32> = fan.iter().map(|w| w.child.id()).collect();
    let split0 = cpu_split(server_pid);
    let cpu0 = (
        cpu(server_pid),
        pids.iter().map(|p| cpu(*p)).sum::<Duration>(),
    );
    let (t0, _) = drive(&http, &sender, big, first, n2, per_second).await?;
    let r = settle(&mut fan, first, first + n2, members as u64).await?;
    let cpu1 = (
        cpu(server_pid),
        pids.iter().map(|p| cpu(*p)).sum::<Duration>(),
    );
    let split1 = cpu_split(server_pid);
    let delivered: u64 = r.count.iter().sum();
    // The window: from the first send to the last delivery of any of these messages.
    let end = r
        .max_ns
        .iter()
        .enumerate()
        .map(|(i, m)| t0 + (i as f64 * 1e9 / per_second) as u64 + m)
        .max()
        .unwrap_or(t0);
    let secs = (end.saturating_sub(t0)) as f64 / 1e9;
    let dps = delivered as f64 / secs.max(1e-9);
    let last = Samples::new(r.max_ns.iter().map(|v| Duration::from_nanos(*v)).collect());
    t.check(
        &format!("fan-out {per_second} msg/s: deliveries/s sustained"),
        rate(dps, "/s"),
        "≥ 150,000/s",
        dps >= 150_000.0,
    );
    t.info(
        &format!("fan-out {per_second} msg/s: delivered / expected, cut off"),
        format!(
            "{} / {}, {}",
            thousands(delivered),
            thousands((n2 * members) as u64),
            r.closed
        ),
    );
    t.info(
        &format!("fan-out {per_second} msg/s: send → last delivery p50 / p99"),
        format!("{} / {}", ms(last.pct(50.0)), ms(last.pct(99.0))),
    );
    let per = |d: Duration| d.as_secs_f64() * 1e6 / delivered.max(1) as f64;
    t.info(
        "CPU per delivery: server (user + system) / clients",
        format!(
            "{:.2} µs ({:.2} + {:.2}) / {:.2} µs",
            per(cpu1.0.saturating_sub(cpu0.0)),
            per(split1.0.saturating_sub(split0.0)),
            per(split1.1.saturating_sub(split0.1)),
            per(cpu1.1.saturating_sub(cpu0.1))
        ),
    );
    for w in fan {
        w.finish();
    }
    server.finish();
    Ok(t)
}

/// Sequential sends over the socket by `a`; each timed until `b` receives it.
async fn pair_latency(
    addr: &str,
    a: &str,
    b: &str,
    room: i64,
    n: usize,
) -> anyhow::Result<Samples> {
    let url = format!("ws://{addr}/v1/ws");
    let (mut wa, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let (mut wb, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    for (ws, tok) in [(&mut wa, a), (&mut wb, b)] {
        ws.send(Message::text(
            json!({"type": "auth", "token": tok}).to_string(),
        ))
        .await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str().contains("\"ready\"") => break,
                Some(Ok(_)) => {}
                _ => bail!("no ready"),
            }
        }
    }
    let warm = (n / 20).max(20);
    let mut out = Vec::with_capacity(n);
    for i in 0..warm + n {
        let text = format!("p:{i}");
        let frame = json!({"type": "send", "room": room, "text": text, "ref": i}).to_string();
        let t = Instant::now();
        wa.send(Message::text(frame)).await?;
        let needle = format!("\"text\":\"{text}\"");
        loop {
            match tokio::time::timeout(Duration::from_secs(30), wb.next()).await {
                Ok(Some(Ok(Message::Text(f)))) if f.as_str().contains(&needle) => break,
                Ok(Some(Ok(_))) => {}
                Ok(_) => bail!("b's connection ended"),
                Err(_) => bail!("b received nothing in 30 s"),
            }
        }
        let d = t.elapsed();
        if i >= warm {
            out.push(d);
        }
        // The sender's own ack and change, read so its queue never fills.
        let (mut acked, mut echoed) = (false, false);
        while !(acked && echoed) {
            match wa.next().await {
                Some(Ok(Message::Text(f))) => {
                    let f = f.as_str();
                    acked |= f.contains("\"type\":\"ack\"");
                    echoed |= f.contains(&needle);
                    if f.contains("\"type\":\"error\"") {
                        bail!("send refused: {f}");
                    }
                }
                Some(Ok(_)) => {}
                _ => bail!("a's connection ended"),
            }
        }
    }
    Ok(Samples::new(out))
}
