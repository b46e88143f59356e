//! PostgreSQL for the benchmarks: a fresh database per server under test (made with a random
//! name, dropped at the end), the WAL it generates, the CPU of the PostgreSQL processes, and the
//! raw baseline: batched inserts with one commit (one WAL flush) per transaction, with nothing
//! of Confab in the way.
//!
//! Everything here uses the synchronous `postgres` client on threads of its own, like the
//! store's writer does, so it never blocks an async worker.

use anyhow::{Context, bail};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::message_text;
use crate::raw::RawRate;

/// The server part of a URL (`postgres://USER@HOST:PORT`), without a database name or
/// parameters, so a database name can be appended.
fn server_part(url: &str) -> anyhow::Result<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("'{url}' is not a postgres:// URL");
    };
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    if !host.contains('@') {
        bail!("the PostgreSQL URL must name its user (postgres://USER@HOST:PORT)");
    }
    Ok(format!("{scheme}://{host}"))
}

/// Runs `f` with a fresh connection to `url`, on a thread of its own: the synchronous client
/// runs its own small runtime and must not be called from an async worker.
pub fn with_client<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(&mut postgres::Client) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .with_context(|| format!("cannot connect to {url}"))?;
        f(&mut client)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("a PostgreSQL helper thread panicked"))?
}

/// A database made for one run; dropped (connections and all) when this value goes.
pub struct TempDb {
    admin: String,
    pub name: String,
    /// The URL of the new database, for `Config.database`.
    pub url: String,
}

impl TempDb {
    /// Creates `confab_bench_<pid>_<nanos>` on the server of `url`.
    pub fn create(url: &str) -> anyhow::Result<TempDb> {
        let server = server_part(url)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("confab_bench_{}_{nanos}", std::process::id());
        let admin = format!("{server}/postgres");
        let sql = format!("CREATE DATABASE {name}");
        with_client(&admin, move |c| {
            c.batch_execute(&sql).context("CREATE DATABASE")?;
            Ok(())
        })?;
        Ok(TempDb {
            url: format!("{server}/{name}"),
            admin,
            name,
        })
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        // FORCE ends the connections a stopped store may still hold (its pool, its writer).
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = with_client(&self.admin, move |c| Ok(c.batch_execute(&sql)?)) {
            eprintln!("could not drop database {}: {e:#}", self.name);
        }
    }
}

/// WAL generated so far by the whole cluster, in bytes (`pg_current_wal_insert_lsn`). Exact
/// at any instant, unlike `pg_stat_wal`, whose counters backends flush at most once a second.
pub fn wal_position(url: &str) -> anyhow::Result<u64> {
    with_client(url, |c| {
        let row = c.query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint",
            &[],
        )?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    })
}

/// CPU ticks (user + system) of every process named `postgres` on this machine: the
/// database's share of the two cores during a window (other users of the cluster included).
pub fn postgres_ticks() -> u64 {
    process_ticks("postgres")
}

/// CPU ticks (user + system) of every process of this name (`comm`) on this machine.
pub fn process_ticks(name: &str) -> u64 {
    let mut total = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != name {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        total += ticks(11).unwrap_or(0) + ticks(12).unwrap_or(0);
    }
    total
}

/// The machine's CPU ticks so far: (busy, total), from the first line of `/proc/stat`.
pub fn machine_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// Message-sized rows keyed like the store's items (app, room, seq).
const TABLE: &str = "CREATE TABLE IF NOT EXISTS raw_items (
    app bigint NOT NULL, room bigint NOT NULL, seq bigint NOT NULL, sender text NOT NULL,
    text text NOT NULL, created_at bigint NOT NULL, PRIMARY KEY (app, room, seq))";

/// One set-based statement per batch: one round trip and, in autocommit, one commit.
const INSERT: &str = "INSERT INTO raw_items
    SELECT 1, 1, s, u, t, c FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[])
    AS x(s, u, t, c)";

