//! `cluster-latency`: a 2-member room with one member on node A and the other on node B; A's
//! member sends over the socket, one message after the other, each timed until B's member has
//! it (the path: A commits to PostgreSQL, publishes on NATS, B frames it from the bus message).
//! Beside it, the same two users both on node A (no bus hop on the way to the reader). The two
//! cases alternate in rounds, so a noisy moment of the machine falls on both.

use super::Cluster;
use crate::Opts;
use crate::stats::{Samples, Table, ms, thousands};
use crate::ws::pair_times;
use std::time::Duration;

/// Rounds per case; each has its own connections and warm-up.
const ROUNDS: usize = 2;

pub async fn run(opts: &Opts) -> anyhow::Result<Table> {
    let nodes = opts.cluster.nodes.max(2);
    eprintln!("[cluster-latency] starting {nodes} nodes");
    let cluster = Cluster::start(opts, nodes).await?;
    let tokens = cluster.users("p", 2).await?;
    let room = cluster.room("p0", &["p1".to_owned()]).await?;
    let (a, b) = (&cluster.nodes[0].addr, &cluster.nodes[1].addr);
    let per_round = (opts.messages / ROUNDS).max(50);
    let (mut cross, mut same, mut acks) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cross_past, mut same_past) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        eprintln!(
            "[cluster-latency] round {}: {per_round} sends across nodes, {per_round} on one",
            round + 1
        );
        let r = pair_times(a, b, &tokens[0], &tokens[1], room, per_round, None).await?;
        cross.push(r.delivery);
        acks.push(r.ack);
        cross_past.push(r.past_ack);
        let r = pair_times(a, a, &tokens[0], &tokens[1], room, per_round, None).await?;
        same.push(r.delivery);
        acks.push(r.ack);
        same_past.push(r.past_ack);
    }
    let (cross, same) = (Samples::merged(cross), Samples::merged(same));
    let acks = Samples::merged(acks);
    let (cross_past, same_past) = (Samples::merged(cross_past), Samples::merged(same_past));
    let spread = |s: &Samples| {
        format!(
            "{} / {} / {}",
            ms(s.pct(50.0)),
            ms(s.pct(99.0)),
            ms(s.max())
        )
    };
    let mut t = Table::new(format!(
        "cluster-latency: a 2-member room, sequential sends over the socket, {} per case in \
         {ROUNDS} alternating rounds",
        thousands(cross.len() as u64)
    ));
    t.check(
        "members on different nodes (send on A, delivery on B): p50 / p99 / max",
        spread(&cross),
        "p99 ≤ 5 ms",
        cross.pct(99.0) <= Duration::from_millis(5),
    );
    t.info("both members on node A: p50 / p99 / max", spread(&same));
    t.info(
        "send → the sender's ack (the PostgreSQL commit), both cases: p50 / p99 / max",
        spread(&acks),
    );
    t.info(
        "delivery past the ack, per message, p50 / p99 / max: different nodes",
        spread(&cross_past),
    );
    t.info(
        "delivery past the ack, per message, p50 / p99 / max: one node",
        spread(&same_past),
    );
    t.note(cluster.describe());
    cluster.stop();
    Ok(t)
}
