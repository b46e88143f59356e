//! `cluster-fanout`: one public room of `--ws-members` (10,000) members, member `i` connected
//! to node `i % nodes`, and a sender POSTing to node A. First 10 messages/s for `--seconds`:
//! per message, the time from the POST to the last of its deliveries on any node (p50, p99,
//! max, and per node); then `--ws-rate` (25) messages/s: deliveries per second sustained. Then
//! the same members reconnect, all to node A, and both runs are repeated: the one-node figures
//! of the same run, on the same database, NATS and binary.

use super::clients::{Workers, deal};
use super::{Cluster, cpu_of, per_delivery, quiesce_all};
use crate::Opts;
use crate::stats::{Samples, Table, ms, rate, thousands};
use crate::ws::{Http, drive, report, settle};
use std::time::Duration;

/// Connections per worker process (one worker per node with the default 10,000 members).
const PER_WORKER: usize = 5_000;

/// Message ids of each run: the workers keep figures for ids below 100,000.
const SLOW_IDS: [usize; 2] = [0, 50_000];
const FAST_IDS: [usize; 2] = [25_000, 75_000];

/// The presence grace of the nodes (default 5 s) and a margin: users whose connections closed
/// go offline (and have `last_seen_at` written) this long after.
const GRACE: Duration = Duration::from_secs(6);

/// What one placement of the members measured.
struct Placement {
    /// Send → last delivery, per message at 10/s.
    slow: Samples,
    slow_complete: bool,
    /// Per node with members: (node, members there, send → last delivery on it p99).
    slow_nodes: Vec<(usize, u64, Duration)>,
    /// Server and client CPU per delivery at 10/s (µs).
    slow_cpu: (f64, f64),
    fast_dps: f64,
    fast_delivered: u64,
    fast_expected: u64,
    fast_closed: u64,
    /// Changes out of order on a connection, both rates.
    disorder: u64,
    fast: Samples,
    fast_cpu: (f64, f64),
}

pub async fn run(opts: &Opts) -> anyhow::Result<Table> {
    let members = opts.ws_members;
    let nodes = opts.cluster.nodes.max(1);
    eprintln!("[cluster-fanout] starting {nodes} nodes");
    let cluster = Cluster::start(opts, nodes).await?;
    eprintln!("[cluster-fanout] {members} members join one room");
    let tokens = cluster.users("m", members).await?;
    let sender = cluster.users("sender", 1).await?.remove(0);
    let ids: Vec<String> = (0..members).map(|i| format!("m{i}")).collect();
    let room = cluster.room("sender0", &ids).await?;
    let addrs: Vec<String> = cluster.nodes.iter().map(|n| n.addr.clone()).collect();

    eprintln!("[cluster-fanout] connecting the members to {nodes} nodes");
    let plans = deal(&tokens, &addrs, nodes, PER_WORKER);
    let first_src = 0;
    let next_src = plans.len();
    let mut workers = Workers::open(plans, first_src).await?;
    let spread_ready: Vec<u64> = (0..nodes).map(|n| workers.ready_on(n)).collect();
    let spread = placement(&cluster, &mut workers, room, &sender, 0, opts).await?;
    workers.finish();

    eprintln!("[cluster-fanout] the same members, all on node A");
    tokio::time::sleep(GRACE).await;
    quiesce_all(&cluster.pids()).await;
    let mut plans = deal(&tokens, &addrs, nodes, PER_WORKER);
    for p in plans.iter_mut() {
        p.node = 0;
        p.addr = addrs[0].clone();
    }
    let mut workers = Workers::open(plans, next_src).await?;
    let one_ready = workers.total();
    let one = placement(&cluster, &mut workers, room, &sender, 1, opts).await?;
    workers.finish();

    let mut t = Table::new(format!(
        "cluster-fanout: {} members of one room, a sender on node A (HTTP), {:.0} s per rate",
        thousands(members as u64),
        opts.seconds
    ));
    let per_node: Vec<String> = spread_ready.iter().map(|r| thousands(*r)).collect();
    t.info(
        &format!("connected on nodes {}", node_names(nodes)),
        per_node.join(" / "),
    );
    let lat = |s: &Samples| {
        format!(
            "{} / {} / {}",
            ms(s.pct(50.0)),
            ms(s.pct(99.0)),
            ms(s.max())
        )
    };
    t.check(
        &format!("{nodes} nodes, 10 msg/s: send → last delivery p50 / p99 / max"),
        lat(&spread.slow),
        "p99 ≤ 150 ms",
        spread.slow.pct(99.0) <= Duration::from_millis(150) && spread.slow_complete,
    );
    t.info(
        &format!(
            "1 node ({} connected on A), 10 msg/s: send → last delivery p50 / p99 / max",
            thousands(one_ready)
        ),
        lat(&one.slow),
    );
    let by_node: Vec<String> = spread
        .slow_nodes
        .iter()
        .map(|(n, c, p99)| format!("{}: {} ({})", node_name(*n), ms(*p99), thousands(*c)))
        .collect();
    t.info(
        &format!("{nodes} nodes, 10 msg/s: p99 of the last delivery on each node (members)"),
        by_node.join(", "),
    );
    t.info(
        "10 msg/s: every member got every message (nodes / one node)",
        format!("{} / {}", spread.slow_complete, one.slow_complete),
    );
    t.info(
        "changes out of order on a connection, both rates (nodes / one node)",
        format!("{} / {}", spread.disorder, one.disorder),
    );
    t.info(
        "CPU per delivery at 10 msg/s, all nodes / clients (nodes; one node)",
        format!(
            "{:.2} / {:.2} µs; {:.2} / {:.2} µs",
            spread.slow_cpu.0, spread.slow_cpu.1, one.slow_cpu.0, one.slow_cpu.1
        ),
    );
    let r = opts.ws_rate;
    t.info(
        &format!("{nodes} nodes, {r} msg/s: deliveries/s sustained"),
        rate(spread.fast_dps, "/s"),
    );
    t.info(
        &format!("1 node, {r} msg/s: deliveries/s sustained"),
        rate(one.fast_dps, "/s"),
    );
    t.info(
        &format!("{r} msg/s: nodes / one node, ratio"),
        format!("x{:.2}", spread.fast_dps / one.fast_dps.max(1e-9)),
    );
    for (label, p) in [(format!("{nodes} nodes"), &spread), ("1 node".into(), &one)] {
        t.info(
            &format!("{label}, {r} msg/s: delivered / expected, cut off"),
            format!(
                "{} / {}, {}",
                thousands(p.fast_delivered),
                thousands(p.fast_expected),
                p.fast_closed
            ),
        );
        t.info(
            &format!("{label}, {r} msg/s: send → last delivery p50 / p99 / max"),
            lat(&p.fast),
        );
        t.info(
            &format!("{label}, {r} msg/s: CPU per delivery, all nodes / clients"),
            format!("{:.2} / {:.2} µs", p.fast_cpu.0, p.fast_cpu.1),
        );
    }
    t.note(cluster.describe());
    cluster.stop();
    Ok(t)
}

