//! History reads: the latest page of a room holding many items, from many concurrent readers.

use crate::Opts;
use crate::cpu;
use crate::harness::{Server, StoreKind, message_text, store_send};
use crate::sends::{closed_loop, gather};
use crate::stats::{Table, ms, rate, thousands};
use anyhow::{Context, bail};
use confab_core::ids::{RoomNumber, UserId};
use confab_core::model::HistoryQuery;
use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Commands in flight while filling the room: enough for the writer to fill its batches.
const FILLERS: u64 = 2048;

pub async fn run(opts: &Opts, kind: StoreKind) -> anyhow::Result<Table> {
    let readers = opts.readers.max(1);
    let items = opts.items;
    eprintln!(
        "[history] starting the server on {}, {readers} users, one room",
        kind.name()
    );
    let server = Server::start_on(kind, &opts.pg).await?;
    let app = server.app("bench-history").await?;
    let tokens = server.users(&app, "h", readers).await?;
    let members: Vec<String> = (1..readers).map(|i| format!("h{i}")).collect();
    let room = server.group(&tokens[0], &members).await?;

    // Fill the room through the real store (rules, event log, projections, group commit),
    // bypassing only HTTP.
    let store = server.running.store.clone();
    let app_id = server.app_id(&app.token).await?;
    eprintln!("[history] filling room {room} with {items} messages through the store");
    let fill_start = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let n = done.load(Ordering::Relaxed);
                let s = fill_start.elapsed().as_secs_f64();
                eprintln!(
                    "[history]   {} / {} after {s:.0} s ({:.0}/s)",
                    thousands(n),
                    thousands(items),
                    n as f64 / s
                );
            }
        })
    };
    let mut set = JoinSet::new();
    let workers = FILLERS.min(items.max(1));
    for w in 0..workers {
        let store = store.clone();
        let done = done.clone();
        set.spawn(async move {
            let mut i = w;
            while i < items {
                store_send(&store, app_id, "h0", room, message_text(0, i)).await?;
                done.fetch_add(1, Ordering::Relaxed);
                i += workers;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    progress.abort();
    let fill = fill_start.elapsed();
    eprintln!(
        "[history] filled in {:.1} s ({:.0} items/s)",
        fill.as_secs_f64(),
        items as f64 / fill.as_secs_f64()
    );

    let details = server.room(&tokens[0], room).await?;
    let last_seq = details["last_seq"].as_i64().context("no last_seq")?;
    let path = format!("/v1/rooms/{room}/messages?limit=50");
    let page = server
        .call(
            reqwest::Method::GET,
            &path,
            &tokens[0],
            None,
            StatusCode::OK,
        )
        .await?;
    let got = page["items"].as_array().context("no items")?;
    let top = got.last().and_then(|i| i["seq"].as_i64());
    if got.len() != 50.min(last_seq as usize) || top != Some(last_seq) {
        bail!(
            "the latest page is wrong: {} items, last seq {top:?}, room last_seq {last_seq}",
            got.len()
        );
    }

    let warmup = Duration::from_secs_f64(opts.warmup);
    let seconds = Duration::from_secs_f64(opts.seconds);
    eprintln!(
        "[history] {readers} readers: {:.1} s warm-up, then {:.1} s measured",
        opts.warmup, opts.seconds
    );
    let measure_from = Instant::now() + warmup;
    let end = measure_from + seconds;
    let url = server.url(&path);
    let cpu_from = cpu::snapshot_at(measure_from);
    let mut set = JoinSet::new();
    for token in &tokens {
        let client = server.client.clone();
        let url = url.clone();
        let auth = format!("Bearer {token}");
        set.spawn(async move {
            closed_loop(measure_from, end, |_| {
                let (client, url, auth) = (&client, &url, &auth);
                async move {
                    let resp = client
                        .get(url)
                        .header(AUTHORIZATION, auth)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = resp.status();
                    let body = resp.bytes().await.map_err(|e| e.to_string())?;
                    if status == StatusCode::OK {
                        Ok(())
                    } else {
                        Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
                    }
                }
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

    // Diagnostic: what the handler asks of the store (access, then the page), without HTTP.
    let raw_for = Duration::from_secs_f64(opts.raw_seconds);
    eprintln!(
        "[history] diagnostic: {readers} tasks calling the store directly (no HTTP), {:.1} s",
        opts.raw_seconds
    );
    let app_id = server.app_id(&app.token).await?;
    let measure_from = Instant::now() + warmup.min(Duration::from_millis(500));
    let end = measure_from + raw_for;
    let cpu_from = cpu::snapshot_at(measure_from);
    let mut set = JoinSet::new();
    for r in 0..readers {
        let store = server.running.store.clone();
        let user = UserId(format!("h{r}"));
        set.spawn(async move {
            closed_loop(measure_from, end, |_| {
                let (store, user) = (&store, &user);
                async move {
                    let number = RoomNumber(room);
                    store
                        .access(app_id, number, Some(user))
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or("room not found")?;
                    let (items, _, _) = store
                        .history(app_id, number, HistoryQuery::Latest, 50)
                        .await
                        .map_err(|e| e.to_string())?;
                    if items.len() == 50 {
                        Ok(())
                    } else {
                        Err(format!("{} items", items.len()))
                    }
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

    let p99 = http.samples.pct(99.0);
    let mut t = Table::new(format!(
        "history on {}: latest 50 of a room with {} items, {readers} concurrent readers, {:.0} s",
        kind.name(),
        thousands(last_seq as u64),
        opts.seconds
    ));
    // Issue 2's targets for SQLite, issue 11's for PostgreSQL.
    let (min_rate, max_p99) = match kind {
        StoreKind::Sqlite => (10_000.0, Duration::from_millis(10)),
        StoreKind::Postgres => (5_000.0, Duration::from_millis(20)),
    };
    t.check(
        "requests/s",
        rate(http.per_sec, "req/s"),
        &format!(">= {}", rate(min_rate, "req/s")),
        http.per_sec >= min_rate,
    );
    t.info("latency p50", ms(http.samples.pct(50.0)));
    t.check(
        "latency p99",
        ms(p99),
        &format!("<= {}", ms(max_p99)),
        p99 <= max_p99,
    );
    t.info("latency max", ms(http.samples.max()));
    t.info(
        "requests (measured window)",
        format!(
            "{} in {:.2} s",
            thousands(http.samples.len() as u64),
            http.window.as_secs_f64()
        ),
    );
    t.check("errors", thousands(http.errors), "0", http.errors == 0);
    t.info("CPU per request over HTTP (server and client)", http_cpu);
    t.info(
        "diagnostic: store access+history direct, no HTTP (rate, p50/p99)",
        format!(
            "{} ({} / {})",
            rate(direct.per_sec, "req/s"),
            ms(direct.samples.pct(50.0)),
            ms(direct.samples.pct(99.0))
        ),
    );
    t.info("diagnostic: CPU per request, no HTTP", direct_cpu);
    t.info(
        "fill through the store (not a target)",
        format!(
            "{} items in {:.1} s = {}",
            thousands(items),
            fill.as_secs_f64(),
            rate(items as f64 / fill.as_secs_f64(), "items/s")
        ),
    );
    if items < 1_000_000 {
        t.note(format!(
            "the target is for 1,000,000 items; this run used {}",
            thousands(items)
        ));
    }
    if let Some(e) = http.first_error.or(direct.first_error) {
        t.note(format!("first error: {e}"));
    }
    Ok(t)
}
