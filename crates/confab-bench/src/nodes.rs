//! Several nodes on one PostgreSQL database: one, two and three servers in this process, each
//! with its own store (writer, pool), all on one fresh database and on NATS (`--nats`), the
//! senders split across them (sender `s` talks to node `s % n`), into one room and then over 64
//! rooms, first with `route_writes = false` (every node writes what it receives), then with
//! routing on (each app's writes go to the node holding its write lease). Aggregate
//! throughput, and a check that every room's seqs are gapless: the seqs the 201 answers
//! carried (warm-up included) are exactly `first..=last` with no repeat, and `last` is the
//! room's `last_seq`.

use crate::Opts;
use crate::cluster::Nats;
use crate::harness::{Server, fresh_db, message_text};
use crate::sends::{closed_loop, gather};
use crate::stats::{Table, ms, rate};
use anyhow::Context;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// One admin key for all nodes of a run, so any node can create the app.
const ADMIN_KEY: &str = "ck_admin_bench_nodes_shared_key";

/// (room index, seq) of every accepted send.
type Seqs = Arc<Mutex<Vec<(usize, i64)>>>;

/// POSTs one message and records its seq; Ok only for 201.
async fn post(
    client: &reqwest::Client,
    url: &str,
    auth: &str,
    body: String,
    room: usize,
    seqs: &Seqs,
) -> Result<(), String> {
    let resp = client
        .post(url)
        .header(AUTHORIZATION, auth)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    if status != StatusCode::CREATED {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
    }
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let seq = v["seq"].as_i64().ok_or("no seq in the answer")?;
    if let Ok(mut s) = seqs.lock() {
        s.push((room, seq));
    }
    Ok(())
}

/// What one configuration measured.
struct Run {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
    first_error: Option<String>,
    /// `None` when gapless, else what is wrong.
    gap: Option<String>,
    /// The routers' counters summed over the nodes (routing on).
    routed: confab_bus_nats::RouteCounters,
    /// CPU per message over the measured window (see [`Ticks::per_message`]).
    cpu: String,
}

/// How the nodes of a run are set up.
struct Setup<'a> {
    nodes: usize,
    rooms: usize,
    nats: &'a str,
    route: bool,
}

/// CPU ticks (1/100 s) spent so far by this process (nodes and clients), the PostgreSQL and
/// NATS servers, and the whole machine (busy, total).
#[derive(Clone, Copy, Default)]
struct Ticks {
    own: u64,
    pg: u64,
    nats: u64,
    busy: u64,
    total: u64,
}

impl Ticks {
    fn now() -> Ticks {
        let (busy, total) = crate::pg::machine_ticks();
        Ticks {
            own: own_ticks(),
            pg: crate::pg::postgres_ticks(),
            nats: crate::pg::process_ticks("nats-server"),
            busy,
            total,
        }
    }

    /// Taken by a task at `when`.
    fn at(when: Instant) -> tokio::task::JoinHandle<Ticks> {
        tokio::spawn(async move {
            tokio::time::sleep_until(when.into()).await;
            Ticks::now()
        })
    }

    /// CPU per message (µs) of this process, PostgreSQL and NATS, and the machine's busy share.
    fn per_message(self, after: Ticks, messages: f64) -> String {
        let us = |t: u64| t as f64 * 10_000.0 / messages.max(1.0);
        let busy = (after.busy - self.busy) as f64 / (after.total - self.total).max(1) as f64;
        format!(
            "{:.0} µs per message: nodes and clients {:.0}, postgres {:.0}, nats {:.0}; machine {:.0} % busy",
            us(after.own + after.pg + after.nats - self.own - self.pg - self.nats),
            us(after.own - self.own),
            us(after.pg - self.pg),
            us(after.nats - self.nats),
            busy * 100.0
        )
    }
}

/// utime + stime of this process (all its threads), in ticks.
fn own_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    ticks(11).unwrap_or(0) + ticks(12).unwrap_or(0)
}