fn node_name(n: usize) -> String {
    char::from_u32('A' as u32 + n as u32).map_or(n.to_string(), String::from)
}

fn node_names(nodes: usize) -> String {
    (0..nodes).map(node_name).collect::<Vec<_>>().join(", ")
}

/// The two runs (10 msg/s, then `--ws-rate`) with the members where `workers` put them.
async fn placement(
    cluster: &Cluster,
    workers: &mut Workers,
    room: i64,
    sender: &str,
    which: usize,
    opts: &Opts,
) -> anyhow::Result<Placement> {
    let expected = workers.total();
    let http: &Http = &cluster.http[0];
    let nodes = cluster.pids();
    let clients = workers.pids();
    quiesce_all(&nodes).await;

    let n = (opts.seconds * 10.0).round().max(1.0) as usize;
    let first = SLOW_IDS[which];
    eprintln!(
        "[cluster-fanout] {n} messages at 10/s to {} connections",
        thousands(expected)
    );
    let (s0, c0) = (cpu_of(&nodes), cpu_of(&clients));
    drive(http, sender, room, first, n, 10.0).await?;
    let r = settle(&mut workers.procs, first, first + n, expected).await?;
    let (s1, c1) = (cpu_of(&nodes), cpu_of(&clients));
    let delivered: u64 = r.count.iter().sum();
    let slow = Samples::new(r.max_ns.iter().map(|v| Duration::from_nanos(*v)).collect());
    let slow_complete = r.count.iter().all(|c| *c == expected);
    let slow_disorder = r.disorder;
    let mut slow_nodes = Vec::new();
    for node in 0..cluster.nodes.len() {
        let on: Vec<usize> = (0..workers.procs.len())
            .filter(|w| workers.node_of[*w] == node)
            .collect();
        let mut max_ns = vec![0u64; n];
        for w in &on {
            let part = report(&mut workers.procs[*w..*w + 1], first, first + n).await?;
            for (m, v) in max_ns.iter_mut().zip(part.max_ns) {
                *m = (*m).max(v);
            }
        }
        if !on.is_empty() {
            let s = Samples::new(max_ns.into_iter().map(Duration::from_nanos).collect());
            slow_nodes.push((node, workers.ready_on(node), s.pct(99.0)));
        }
    }
    let slow_cpu = (
        per_delivery(s0, s1, delivered),
        per_delivery(c0, c1, delivered),
    );

    quiesce_all(&nodes).await;
    let per_second = opts.ws_rate;
    let n2 = (opts.seconds * per_second).round().max(1.0) as usize;
    let first = FAST_IDS[which];
    eprintln!(
        "[cluster-fanout] {n2} messages at {per_second}/s to {} connections",
        thousands(expected)
    );
    let (s0, c0) = (cpu_of(&nodes), cpu_of(&clients));
    let sent_at = drive(http, sender, room, first, n2, per_second).await?;
    let r = settle(&mut workers.procs, first, first + n2, expected).await?;
    let (s1, c1) = (cpu_of(&nodes), cpu_of(&clients));
    let delivered: u64 = r.count.iter().sum();
    // From the first send to the last delivery, each message dated by its real send time
    // (see the `ws` scenario).
    let t0 = sent_at.first().copied().unwrap_or(0);
    let end = r
        .max_ns
        .iter()
        .zip(&sent_at)
        .map(|(m, sent)| sent + m)
        .max()
        .unwrap_or(t0);
    let secs = end.saturating_sub(t0) as f64 / 1e9;
    Ok(Placement {
        slow,
        slow_complete,
        slow_nodes,
        slow_cpu,
        fast_dps: delivered as f64 / secs.max(1e-9),
        fast_delivered: delivered,
        fast_expected: n2 as u64 * expected,
        fast_closed: r.closed,
        // The workers' count covers the connections' whole life: the last report has both.
        disorder: r.disorder.max(slow_disorder),
        fast: Samples::new(r.max_ns.iter().map(|v| Duration::from_nanos(*v)).collect()),
        fast_cpu: (
            per_delivery(s0, s1, delivered),
            per_delivery(c0, c1, delivered),
        ),
    })
}
