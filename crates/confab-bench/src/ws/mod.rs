//! The WebSocket scenarios. One process may hold at most 20,000 open files here, so the server
//! runs in a child process (`confab-bench ws-server`) and the 10,000+ client connections in
//! worker processes (`confab-bench ws-clients`), each bound to its own 127.0.0.x source
//! address. This process orchestrates: it sets up users and rooms over HTTP, drives the sends,
//! and collects what the workers saw. Delivery latency is measured with the wall clock, which
//! all processes of the machine share: each message carries its send time in its text.

use crate::Opts;
use crate::stats::{Samples, Table, ms, rate, thousands};
use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

mod clients;
mod pair;
pub(crate) mod proc;
mod reader;

pub use clients::clients_main;
pub(crate) use clients::now_ns;
pub(crate) use pair::{pair_latency, pair_times};
pub use proc::server_main;
use proc::{Proc, cpu, cpu_split, quiesce, rss};

pub(crate) struct Http {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
}

impl Http {
    pub(crate) async fn call(
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
pub(crate) async fn all<T, F, Fut>(inputs: Vec<T>, f: F) -> anyhow::Result<Vec<String>>
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

pub(crate) struct Report {
    pub(crate) count: Vec<u64>,
    pub(crate) max_ns: Vec<u64>,
    pub(crate) closed: u64,
    /// Changes that reached a connection out of position order (a gap or a duplicate).
    pub(crate) disorder: u64,
}

pub(crate) async fn report(workers: &mut [Proc], from: usize, to: usize) -> anyhow::Result<Report> {
    let mut r = Report {
        count: vec![0; to - from],
        max_ns: vec![0; to - from],
        closed: 0,
        disorder: 0,
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
        r.disorder += v["disorder"].as_u64().unwrap_or(0);
    }
    Ok(r)
}

/// Waits for a worker's `ready N` line; gives N.
pub(crate) async fn ready_count(w: &mut Proc) -> anyhow::Result<u64> {
    let line = w.line(Duration::from_secs(600)).await?;
    Ok(line
        .strip_prefix("ready ")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// Per message, the merged histogram of delivery latencies (1 ms buckets).
async fn histograms(workers: &mut [Proc], from: usize, to: usize) -> anyhow::Result<Vec<Vec<u64>>> {
    let mut out = vec![vec![0u64; clients::BUCKETS]; to - from];
    for w in workers.iter_mut() {
        w.say(&format!("hist {from} {to}"))?;
        let line = w.line(Duration::from_secs(30)).await?;
        let v: Value = serde_json::from_str(&line)?;
        for (i, h) in v["hist"].as_array().into_iter().flatten().enumerate() {
            for (b, c) in h.as_array().into_iter().flatten().enumerate() {
                if let Some(slot) = out.get_mut(i).and_then(|m| m.get_mut(b)) {
                    *slot += c.as_u64().unwrap_or(0);
                }
            }
        }
    }
    Ok(out)
}

/// The bucket (ms) under which the fraction `q` of a histogram's deliveries arrived.
fn quantile_ms(h: &[u64], q: f64) -> usize {
    let total: u64 = h.iter().sum();
    let want = (total as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (b, c) in h.iter().enumerate() {
        seen += c;
        if seen >= want {
            return b + 1;
        }
    }
    h.len()
}

/// Sends `n` messages with ids from `first` at `per_second` into `room` (one after the other:
/// a send that takes longer delays the next ones); returns each message's send time (ns).
pub(crate) async fn drive(
    http: &Http,
    token: &str,
    room: i64,
    first: usize,
    n: usize,
    per_second: f64,
) -> anyhow::Result<Vec<u64>> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent_at = Vec::with_capacity(n);
    for id in first..first + n {
        tick.tick().await;
        let sent = now_ns();
        sent_at.push(sent);
        http.call(
            reqwest::Method::POST,
            &format!("/v1/rooms/{room}/messages"),
            token,
            json!({"text": format!("b:{id}:{sent}")}),
        )
        .await?;
    }
    Ok(sent_at)
}

/// Waits until every message `from..to` reached `expected` connections (or 60 s pass).
pub(crate) async fn settle(
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
    let lat = pair_latency(&addr, &addr, &pa, &pb, pair, opts.messages, None).await?;
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
    let mut connected = 0u64;
    for w in fan.iter_mut() {
        connected += ready_count(w).await?;
    }
    // Half-way: the cost of the next connections tells whether it stays flat as they grow.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_mid, at_mid) = (rss(server_pid)?, connected);
    let mut idle = vec![
        spawn_worker("127.0.0.4", &tokens[members..members + idle_half], "w3")?,
        spawn_worker("127.0.0.5", &tokens[members + idle_half..], "w4")?,
    ];
    for w in idle.iter_mut() {
        connected += ready_count(w).await?;
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
    if connected > at_mid {
        let marginal = rss1.saturating_sub(rss_mid) as f64 / (connected - at_mid) as f64;
        t.info(
            &format!(
                "idle connections {} → {}: RSS per added connection",
                thousands(at_mid),
                thousands(connected)
            ),
            format!("{:.2} KiB", marginal / 1024.0),
        );
    }
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
    let pids: Vec<u32> = fan.iter().map(|w| w.child.id()).collect();
    let slow0 = CpuMark::take(server_pid, &pids);
    drive(&http, &sender, big, 0, n, 10.0).await?;
    let r = settle(&mut fan, 0, n, members as u64).await?;
    let slow1 = CpuMark::take(server_pid, &pids);
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
    // Which messages make the tail: message i was sent i × 100 ms into the run.
    let mut slowest: Vec<(usize, u64)> = r.max_ns.iter().copied().enumerate().collect();
    slowest.sort_by_key(|(_, v)| std::cmp::Reverse(*v));
    let hist = histograms(&mut fan, 0, n).await?;
    let spread = |i: usize| {
        hist.get(i).map_or(String::new(), |h| {
            format!(
                " (half by {}, 99 % by {}, 99.9 % by {})",
                quantile_ms(h, 0.5),
                quantile_ms(h, 0.99),
                quantile_ms(h, 0.999)
            )
        })
    };
    t.note(format!(
        "10 msg/s: the slowest messages (number: ms to the last delivery, and by when, in ms, \
         fractions of the members had it): {}",
        slowest
            .iter()
            .take(5)
            .map(|(i, v)| format!("{i}: {:.1}{}", *v as f64 / 1e6, spread(*i)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let median = slowest.get(slowest.len() / 2).map_or(0, |(i, _)| *i);
    t.note(format!(
        "10 msg/s: the median message, for comparison: {median}: {:.1}{}",
        r.max_ns.get(median).copied().unwrap_or(0) as f64 / 1e6,
        spread(median)
    ));
    t.info(
        "CPU per delivery at 10 msg/s: server (user + system) / clients",
        slow1.per_delivery(&slow0, r.count.iter().sum()),
    );

    // A small room while the big one fans out: how much the big room delays it.
    eprintln!("[ws] 2 members at 100 msg/s while {members} members get 10 msg/s");
    quiesce(server_pid).await;
    let mixed_first = 500;
    let pair_sends = (opts.seconds * 100.0).round().max(1.0) as usize;
    let (mixed, driven) = tokio::join!(
        pair_latency(
            &addr,
            &addr,
            &pa,
            &pb,
            pair,
            pair_sends,
            Some(Duration::from_millis(10))
        ),
        drive(&http, &sender, big, mixed_first, n, 10.0),
    );
    let (mixed, _) = (mixed?, driven?);
    settle(&mut fan, mixed_first, mixed_first + n, members as u64).await?;
    t.info(
        &format!(
            "2 members (100 msg/s) while {} members get 10 msg/s: send → delivery p50 / p99 / max",
            thousands(members as u64)
        ),
        format!(
            "{} / {} / {}",
            ms(mixed.pct(50.0)),
            ms(mixed.pct(99.0)),
            ms(mixed.pct(100.0))
        ),
    );

    // Higher rate: deliveries per second sustained.
    let per_second = opts.ws_rate;
    let n2 = (opts.seconds * per_second).round().max(1.0) as usize;
    let first = 1000;
    eprintln!("[ws] fan-out: {n2} messages at {per_second}/s to {members} members");
    quiesce(server_pid).await;
    let fast0 = CpuMark::take(server_pid, &pids);
    let sent_at = drive(&http, &sender, big, first, n2, per_second).await?;
    let t0 = sent_at.first().copied().unwrap_or(0);
    let r = settle(&mut fan, first, first + n2, members as u64).await?;
    let fast1 = CpuMark::take(server_pid, &pids);
    let delivered: u64 = r.count.iter().sum();
    // The window: from the first send to the last delivery of any of these messages, each
    // counted from when it was really sent (a busy server delays the sender too).
    let end = r
        .max_ns
        .iter()
        .zip(&sent_at)
        .map(|(m, sent)| sent + m)
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
    t.info(
        &format!("CPU per delivery at {per_second} msg/s: server (user + system) / clients"),
        fast1.per_delivery(&fast0, delivered),
    );
    for w in fan {
        w.finish();
    }
    server.finish();
    Ok(t)
}

/// CPU time used so far by the server (user, system) and by the client workers together.
struct CpuMark {
    server: (Duration, Duration),
    clients: Duration,
}

impl CpuMark {
    fn take(server: u32, clients: &[u32]) -> CpuMark {
        CpuMark {
            server: cpu_split(server),
            clients: clients.iter().map(|p| cpu(*p)).sum(),
        }
    }

    /// "server µs (user + system) / clients µs" per delivery since `before`.
    fn per_delivery(&self, before: &CpuMark, delivered: u64) -> String {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / delivered.max(1) as f64;
        let user = self.server.0.saturating_sub(before.server.0);
        let system = self.server.1.saturating_sub(before.server.1);
        format!(
            "{:.2} µs ({:.2} + {:.2}) / {:.2} µs",
            per(user + system),
            per(user),
            per(system),
            per(self.clients.saturating_sub(before.clients))
        )
    }
}
