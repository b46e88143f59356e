//! CPU time of this process's threads, grouped by thread name, from `/proc/self/task/*/stat`.
//! Throughput on this shared 2-core machine moves by ±10 % from run to run; CPU time per request,
//! split between the writer, the search indexer and the runtime's threads (HTTP server, load
//! generator and blocking pool together), says where the work goes and moves much less.

use std::collections::BTreeMap;
use std::time::Duration;

/// Clock ticks per second of `utime`/`stime` (USER_HZ, 100 on Linux/x86).
const TICKS_PER_SEC: f64 = 100.0;

/// Ticks (user + system) per thread name, dead threads excluded.
#[derive(Clone, Default)]
pub struct Snapshot(BTreeMap<String, u64>);

pub fn snapshot() -> Snapshot {
    let mut by_name = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Snapshot(by_name);
    };
    for task in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ..."; comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the comm: state is field 3 (index 0 here); utime and stime are fields 14, 15.
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        *by_name.entry(name).or_insert(0) += ticks(11) + ticks(12);
    }
    Snapshot(by_name)
}

/// CPU used between two snapshots, per thread name, divided by `count` (e.g. requests served):
/// `total X µs (writer a, indexer b, runtime c, other d)`.
pub fn per_unit(before: &Snapshot, after: &Snapshot, count: u64) -> String {
    let mut groups: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, t) in &after.0 {
        let used = t.saturating_sub(before.0.get(name).copied().unwrap_or(0));
        let group = match name.as_str() {
            "confab-sqlite-w" | "confab-pg-write" => "writer",
            "confab-search-i" => "indexer",
            n if n.starts_with("tokio") => "runtime",
            _ => "other",
        };
        *groups.entry(group).or_insert(0) += used;
    }
    let us = |ticks: u64| {
        Duration::from_secs_f64(ticks as f64 / TICKS_PER_SEC).as_secs_f64() * 1e6
            / count.max(1) as f64
    };
    let total: u64 = groups.values().sum();
    let parts: Vec<String> = ["runtime", "writer", "indexer", "other"]
        .iter()
        .filter_map(|g| groups.get(g).map(|t| format!("{g} {:.1}", us(*t))))
        .collect();
    format!("{:.1} µs ({})", us(total), parts.join(", "))
}

/// A snapshot taken at `when` (the start of a measured window), by a task.
pub fn snapshot_at(when: std::time::Instant) -> tokio::task::JoinHandle<Snapshot> {
    tokio::spawn(async move {
        tokio::time::sleep_until(when.into()).await;
        snapshot()
    })
}
