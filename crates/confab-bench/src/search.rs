//! Search: one app with many messages over many rooms (a generated corpus with a Zipf word
//! distribution), searched newest first over HTTP for a rare word, a common word and a
//! three-letter fragment, in one room and across all of a user's rooms; and the cost of the
//! search index on durable sends, measured with and without it in the same run.

use crate::Opts;
use crate::harness::{Server, StoreKind, store_send};
use crate::sends::{closed_loop, gather};
use crate::stats::{Samples, Table, ms, rate, thousands};
use anyhow::{Context, bail};
use confab_core::Command;
use confab_core::command::{CreateApp, CreateGroup, UpsertUser};
use confab_core::ids::{AppId, UserId};
use confab_core::model::Visibility;
use confab_core::store::Store;
use confab_store_sqlite::{Options, SqliteStore};
use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Users of the app; each room has three of them, so each user is in about 3 × rooms / USERS.
const USERS: usize = 100;
/// Distinct words in the corpus.
const VOCABULARY: usize = 20_000;
/// Commands in flight while filling.
const FILLERS: u64 = 1024;

/// A small deterministic generator (xorshift64*), so every run searches the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Words ranked by frequency, and the cumulative Zipf distribution (exponent 1) over them.
pub struct Corpus {
    words: Vec<String>,
    cdf: Vec<f64>,
}