fn insert_rows(
    c: &mut postgres::Client,
    stmt: &postgres::Statement,
    first: i64,
    senders: &[usize],
) -> anyhow::Result<()> {
    let seqs: Vec<i64> = (0..senders.len() as i64).map(|i| first + i).collect();
    let users: Vec<String> = senders.iter().map(|s| format!("u{s}")).collect();
    let texts: Vec<String> = senders
        .iter()
        .zip(&seqs)
        .map(|(s, q)| message_text(*s, *q as u64))
        .collect();
    c.execute(stmt, &[&seqs, &users, &texts, &seqs])?;
    Ok(())
}

/// `producers` threads each submit one row and wait until it is committed; one writer thread
/// takes whatever is queued (at most `max_batch`) and commits it with one statement: the
/// store's group commit with everything but PostgreSQL taken away.
pub fn group_commit(
    url: &str,
    producers: usize,
    max_batch: usize,
    run_for: Duration,
) -> anyhow::Result<RawRate> {
    let url = url.to_owned();
    let (tx, rx) = mpsc::sync_channel::<(usize, mpsc::SyncSender<()>)>(4096);
    // The clock starts once the writer is connected and ready.
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Instant>(1);
    let writer = std::thread::spawn(move || -> anyhow::Result<RawRate> {
        let mut c = postgres::Client::connect(&url, postgres::NoTls)?;
        c.batch_execute(TABLE)?;
        c.batch_execute("TRUNCATE raw_items")?;
        let stmt = c.prepare(INSERT)?;
        let start = Instant::now();
        if ready_tx.send(start).is_err() {
            bail!("nobody waits for the raw writer");
        }
        let (mut rows, mut commits) = (0u64, 0u64);
        let mut batch = Vec::with_capacity(max_batch);
        while let Ok(first) = rx.recv() {
            batch.push(first);
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            let senders: Vec<usize> = batch.iter().map(|(p, _)| *p).collect();
            insert_rows(&mut c, &stmt, rows as i64 + 1, &senders)?;
            rows += batch.len() as u64;
            commits += 1;
            for (_, ack) in batch.drain(..) {
                let _ = ack.send(());
            }
        }
        Ok(RawRate {
            rows,
            commits,
            elapsed: start.elapsed(),
        })
    });
    let mut handles = Vec::with_capacity(producers);
    // A writer that failed to start drops `ready_tx`: its error comes out of `join` below.
    if let Ok(start) = ready_rx.recv() {
        let end = start + run_for;
        for p in 0..producers {
            let tx = tx.clone();
            handles.push(std::thread::spawn(move || {
                let (ack_tx, ack_rx) = mpsc::sync_channel::<()>(1);
                while Instant::now() < end {
                    if tx.send((p, ack_tx.clone())).is_err() || ack_rx.recv().is_err() {
                        break;
                    }
                }
            }));
        }
    }
    drop(tx);
    let result = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the raw writer panicked"))?;
    for h in handles {
        let _ = h.join();
    }
    result
}

/// One thread, `batch` rows per statement (one commit each), back to back.
pub fn batched(url: &str, batch: usize, run_for: Duration) -> anyhow::Result<RawRate> {
    with_client(url, move |c| {
        c.batch_execute(TABLE)?;
        c.batch_execute("TRUNCATE raw_items")?;
        let stmt = c.prepare(INSERT)?;
        let senders: Vec<usize> = (0..batch).collect();
        let start = Instant::now();
        let (mut rows, mut commits) = (0u64, 0u64);
        while start.elapsed() < run_for {
            insert_rows(c, &stmt, rows as i64 + 1, &senders)?;
            rows += batch as u64;
            commits += 1;
        }
        Ok(RawRate {
            rows,
            commits,
            elapsed: start.elapsed(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::server_part;

    #[test]
    fn the_database_name_is_replaced() {
        let s = |u| server_part(u).ok();
        assert_eq!(
            s("postgres://postgres@127.0.0.1:5432").as_deref(),
            Some("postgres://postgres@127.0.0.1:5432")
        );
        assert_eq!(
            s("postgres://postgres@127.0.0.1:5432/other?sslmode=disable").as_deref(),
            Some("postgres://postgres@127.0.0.1:5432")
        );
        assert_eq!(s("postgres://127.0.0.1/x"), None);
    }
}
