//! Durable sends over HTTP from many concurrent senders into one room, and the raw group-commit
//! loop of the same store (SQLite or PostgreSQL) measured in the same run.

use crate::cpu;
use crate::harness::{Server, StoreKind, message_text, store_send};
use crate::stats::{Samples, Table, ms, rate, thousands};
use crate::{Opts, blocking};
use crate::{pg, raw};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What one closed-loop HTTP client measured.
pub struct Load {
    pub latencies: Vec<Duration>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// When the client's last measured request finished.
    pub finished: Instant,
}

/// Repeats `request` from now until `end`; requests started before `measure_from` are warm-up.
/// `request` returns whether the answer was the expected one, or a description of what was not.
pub async fn closed_loop<F, Fut>(measure_from: Instant, end: Instant, mut request: F) -> Load
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut load = Load {
        latencies: Vec::with_capacity(64 * 1024),
        errors: 0,
        first_error: None,
        finished: measure_from,
    };
    let mut i = 0u64;
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let r = request(i).await;
        i += 1;
        let t1 = Instant::now();
        if t0 < measure_from {
            continue;
        }
        load.finished = t1;
        match r {
            Ok(()) => load.latencies.push(t1 - t0),
            Err(e) => {
                load.errors += 1;
                load.first_error.get_or_insert(e);
            }
        }
    }
    load
}

/// Merged results of many clients: successful requests per second over the measured window.
pub struct Merged {
    pub samples: Samples,
    pub errors: u64,
    pub first_error: Option<String>,
    pub per_sec: f64,
    pub window: Duration,
}

pub async fn gather(mut set: JoinSet<Load>, measure_from: Instant) -> anyhow::Result<Merged> {
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut last = measure_from;
    while let Some(r) = set.join_next().await {
        let load = r?;
        all.extend(load.latencies);
        errors += load.errors;
        if first_error.is_none() {
            first_error = load.first_error;
        }
        last = last.max(load.finished);
    }
    let window = last.saturating_duration_since(measure_from);
    let per_sec = all.len() as f64 / window.as_secs_f64().max(1e-9);
    Ok(Merged {
        samples: Samples::new(all),
        errors,
        first_error,
        per_sec,
        window,
    })
}

/// POSTs one message; Ok only for 201.
pub async fn post_message(
    client: &reqwest::Client,
    url: &str,
    auth: &str,
    body: String,
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
    if status == StatusCode::CREATED {
        Ok(())
    } else {
        Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)))
    }
}

/// The targets of a store: issue 2's for SQLite, issue 11's for PostgreSQL.
pub struct SendTargets {
    pub per_sec: f64,
    pub p99: Duration,
}

pub fn send_targets(kind: StoreKind) -> SendTargets {
    match kind {
        StoreKind::Sqlite => SendTargets {
            per_sec: 20_000.0,
            p99: Duration::from_millis(25),
        },
        StoreKind::Postgres => SendTargets {
            per_sec: 10_000.0,
            p99: Duration::from_millis(50),
        },
    }
}