impl Corpus {
    pub fn new() -> Corpus {
        const ONSETS: &[&str] = &[
            "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
            "z", "br", "ch", "st", "tr", "sh", "pl", "gr", "fl",
        ];
        const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou", "ee", "ü", "ö"];
        let mut rng = Rng(0x5EED_CAFE);
        let mut seen = std::collections::HashSet::new();
        let mut words = Vec::with_capacity(VOCABULARY);
        while words.len() < VOCABULARY {
            // Frequent words are short, as in real text.
            let syllables =
                1 + (words.len() > 50) as u64 + (words.len() > 2000) as u64 + rng.below(2);
            let mut w = String::new();
            for _ in 0..syllables {
                w.push_str(ONSETS[rng.below(ONSETS.len() as u64) as usize]);
                w.push_str(VOWELS[rng.below(VOWELS.len() as u64) as usize]);
            }
            if rng.below(3) == 0 {
                w.push_str(["n", "s", "r", "t", "ck"][rng.below(5) as usize]);
            }
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let mut cdf = Vec::with_capacity(VOCABULARY);
        let mut sum = 0.0;
        for rank in 1..=VOCABULARY {
            sum += 1.0 / rank as f64;
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Corpus { words, cdf }
    }

    fn word(&self, rng: &mut Rng) -> &str {
        let u = rng.unit();
        let i = self.cdf.partition_point(|c| *c < u).min(VOCABULARY - 1);
        &self.words[i]
    }

    /// Message `i`: 4 to 16 words, sometimes capitalised, sometimes with punctuation.
    pub fn message(&self, i: u64) -> String {
        let mut rng = Rng(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let n = 4 + rng.below(13);
        let mut out = String::with_capacity(80);
        for k in 0..n {
            if k > 0 {
                out.push(' ');
            }
            let w = self.word(&mut rng);
            if k == 0 || rng.below(20) == 0 {
                let mut cs = w.chars();
                if let Some(first) = cs.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(cs.as_str());
                }
            } else {
                out.push_str(w);
            }
        }
        out.push_str(["", "!", "?", ".", "!!!!"][rng.below(5) as usize]);
        out
    }
}

/// Percent-encodes a query value.
fn percent(v: &str) -> String {
    let mut out = String::with_capacity(v.len() * 3);
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn user(i: usize) -> String {
    format!("s{i}")
}

/// Members of room `r` (0-based): the owner first.
fn room_members(r: usize) -> [usize; 3] {
    [r % USERS, (r + 1) % USERS, (r + 37) % USERS]
}

struct Case {
    name: &'static str,
    term: String,
}

pub async fn run(opts: &Opts, kind: StoreKind) -> anyhow::Result<Vec<Table>> {
    let messages = opts.search_messages;
    let rooms = opts.rooms.max(1);
    let corpus = Arc::new(Corpus::new());
    eprintln!(
        "[search] starting the server on {}, {USERS} users, {rooms} rooms",
        kind.name()
    );
    let server = Server::start_on(kind, &opts.pg).await?;
    let app = server.app("bench-search").await?;
    let tokens = server.users(&app, "s", USERS).await?;
    let app_id = server.app_id(&app.token).await?;
    let store = server.running.store.clone();
    for r in 0..rooms {
        let m = room_members(r);
        store
            .execute(Command::CreateGroup(CreateGroup {
                app: app_id,
                actor: Some(UserId(user(m[0]))),
                name: Some(format!("room {r}")),
                image_url: None,
                visibility: Visibility::Private,
                alias: None,
                members: vec![UserId(user(m[1])), UserId(user(m[2]))],
            }))
            .await?;
    }

    eprintln!(
        "[search] filling {} messages over {rooms} rooms through the store",
        thousands(messages)
    );
    let fill_start = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(15)).await;
                let n = done.load(Ordering::Relaxed);
                let s = fill_start.elapsed().as_secs_f64();
                eprintln!(
                    "[search]   {} after {s:.0} s ({:.0}/s)",
                    thousands(n),
                    n as f64 / s
                );
            }
        })
    };
    let mut set = JoinSet::new();
    let workers = FILLERS.min(messages.max(1));
    for w in 0..workers {
        let (store, done, corpus) = (store.clone(), done.clone(), corpus.clone());
        set.spawn(async move {
            let mut i = w;
            while i < messages {
                let r = (i % rooms as u64) as usize;
                let sender = user(room_members(r)[(i / rooms as u64 % 3) as usize]);
                store_send(&store, app_id, &sender, r as i64 + 1, corpus.message(i)).await?;
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
        "[search] filled in {:.1} s ({:.0} messages/s, with the indexer running)",
        fill.as_secs_f64(),
        messages as f64 / fill.as_secs_f64()
    );
    let settle_start = Instant::now();
    store.settle().await?;
    let settled = settle_start.elapsed();
    eprintln!(
        "[search] the index caught up {:.1} s after the last send",
        settled.as_secs_f64()
    );

    let w = &corpus.words;
    let fragment: String = w[3].chars().skip(1).take(3).collect();
    let fragment = if fragment.chars().count() == 3 {
        fragment
    } else {
        w[3].chars().take(3).collect()
    };
    let cases = [
        Case {
            name: "rare word",
            term: w[VOCABULARY * 3 / 4].clone(),
        },
        Case {
            name: "common word",
            term: w[1].clone(),
        },
        Case {
            name: "3-letter fragment",
            term: fragment,
        },
    ];

    let mut t = Table::new(format!(
        "search on {}: {} messages in {rooms} rooms (Zipf corpus, {VOCABULARY} words), newest \
         first, limit 20, {} sequential requests per case over HTTP",
        kind.name(),
        thousands(messages),
        opts.queries
    ));
    // Issue 2's target for SQLite, issue 11's for PostgreSQL.
    let max_p95 = match kind {
        StoreKind::Sqlite => Duration::from_millis(10),
        StoreKind::Postgres => Duration::from_millis(20),
    };
    let mut rng = Rng(42);
    for scope in ["one room", "all my rooms"] {
        for case in &cases {
            let mut lat = Vec::with_capacity(opts.queries);
            let mut hits = 0usize;
            for _ in 0..opts.queries {
                let r = rng.below(rooms as u64) as usize;
                let owner = room_members(r)[0];
                let path = if scope == "one room" {
                    format!("/v1/rooms/{}/search", r + 1)
                } else {
                    "/v1/search".to_owned()
                };
                let t0 = Instant::now();
                let resp = server
                    .client
                    .get(server.url(&format!("{path}?limit=20&q={}", percent(&case.term))))
                    .header(AUTHORIZATION, format!("Bearer {}", tokens[owner]))
                    .send()
                    .await?;
                let status = resp.status();
                let body: Value = resp.json().await?;
                lat.push(t0.elapsed());
                if status != StatusCode::OK {
                    bail!("{path}: {status} {body}");
                }
                hits += body["hits"].as_array().context("no hits")?.len();
            }
            let s = Samples::new(lat);
            let p95 = s.pct(95.0);
            t.check(
                &format!("{scope}, {} '{}': p95", case.name, case.term),
                format!(
                    "{} (p50 {}, {:.1} hits/req)",
                    ms(p95),
                    ms(s.pct(50.0)),
                    hits as f64 / opts.queries as f64
                ),
                &format!("<= {}", ms(max_p95)),
                p95 <= max_p95,
            );
        }
    }
    let my_rooms = (0..rooms).filter(|r| room_members(*r).contains(&0)).count();
    t.note(format!(
        "each user is in about {my_rooms} rooms; fill: {:.0} messages/s with the indexer \
         running; the index caught up {:.1} s after the last send (searches before that read \
         the not yet indexed messages directly)",
        messages as f64 / fill.as_secs_f64(),
        settled.as_secs_f64()
    ));
    server.stop().await?;

    // The index-cost comparison runs SQLite stores with and without their indexer; the
    // PostgreSQL store has no separate index to switch off.
    if kind == StoreKind::Postgres {
        return Ok(vec![t]);
    }
    let sends = index_cost(opts, &corpus).await?;
    Ok(vec![t, sends])
}

/// One store in a temp dir, with or without the background search indexer.
async fn bench_store(
    dir: &std::path::Path,
    with_index: bool,
) -> anyhow::Result<(Arc<SqliteStore>, AppId)> {
    let path = dir.join(if with_index { "with.db" } else { "without.db" });
    let options = Options {
        search_index: with_index,
        ..Options::default()
    };
    let store = Arc::new(SqliteStore::open(&path, options)?);
    let created = store
        .execute(Command::CreateApp(CreateApp {
            name: "idx".into(),
            token: "idx".into(),
            secret_hash: "idx".into(),
            signing_key: "idx".into(),
        }))
        .await?;
    let confab_core::Outcome::App(app) = created else {
        bail!("expected an app, got {created:?}");
    };
    let app = app.id;
    for s in 0..SENDERS {
        store
            .execute(Command::UpsertUser(UpsertUser {
                app,
                user: UserId(format!("u{s}")),
                name: None,
                image_url: None,
                email: None,
            }))
            .await?;
    }
    for r in 0..ROOMS {
        store
            .execute(Command::CreateGroup(CreateGroup {
                app,
                actor: Some(UserId("u0".into())),
                name: None,
                image_url: None,
                visibility: Visibility::Private,
                alias: None,
                members: (1..SENDERS)
                    .filter(|s| s % ROOMS == r)
                    .map(|s| UserId(format!("u{s}")))
                    .collect(),
            }))
            .await?;
    }
    Ok((store, app))
}

const SENDERS: usize = 64;
const ROOMS: usize = 16;

async fn send_rate(
    store: &Arc<SqliteStore>,
    app: AppId,
    corpus: &Arc<Corpus>,
    for_: Duration,
) -> anyhow::Result<f64> {
    let measure_from = Instant::now() + Duration::from_millis(500);
    let end = measure_from + for_;
    let mut set = JoinSet::new();
    for s in 0..SENDERS {
        let (store, corpus) = (store.clone(), corpus.clone());
        set.spawn(async move {
            closed_loop(measure_from, end, |i| {
                let (store, corpus) = (&store, &corpus);
                async move {
                    let room = if s == 0 { 1 } else { (s % ROOMS) as i64 + 1 };
                    store_send(
                        store,
                        app,
                        &format!("u{s}"),
                        room,
                        corpus.message(i * 64 + s as u64),
                    )
                    .await
                    .map_err(|e| e.to_string())
                }
            })
            .await
        });
    }
    let m = gather(set, measure_from).await?;
    if m.errors > 0 {
        bail!("{} sends failed, first: {:?}", m.errors, m.first_error);
    }
    Ok(m.per_sec)
}

/// Sends per second into stores with and without the index, alternating rounds so both see
/// the same machine; reports the medians and their ratio. The indexer runs at a low priority
/// and may fall behind during a round, so each round with the index also waits until the index
/// has caught up (and finished merging) and counts that time: the sustained rate is what the
/// machine can keep up with, sends and indexing together.
async fn index_cost(opts: &Opts, corpus: &Arc<Corpus>) -> anyhow::Result<Table> {
    let dir = tempfile::tempdir()?;
    let (with, app_with) = bench_store(dir.path(), true).await?;
    let (without, app_without) = bench_store(dir.path(), false).await?;
    let round = Duration::from_secs_f64(opts.raw_seconds);
    let (mut during, mut sustained, mut base) = (Vec::new(), Vec::new(), Vec::new());
    let (mut catchups, mut cpu) = (Vec::new(), Vec::new());
    for i in 0..3 {
        eprintln!(
            "[search] index cost, round {}: sends with and without the index",
            i + 1
        );
        base.push(send_rate(&without, app_without, corpus, round).await?);
        let sent_before = with.app_stats(app_with).await?.messages_count;
        let cpu_before = crate::cpu::snapshot();
        let started = Instant::now();
        let rate = send_rate(&with, app_with, corpus, round).await?;
        let sending = started.elapsed();
        with.settle().await?;
        let catchup = started.elapsed() - sending;
        let sent = with.app_stats(app_with).await?.messages_count - sent_before;
        cpu.push(crate::cpu::per_unit(
            &cpu_before,
            &crate::cpu::snapshot(),
            sent.max(0) as u64,
        ));
        during.push(rate);
        // The same messages, had the round lasted until the index caught up.
        sustained.push(rate * round.as_secs_f64() / (round + catchup).as_secs_f64());
        catchups.push(catchup);
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mb, md, ms) = (median(&base), median(&during), median(&sustained));
    let ratio = ms / mb;
    let mut t = Table::new(format!(
        "search index cost on durable sends: {SENDERS} senders, {ROOMS} rooms, store only (no \
         HTTP), 3 alternating rounds of {:.0} s each, medians",
        opts.raw_seconds
    ));
    t.info("sends/s without the index", rate(mb, "msg/s"));
    t.info(
        "sends/s with the index, during the round",
        rate(md, "msg/s"),
    );
    t.info(
        "sends/s with the index, sustained (round + index catch-up)",
        rate(ms, "msg/s"),
    );
    t.check(
        "sustained with / without",
        format!("{ratio:.2} (during the round: {:.2})", md / mb),
        ">= 0.80",
        ratio >= 0.8,
    );
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    t.note(format!(
        "rounds without: {}; with, during: {}; with, sustained: {}; catch-up after each round: {}",
        list(&base),
        list(&during),
        list(&sustained),
        catchups
            .iter()
            .map(|d| format!("{:.2} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    t.note(format!(
        "CPU per message with the index: {}",
        cpu.join("; ")
    ));
    Ok(t)
}
