//! Durable sends spread over many rooms: the same 64 senders into one room, over 64 rooms and
//! over 1,000 rooms, on each store of the run, with the bytes each message costs the disk.
//!
//! Bytes written: for SQLite, the growth of this process's `write_bytes` in `/proc/self/io`
//! (what the kernel sent, or will send, to the disk for us: WAL frames, checkpoints and the
//! search index; nothing else in this process writes files); for PostgreSQL, the WAL generated
//! (`pg_current_wal_insert_lsn` before and after: full-page images included, data pages written
//! later by the checkpointer not included; cluster-wide, so another user of the server would be
//! counted too). Both are read at the start of the window and after the store has settled
//! (the SQLite indexer catches up after the window), and divided by the messages of the window.

use crate::harness::{Server, StoreKind, message_text};
use crate::sends::{closed_loop, gather, post_message, send_targets};
use crate::stats::{Table, ms, rate, thousands};
use crate::{Opts, blocking, pg};
use anyhow::Context;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// The spreads measured, in rooms; the first is the reference.
const SPREADS: [usize; 3] = [1, 64, 1000];

/// What one spread measured.
struct Spread {
    rooms: usize,
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    messages: u64,
    errors: u64,
    first_error: Option<String>,
    bytes: u64,
}

/// Reads the bytes written so far, by the store's own measure.
#[derive(Clone)]
enum Meter {
    Io,
    Wal(String),
}

impl Meter {
    async fn read(&self) -> anyhow::Result<u64> {
        match self {
            Meter::Io => {
                let io = std::fs::read_to_string("/proc/self/io").context("/proc/self/io")?;
                io.lines()
                    .find_map(|l| l.strip_prefix("write_bytes:"))
                    .and_then(|v| v.trim().parse().ok())
                    .context("no write_bytes in /proc/self/io")
            }
            Meter::Wal(url) => {
                let url = url.clone();
                blocking(move || pg::wal_position(&url)).await
            }
        }
    }
}

/// Each room's owner (a sender index) and further members (user ids).
type Groups = Vec<(usize, Vec<String>)>;

/// Which rooms each sender posts into, in turn: with at least as many rooms as senders, room
/// `r` belongs to sender `r % senders` alone; with fewer, sender `s` is a member of room
/// `s % rooms`.
fn plan(senders: usize, rooms: usize) -> (Groups, Vec<Vec<usize>>) {
    let mut groups = Vec::with_capacity(rooms);
    let mut of_sender = vec![Vec::new(); senders];
    for r in 0..rooms {
        let owner = r % senders;
        let members: Vec<String> = (0..senders)
            .filter(|s| rooms < senders && s % rooms == r && *s != owner)
            .map(|s| format!("s{s}"))
            .collect();
        groups.push((owner, members));
    }
    for (s, mine) in of_sender.iter_mut().enumerate() {
        if rooms >= senders {
            mine.extend((0..rooms).filter(|r| r % senders == s));
        } else {
            mine.push(s % rooms);
        }
    }
    (groups, of_sender)
}