pub async fn run(opts: &Opts, kind: StoreKind) -> anyhow::Result<Table> {
    let senders = opts.senders.max(1);
    eprintln!(
        "[sends] starting the server on {}, {senders} users, one room",
        kind.name()
    );
    let server = Server::start_on(kind, &opts.pg).await?;
    let app = server.app("bench-sends").await?;
    let tokens = server.users(&app, "s", senders).await?;
    let members: Vec<String> = (1..senders).map(|i| format!("s{i}")).collect();
    let room = server.group(&tokens[0], &members).await?;
    let before = server.room(&tokens[0], room).await?;

    let warmup = Duration::from_secs_f64(opts.warmup);
    let seconds = Duration::from_secs_f64(opts.seconds);
    eprintln!(
        "[sends] {senders} senders: {:.1} s warm-up, then {:.1} s measured",
        opts.warmup, opts.seconds
    );
    let measure_from = Instant::now() + warmup;
    let end = measure_from + seconds;
    let url = server.url(&format!("/v1/rooms/{room}/messages"));
    let cpu_from = cpu::snapshot_at(measure_from);
    let pg_from = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        pg::postgres_ticks()
    });
    let mut set = JoinSet::new();
    for (s, token) in tokens.iter().enumerate() {
        let client = server.client.clone();
        let url = url.clone();
        let auth = format!("Bearer {token}");
        set.spawn(async move {
            closed_loop(measure_from, end, |i| {
                let body = serde_json::json!({ "text": message_text(s, i) }).to_string();
                let (client, url, auth) = (&client, &url, &auth);
                async move { post_message(client, url, auth, body).await }
            })
            .await
        });
    }
    let http = gather(set, measure_from).await?;
    let http_cpu = cpu::per_unit(
        &cpu_from.await?,
        &cpu::snapshot(),
        http.samples.len() as u64,
    );
    let pg_ticks = pg::postgres_ticks().saturating_sub(pg_from.await?);
    let after = server.room(&tokens[0], room).await?;
    let stored = after["messages_count"].as_i64().unwrap_or(-1)
        - before["messages_count"].as_i64().unwrap_or(0);

    // Diagnostic: the same load straight into the store, without HTTP, to split the cost.
    let raw_for = Duration::from_secs_f64(opts.raw_seconds);
    eprintln!(
        "[sends] diagnostic: {senders} tasks calling the store directly (no HTTP), {:.1} s",
        opts.raw_seconds
    );
    let app_id = server.app_id(&app.token).await?;
    let measure_from = Instant::now() + warmup.min(Duration::from_millis(500));
    let end = measure_from + raw_for;
    let cpu_from = cpu::snapshot_at(measure_from);
    let mut set = JoinSet::new();
    for s in 0..senders {
        let store = server.running.store.clone();
        let sender = format!("s{s}");
        set.spawn(async move {
            closed_loop(measure_from, end, |i| {
                let (store, sender) = (&store, &sender);
                async move {
                    store_send(store, app_id, sender, room, message_text(s, i))
                        .await
                        .map_err(|e| e.to_string())
                }
            })
            .await
        });
    }
    let direct = gather(set, measure_from).await?;
    let direct_cpu = cpu::per_unit(
        &cpu_from.await?,
        &cpu::snapshot(),
        direct.samples.len() as u64,
    );
    server.stop().await?;

    let baseline = baseline(opts, kind, senders, raw_for).await?;

    let durable = match kind {
        StoreKind::Sqlite => "WAL, synchronous=FULL",
        StoreKind::Postgres => "synchronous_commit=on",
    };
    let mut t = Table::new(format!(
        "sends on {}: {senders} concurrent senders, one room, durable ({durable}), {:.0} s",
        kind.name(),
        opts.seconds
    ));
    let p50 = http.samples.pct(50.0);
    let p99 = http.samples.pct(99.0);
    let target = send_targets(kind);
    t.check(
        "HTTP sends/s",
        rate(http.per_sec, "msg/s"),
        &format!(">= {}", rate(target.per_sec, "msg/s")),
        http.per_sec >= target.per_sec,
    );
    t.info("latency p50", ms(p50));
    t.check(
        "latency p99",
        ms(p99),
        &format!("<= {}", ms(target.p99)),
        p99 <= target.p99,
    );
    t.info("latency max", ms(http.samples.max()));
    t.info(
        "messages sent (measured window)",
        format!(
            "{} in {:.2} s",
            thousands(http.samples.len() as u64),
            http.window.as_secs_f64()
        ),
    );
    t.info(
        "messages stored (incl. warm-up)",
        thousands(stored.max(0) as u64),
    );
    t.check("errors", thousands(http.errors), "0", http.errors == 0);
    t.info("CPU per message over HTTP (server and client)", http_cpu);
    if kind == StoreKind::Postgres {
        t.info(
            "CPU per message of the postgres processes (whole cluster)",
            format!(
                "{:.1} µs",
                pg_ticks as f64 * 1e4 / http.samples.len().max(1) as f64
            ),
        );
    }
    t.info(
        "diagnostic: store.execute direct, no HTTP (rate, p50/p99)",
        format!(
            "{} ({} / {})",
            rate(direct.per_sec, "msg/s"),
            ms(direct.samples.pct(50.0)),
            ms(direct.samples.pct(99.0))
        ),
    );
    t.info("diagnostic: CPU per message, no HTTP", direct_cpu);
    let name = kind.name();
    t.info(
        &format!("raw {name} group commit ({senders} producers -> 1 writer)"),
        format!(
            "{} (mean batch {:.1} rows)",
            rate(baseline.group.per_sec(), "rows/s"),
            baseline.group.mean_batch()
        ),
    );
    t.info(
        "ratio server / raw group commit",
        format!("{:.2}", http.per_sec / baseline.group.per_sec()),
    );
    t.info(
        &format!("raw {name}, {senders} rows per commit, one thread"),
        format!(
            "{} ({} commits/s)",
            rate(baseline.batched.per_sec(), "rows/s"),
            thousands(
                (baseline.batched.commits as f64 / baseline.batched.elapsed.as_secs_f64()) as u64
            )
        ),
    );
    t.info(
        "ratio server / raw batched",
        format!("{:.2}", http.per_sec / baseline.batched.per_sec()),
    );
    if let Some(e) = http.first_error.or(direct.first_error) {
        t.note(format!("first error: {e}"));
    }
    Ok(t)
}

/// The raw loops of one store, measured right after its server stopped.
pub struct Baseline {
    pub group: raw::RawRate,
    pub batched: raw::RawRate,
}

/// SQLite: a temp database in WAL + FULL; PostgreSQL: a fresh database (one set-based insert
/// per batch, committed on its own). Both: `senders` producers into one group-commit writer,
/// then one thread committing `senders` rows at a time back to back.
pub async fn baseline(
    opts: &Opts,
    kind: StoreKind,
    senders: usize,
    run_for: Duration,
) -> anyhow::Result<Baseline> {
    let name = kind.name();
    eprintln!(
        "[sends] raw {name}: {senders} producer threads -> one group-commit writer, {:.1} s",
        run_for.as_secs_f64()
    );
    match kind {
        StoreKind::Sqlite => {
            let dir = tempfile::tempdir()?;
            let d = dir.path().to_path_buf();
            let group = blocking(move || raw::group_commit(&d, senders, 512, run_for)).await?;
            eprintln!("[sends] raw {name}: batches of {senders} rows per commit, back to back");
            let d = dir.path().to_path_buf();
            let batched = blocking(move || raw::batched(&d, senders, run_for)).await?;
            Ok(Baseline { group, batched })
        }
        StoreKind::Postgres => {
            let db = crate::harness::fresh_db(&opts.pg).await?;
            let url = db.url.clone();
            // The store's writer takes at most 256 commands per transaction.
            let group = blocking(move || pg::group_commit(&url, senders, 256, run_for)).await?;
            eprintln!("[sends] raw {name}: batches of {senders} rows per commit, back to back");
            let url = db.url.clone();
            let batched = blocking(move || pg::batched(&url, senders, run_for)).await?;
            blocking(move || {
                drop(db);
                Ok(())
            })
            .await?;
            Ok(Baseline { group, batched })
        }
    }
}
