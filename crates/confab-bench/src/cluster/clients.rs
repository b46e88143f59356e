//! WebSocket client workers of the cluster scenarios: `confab-bench ws-clients` processes (the
//! `ws` scenario's, under `SCHED_BATCH`), each holding the connections of one list of tokens
//! to one node, from a source address of its own (127.1.X.1), so no worker runs short of
//! ephemeral ports or of its file limit.

use crate::ws::proc::Proc;
use crate::ws::ready_count;
use anyhow::Context;

/// The connections one worker opens: to the node `node` at `addr`, one per token.
pub struct Plan {
    pub node: usize,
    pub addr: String,
    pub tokens: Vec<String>,
}

pub struct Workers {
    pub procs: Vec<Proc>,
    /// The node each worker's connections are on.
    pub node_of: Vec<usize>,
    /// Authenticated connections of each worker.
    pub ready: Vec<u64>,
    _dir: tempfile::TempDir,
}

impl Workers {
    /// Starts one worker per plan, the `i`-th from 127.1.(`first_src` + i).1, and waits until
    /// each has opened and authenticated its connections (or given up on some).
    pub async fn open(plans: Vec<Plan>, first_src: usize) -> anyhow::Result<Workers> {
        let dir = tempfile::tempdir().context("cannot make a temp dir")?;
        let mut procs = Vec::with_capacity(plans.len());
        let mut node_of = Vec::with_capacity(plans.len());
        for (i, plan) in plans.iter().enumerate() {
            let src = first_src + i;
            anyhow::ensure!(src < 256, "too many client workers");
            let file = dir.path().join(format!("tokens{i}"));
            std::fs::write(&file, plan.tokens.join("\n"))?;
            let args = [
                "ws-clients".to_owned(),
                plan.addr.clone(),
                format!("127.1.{src}.1"),
                file.display().to_string(),
            ];
            procs.push(Proc::spawn_with(&args, true)?);
            node_of.push(plan.node);
        }
        let mut ready = Vec::with_capacity(procs.len());
        for p in procs.iter_mut() {
            ready.push(ready_count(p).await?);
        }
        Ok(Workers {
            procs,
            node_of,
            ready,
            _dir: dir,
        })
    }

    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.child.id()).collect()
    }

    /// Authenticated connections on node `node`.
    pub fn ready_on(&self, node: usize) -> u64 {
        self.node_of
            .iter()
            .zip(&self.ready)
            .filter(|(n, _)| **n == node)
            .map(|(_, r)| *r)
            .sum()
    }

    pub fn total(&self) -> u64 {
        self.ready.iter().sum()
    }

    /// Ends every worker (their connections close) and waits for them.
    pub fn finish(self) {
        for p in self.procs {
            p.finish();
        }
    }
}

/// `tokens` dealt over `nodes` nodes (token `i` to node `i % nodes`), then each node's share
/// cut into workers of at most `per_worker` connections.
pub fn deal(tokens: &[String], addrs: &[String], nodes: usize, per_worker: usize) -> Vec<Plan> {
    let mut plans = Vec::new();
    for (node, addr) in addrs.iter().enumerate().take(nodes) {
        let share: Vec<String> = tokens.iter().skip(node).step_by(nodes).cloned().collect();
        for chunk in share.chunks(per_worker.max(1)) {
            plans.push(Plan {
                node,
                addr: addr.clone(),
                tokens: chunk.to_vec(),
            });
        }
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::deal;

    #[test]
    fn every_token_goes_to_its_node_once_in_workers_of_bounded_size() {
        let tokens: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        let addrs: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let plans = deal(&tokens, &addrs, 3, 2);
        let sizes: Vec<(usize, usize)> = plans.iter().map(|p| (p.node, p.tokens.len())).collect();
        assert_eq!(sizes, [(0, 2), (0, 2), (1, 2), (1, 1), (2, 2), (2, 1)]);
        for p in &plans {
            assert_eq!(p.addr, addrs[p.node]);
            for t in &p.tokens {
                let i: usize = t[1..].parse().expect("a token number");
                assert_eq!(i % 3, p.node, "{t} on node {}", p.node);
            }
        }
        let mut all: Vec<&String> = plans.iter().flat_map(|p| &p.tokens).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), tokens.len());
    }
}
