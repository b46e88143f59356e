//! `cluster-idle`: `--idle-connections` (50,000) authenticated WebSocket connections of users
//! in no room, dealt over the nodes (each a `confab serve` process with its file limit raised
//! to the hard one), opened in two halves by client workers. Per node: resident memory after
//! minus before, over the node's connections; and what the second half added per connection,
//! to show whether the cost stays flat.

use super::clients::{Plan, Workers, deal};
use super::node::file_limits;
use super::{Cluster, quiesce_all};
use crate::Opts;
use crate::stats::{Table, thousands};
use crate::ws::proc::rss;
use std::time::Instant;

/// Files a node holds besides its connections: the server keeps a quarter of its limit, at
/// most 256, in reserve (`max_connections = 0`), and the node has its PostgreSQL pool, NATS,
/// log and epoll besides.
const NODE_RESERVE: u64 = 256 + 64;

/// Files a client worker holds besides its connections.
const WORKER_RESERVE: u64 = 64;

/// Connections per worker at most, whatever the file limit: well inside the ephemeral port
/// range of its source address (32768–60999 here).
const WORKER_MAX: u64 = 10_000;

pub async fn run(opts: &Opts) -> anyhow::Result<Table> {
    let nodes = opts.cluster.nodes.max(1);
    let (soft, hard) = file_limits();
    let per_node_cap = hard.saturating_sub(NODE_RESERVE);
    let wanted = opts.cluster.idle_connections as u64;
    let total = wanted.min(per_node_cap * nodes as u64);
    let per_node = total.div_ceil(nodes as u64);
    // Two workers per node at least, so the memory is read half-way too.
    let worker_cap = soft.saturating_sub(WORKER_RESERVE).clamp(1, WORKER_MAX);
    let per_worker = per_node.div_ceil(2).clamp(1, worker_cap);

    eprintln!("[cluster-idle] starting {nodes} nodes");
    let cluster = Cluster::start(opts, nodes).await?;
    eprintln!("[cluster-idle] creating {} users", thousands(total));
    let tokens = cluster.users("i", total as usize).await?;
    let addrs: Vec<String> = cluster.nodes.iter().map(|n| n.addr.clone()).collect();
    let pids = cluster.pids();
    quiesce_all(&pids).await;
    let before = rss_all(&pids)?;

    // Each node's first worker, then the rest.
    let mut seen = vec![false; nodes];
    let (first, rest): (Vec<Plan>, Vec<Plan>) = deal(&tokens, &addrs, nodes, per_worker as usize)
        .into_iter()
        .partition(|p| !std::mem::replace(&mut seen[p.node], true));
    let first_len = first.len();
    eprintln!(
        "[cluster-idle] opening {} connections over {nodes} nodes from {} worker processes",
        thousands(total),
        first_len + rest.len()
    );
    let started = Instant::now();
    let half = Workers::open(first, 0).await?;
    quiesce_all(&pids).await;
    let mid = rss_all(&pids)?;
    let other = Workers::open(rest, first_len).await?;
    let opened_in = started.elapsed();
    quiesce_all(&pids).await;
    let after = rss_all(&pids)?;

    let connected = half.total() + other.total();
    let mut t = Table::new(format!(
        "cluster-idle: {} idle authenticated connections (users in no room) over {nodes} nodes",
        thousands(connected)
    ));
    for node in 0..nodes {
        let (h, o) = (half.ready_on(node), other.ready_on(node));
        let per = after[node].saturating_sub(before[node]) as f64 / (h + o).max(1) as f64;
        t.check(
            &format!(
                "node {}: {} connections: RSS per connection",
                (b'A' + node as u8) as char,
                thousands(h + o)
            ),
            format!(
                "{:.2} KiB ({} MiB → {} MiB)",
                per / 1024.0,
                before[node] >> 20,
                after[node] >> 20
            ),
            "≤ 8 KiB",
            per <= 8192.0 && h + o > 0,
        );
        if o > 0 {
            let marginal = after[node].saturating_sub(mid[node]) as f64 / o as f64;
            t.info(
                &format!(
                    "node {}: {} → {}: RSS per added connection",
                    (b'A' + node as u8) as char,
                    thousands(h),
                    thousands(h + o)
                ),
                format!("{:.2} KiB", marginal / 1024.0),
            );
        }
    }
    t.check(
        "connections authenticated / asked for",
        format!("{} / {}", thousands(connected), thousands(wanted)),
        "all",
        connected == wanted,
    );
    t.info(
        "opening and authenticating them (all nodes at once)",
        format!(
            "{:.1} s ({:.0}/s)",
            opened_in.as_secs_f64(),
            connected as f64 / opened_in.as_secs_f64().max(1e-9)
        ),
    );
    if total < wanted {
        t.note(format!(
            "{} connections do not fit here: each node may hold {hard} files (hard limit) less \
             {NODE_RESERVE} of its own, {} per node",
            thousands(wanted),
            thousands(per_node_cap)
        ));
    }
    t.note(cluster.describe());
    cluster.stop();
    half.finish();
    other.finish();
    Ok(t)
}

/// Resident memory of each of `pids`, in bytes.
fn rss_all(pids: &[u32]) -> anyhow::Result<Vec<u64>> {
    pids.iter().map(|p| rss(*p)).collect()
}