async fn spread(opts: &Opts, kind: StoreKind, rooms: usize) -> anyhow::Result<Spread> {
    let senders = opts.senders.max(1);
    eprintln!(
        "[rooms] {}: {senders} senders over {rooms} rooms: setting up",
        kind.name()
    );
    let server = Server::start_on(kind, &opts.pg).await?;
    let meter = match server.database() {
        Some(db) => Meter::Wal(db.url.clone()),
        None => Meter::Io,
    };
    let app = server.app("bench-rooms").await?;
    let tokens = server.users(&app, "s", senders).await?;
    let (groups, of_sender) = plan(senders, rooms);
    let mut numbers = Vec::with_capacity(rooms);
    for (owner, members) in &groups {
        numbers.push(server.group(&tokens[*owner], members).await?);
    }

    let measure_from = Instant::now() + Duration::from_secs_f64(opts.warmup);
    let end = measure_from + Duration::from_secs_f64(opts.seconds);
    let bytes_from = {
        let meter = meter.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            meter.read().await
        })
    };
    let mut set = JoinSet::new();
    for (s, token) in tokens.iter().enumerate() {
        let urls: Vec<String> = of_sender[s]
            .iter()
            .map(|r| server.url(&format!("/v1/rooms/{}/messages", numbers[*r])))
            .collect();
        let client = server.client.clone();
        let auth = format!("Bearer {token}");
        set.spawn(async move {
            closed_loop(measure_from, end, |i| {
                let body = serde_json::json!({ "text": message_text(s, i) }).to_string();
                let url = &urls[i as usize % urls.len()];
                let (client, auth) = (&client, &auth);
                async move { post_message(client, url, auth, body).await }
            })
            .await
        });
    }
    let http = gather(set, measure_from).await?;
    server.running.store.settle().await?;
    let bytes = meter.read().await?.saturating_sub(bytes_from.await??);
    server.stop().await?;
    Ok(Spread {
        rooms,
        per_sec: http.per_sec,
        p50: http.samples.pct(50.0),
        p99: http.samples.pct(99.0),
        messages: http.samples.len() as u64,
        errors: http.errors,
        first_error: http.first_error,
        bytes,
    })
}

pub async fn run(opts: &Opts) -> anyhow::Result<Table> {
    let senders = opts.senders.max(1);
    let mut t = Table::new(format!(
        "sends spread over rooms: {senders} senders over HTTP, durable, {:.0} s per spread, \
         a fresh server (and database) per spread",
        opts.seconds
    ));
    for kind in opts.stores() {
        let name = kind.name();
        let mut one_room = None;
        for rooms in SPREADS {
            let s = spread(opts, kind, rooms).await?;
            let per_msg = s.bytes as f64 / s.messages.max(1) as f64;
            let base = *one_room.get_or_insert(s.per_sec);
            let ratio = s.per_sec / base;
            let figure = format!(
                "{} (x{ratio:.2}), p50 / p99 {} / {}, {:.1} KB written per message",
                rate(s.per_sec, "msg/s"),
                ms(s.p50),
                ms(s.p99),
                per_msg / 1000.0
            );
            let label = format!(
                "{name}, {} room{}",
                s.rooms,
                if s.rooms == 1 { "" } else { "s" }
            );
            if s.rooms >= 1000 {
                t.check(&label, figure, ">= x0.70 of one room", ratio >= 0.7);
            } else if s.rooms == 1 {
                let target = send_targets(kind);
                t.check(
                    &label,
                    figure,
                    &format!(">= {}", rate(target.per_sec, "msg/s")),
                    s.per_sec >= target.per_sec,
                );
            } else {
                t.info(&label, figure);
            }
            if s.errors > 0 {
                t.check(&format!("{label}: errors"), thousands(s.errors), "0", false);
                if let Some(e) = s.first_error {
                    t.note(format!("{label}: first error: {e}"));
                }
            }
        }
    }
    t.note(
        "bytes written per message: SQLite, this process's write_bytes (/proc/self/io); \
         PostgreSQL, WAL generated (pg_current_wal_insert_lsn, whole cluster); from the start \
         of the window until the store has settled, over the window's messages",
    );
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::plan;

    #[test]
    fn every_sender_can_post_into_its_rooms() {
        for (senders, rooms) in [(64, 1), (64, 64), (64, 1000), (8, 3)] {
            let (groups, of_sender) = plan(senders, rooms);
            assert_eq!(groups.len(), rooms);
            for (s, mine) in of_sender.iter().enumerate() {
                assert!(!mine.is_empty());
                for r in mine {
                    let (owner, members) = &groups[*r];
                    assert!(*owner == s || members.contains(&format!("s{s}")));
                }
            }
            let covered: usize = of_sender.iter().map(Vec::len).sum();
            assert!(covered >= rooms);
        }
    }
}