async fn one(opts: &Opts, setup: &Setup<'_>) -> anyhow::Result<Run> {
    let (nodes, rooms) = (setup.nodes, setup.rooms);
    let senders = opts.senders.max(1);
    eprintln!(
        "[nodes] {nodes} node(s), {senders} senders over {rooms} room(s), routing {}: setting up",
        if setup.route { "on" } else { "off" }
    );
    // Dropped with the last node.
    let db = Arc::new(fresh_db(&opts.pg).await?);
    // Subjects of this run's own: a shared NATS may carry other runs (or deployments).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let prefix = format!("benchnodes{}x{nanos}", std::process::id());
    let mut servers = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        let server = Server::node_with(Some(db.clone()), Some(ADMIN_KEY), |c| {
            c.set("nats", setup.nats, "--nats")?;
            c.set("nats_prefix", &prefix, "bench")?;
            c.set("route_writes", &setup.route.to_string(), "bench")?;
            Ok(())
        })
        .await?;
        servers.push(server);
    }
    drop(db);
    let head = &servers[0];
    let app = head.app("bench-nodes").await?;
    let tokens = head.users(&app, "s", senders).await?;
    let mut numbers = Vec::with_capacity(rooms);
    for r in 0..rooms {
        let members: Vec<String> = (0..senders)
            .filter(|s| s % rooms == r && *s != r)
            .map(|s| format!("s{s}"))
            .collect();
        numbers.push(head.group(&tokens[r % senders], &members).await?);
    }

    // Each line starts with the database server's dirty pages written out, so a checkpoint
    // left by the line before does not land in this one's window.
    let admin = opts.pg.clone();
    crate::blocking(move || {
        crate::pg::with_client(&admin, |c| {
            c.batch_execute("CHECKPOINT")?;
            Ok(())
        })
    })
    .await?;
    let measure_from = Instant::now() + Duration::from_secs_f64(opts.warmup);
    let end = measure_from + Duration::from_secs_f64(opts.seconds);
    let seqs: Seqs = Arc::new(Mutex::new(Vec::with_capacity(1 << 20)));
    let mut set = JoinSet::new();
    for (s, token) in tokens.iter().enumerate() {
        let node = &servers[s % nodes];
        let room = s % rooms;
        let url = node.url(&format!("/v1/rooms/{}/messages", numbers[room]));
        let client = node.client.clone();
        let auth = format!("Bearer {token}");
        let seqs = seqs.clone();
        set.spawn(async move {
            closed_loop(measure_from, end, |i| {
                let body = serde_json::json!({ "text": message_text(s, i) }).to_string();
                let (client, url, auth, seqs) = (&client, &url, &auth, &seqs);
                async move { post(client, url, auth, body, room, seqs).await }
            })
            .await
        });
    }
    let (ticks_from, ticks_to) = (Ticks::at(measure_from), Ticks::at(end));
    let http = gather(set, measure_from).await?;
    let cpu = ticks_from
        .await?
        .per_message(ticks_to.await?, http.per_sec * opts.seconds);

    let mut by_room: Vec<Vec<i64>> = vec![Vec::new(); rooms];
    for (r, seq) in seqs.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.iter() {
        by_room[*r].push(*seq);
    }
    let mut gap = None;
    for (r, mut got) in by_room.into_iter().enumerate() {
        got.sort_unstable();
        let details = head.room(&tokens[r % senders], numbers[r]).await?;
        let last = details["last_seq"].as_i64().context("no last_seq")?;
        let (Some(lo), Some(hi)) = (got.first().copied(), got.last().copied()) else {
            gap = Some(format!("room {}: no message accepted", numbers[r]));
            break;
        };
        let contiguous = got.windows(2).all(|w| w[1] == w[0] + 1);
        if !contiguous || hi != last {
            gap = Some(format!(
                "room {}: {} seqs from {lo} to {hi}, last_seq {last}",
                numbers[r],
                got.len()
            ));
            break;
        }
    }
    let mut routed = confab_bus_nats::RouteCounters::default();
    for c in servers.iter().filter_map(|s| s.running.routing()) {
        routed.forwarded += c.forwarded;
        routed.served += c.served;
        routed.fallbacks += c.fallbacks;
        routed.batches += c.batches;
        routed.recalled += c.recalled;
        routed.cold += c.cold;
    }
    for s in servers {
        s.stop().await?;
    }
    Ok(Run {
        per_sec: http.per_sec,
        p50: http.samples.pct(50.0),
        p99: http.samples.pct(99.0),
        errors: http.errors,
        first_error: http.first_error,
        gap,
        routed,
        cpu,
    })
}

pub async fn run(opts: &Opts) -> anyhow::Result<Table> {
    let senders = opts.senders.max(1);
    let nats = Nats::open(&opts.cluster.nats).await?;
    let mut t = Table::new(format!(
        "nodes on one PostgreSQL database and {}: {senders} senders over HTTP split across the \
         nodes, {:.0} s each, a fresh database per line; routing off (every node writes what it \
         receives), then on (each app's writes go to one node)",
        nats.describe(),
        opts.seconds
    ));
    for rooms in [1, 64] {
        // Off and on alternate at each node count, so that the machine's drift over the run
        // (the database server's own checkpoints, other processes) falls on both alike.
        let mut singles: [Option<f64>; 2] = [None, None];
        for nodes in [1, 2, 3] {
            for route in [false, true] {
                let mode = if route { "routing on" } else { "routing off" };
                let single = &mut singles[usize::from(route)];
                let setup = Setup {
                    nodes,
                    rooms,
                    nats: &nats.url,
                    route,
                };
                let r = one(opts, &setup).await?;
                let base = *single.get_or_insert(r.per_sec);
                let label = format!("{nodes} node(s), {rooms} room(s), {mode}");
                let figure = format!(
                    "{} (x{:.2} of one node), p50 / p99 {} / {}",
                    rate(r.per_sec, "msg/s"),
                    r.per_sec / base,
                    ms(r.p50),
                    ms(r.p99)
                );
                if nodes == 1 || !route {
                    t.info(&label, figure);
                } else {
                    // "Not below one node's", with a margin for this shared machine's noise.
                    t.check(
                        &label,
                        figure,
                        ">= x0.95 of one node",
                        r.per_sec >= 0.95 * base,
                    );
                }
                t.info(&format!("{label}: CPU"), r.cpu.clone());
                if route && nodes > 1 {
                    let c = r.routed;
                    t.note(format!(
                        "{label}: {} commands forwarded to the writer in {} requests ({:.1} \
                         per request), {} served by it, {} fell back to local, {} requests \
                         recalled, {} in rooms not hot on their node written there",
                        c.forwarded,
                        c.batches,
                        c.forwarded as f64 / c.batches.max(1) as f64,
                        c.served,
                        c.fallbacks,
                        c.recalled,
                        c.cold
                    ));
                }
                t.check(
                    &format!("{label}: seqs gapless"),
                    r.gap.clone().unwrap_or_else(|| "yes".into()),
                    "gapless",
                    r.gap.is_none(),
                );
                if r.errors > 0 {
                    t.check(
                        &format!("{label}: errors"),
                        r.errors.to_string(),
                        "0",
                        false,
                    );
                    if let Some(e) = r.first_error {
                        t.note(format!("{label}: first error: {e}"));
                    }
                }
            }
        }
    }
    Ok(t)
}
