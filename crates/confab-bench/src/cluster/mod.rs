//! The cluster scenarios (issue 12, "Performance"): `confab serve` nodes as child processes on
//! one fresh PostgreSQL database (dropped at the end) and one NATS (the machine's, under a
//! subject prefix of this run's own, or a nats-server of the bench's own), with the WebSocket
//! clients in worker processes (`confab-bench ws-clients`, as in the `ws` scenario).
//!
//! - `cluster-fanout`: one room of 10,000 members spread over the nodes, a sender on the first;
//!   then the same members all on one node, in the same run.
//! - `cluster-idle`: 50,000 idle connections spread over the nodes; RSS per connection per node.
//! - `cluster-latency`: two members on different nodes, sequential sends; and on one node.
//!
//! Users, rooms and memberships are made through a store of the bench's own on the same
//! database (no HTTP, big group commits: setting up 50,000 users over HTTP would take minutes
//! on this machine), and user tokens are minted here with the app's signing key, as the node
//! would mint them. What is measured goes through the nodes only.

mod clients;
mod fanout;
mod idle;
mod latency;
mod node;
mod setup;

pub(crate) use node::Nats;

use crate::harness::{LIFTED_RATE, RATE_LIMIT_KEYS, fresh_db};
use crate::pg::TempDb;
use crate::stats::Table;
use crate::ws::Http;
use crate::ws::proc::cpu;
use crate::{Opts, Scenario};
use anyhow::Context;
use clap::Args;
use confab_core::model::AppKeys;
use confab_core::store::Store;
use node::{Node, file_limits};
use reqwest::Method;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One admin key for all nodes of a run.
const ADMIN_KEY: &str = "ck_admin_bench_cluster_shared_key";

/// Options of the cluster scenarios (members, rates, messages and seconds are the `ws` ones).
#[derive(Args, Clone)]
pub struct ClusterOpts {
    /// The `confab` binary the nodes run [default: `confab` beside this binary].
    #[arg(long, global = true)]
    pub confab: Option<PathBuf>,
    /// NATS of the cluster scenarios: a URL (the run takes a subject prefix of its own there),
    /// or `own` to start a nats-server of the bench's own on a free port.
    #[arg(long, global = true, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// Nodes of the cluster scenarios.
    #[arg(long, global = true, default_value_t = 3)]
    pub nodes: usize,
    /// Idle connections spread over the nodes (cluster-idle).
    #[arg(long, global = true, default_value_t = 50_000)]
    pub idle_connections: usize,
}

/// Runs `scenario` if it is a cluster one.
pub async fn run(scenario: Scenario, opts: &Opts) -> anyhow::Result<Option<Table>> {
    let table = match scenario {
        Scenario::ClusterFanout => fanout::run(opts).await?,
        Scenario::ClusterIdle => idle::run(opts).await?,
        Scenario::ClusterLatency => latency::run(opts).await?,
        _ => return Ok(None),
    };
    Ok(Some(table))
}

/// Nodes on one database and one NATS, with a store of the bench's own for the setup.
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// An HTTP client of each node.
    pub http: Vec<Http>,
    pub store: Arc<dyn Store>,
    pub keys: AppKeys,
    pub nats: Nats,
    pub prefix: String,
    /// Dropped after the nodes and the store (fields drop in order).
    db: TempDb,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes and makes one app (through the first node).
    pub async fn start(opts: &Opts, n: usize) -> anyhow::Result<Cluster> {
        let exe = match &opts.cluster.confab {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .context("cannot find the bench binary")?
                .with_file_name("confab"),
        };
        if !exe.exists() {
            anyhow::bail!(
                "{} not found: build it (cargo build --release -p confab) or name it with --confab",
                exe.display()
            );
        }
        let db = fresh_db(&opts.pg).await?;
        let nats = Nats::open(&opts.cluster.nats).await?;
        // Subjects of this run only: other runs and tests may share the machine's NATS.
        let prefix = db.name.clone();
        let mut config = confab::config::Config::default();
        config.set("database", &db.url, "bench")?;
        // Opening migrates the database, before any node starts.
        let store = confab::open_store(&config).await?;
        let dir = tempfile::tempdir().context("cannot make a temp dir")?;
        let mut env: Vec<(String, String)> = vec![
            ("CONFAB_DATABASE".into(), db.url.clone()),
            ("CONFAB_NATS".into(), nats.url.clone()),
            ("CONFAB_NATS_PREFIX".into(), prefix.clone()),
            ("CONFAB_ADMIN_KEY".into(), ADMIN_KEY.into()),
            // The address line comes at info; everything else only when it goes wrong.
            ("CONFAB_LOG".into(), "warn,confab=info".into()),
        ];
        for key in RATE_LIMIT_KEYS {
            env.push((format!("CONFAB_{}", key.to_uppercase()), LIFTED_RATE.into()));
        }
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            nodes.push(Node::spawn(&exe, &dir.path().join(format!("node{i}")), &env).await?);
        }
        let http: Vec<Http> = nodes
            .iter()
            .map(|node| {
                Ok(Http {
                    base: format!("http://{}", node.addr),
                    client: crate::harness::client()?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let app = http[0]
            .call(
                Method::POST,
                "/v1/apps",
                ADMIN_KEY,
                json!({"name": "cluster-bench"}),
            )
            .await?;
        let token = app["token"].as_str().context("no app token")?;
        let keys = store
            .app_keys_by_token(token)
            .await?
            .context("the new app is not in the database")?;
        Ok(Cluster {
            nodes,
            http,
            store,
            keys,
            nats,
            prefix,
            db,
            _dir: dir,
        })
    }

    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(Node::pid).collect()
    }

    /// One line on what the cluster is made of.
    pub fn describe(&self) -> String {
        let (soft, hard) = file_limits();
        format!(
            "{} `confab serve` nodes on PostgreSQL database {} and {} (subject prefix {}); \
             file limit of this process {soft} soft / {hard} hard, nodes raised to the hard one",
            self.nodes.len(),
            self.db.name,
            self.nats.describe(),
            self.prefix
        )
    }

    /// Kills the nodes, closes the store, then drops the database.
    pub fn stop(self) {
        let Cluster {
            nodes, store, db, ..
        } = self;
        drop(nodes);
        drop(store);
        drop(db);
    }
}

/// CPU time (user + system) used so far by all of `pids`.
pub fn cpu_of(pids: &[u32]) -> Duration {
    pids.iter().map(|p| cpu(*p)).sum()
}

/// Microseconds of CPU per delivery between two readings.
pub fn per_delivery(before: Duration, after: Duration, delivered: u64) -> f64 {
    after.saturating_sub(before).as_secs_f64() * 1e6 / delivered.max(1) as f64
}

/// Waits until every node is idle (see [`crate::ws::proc::quiesce`]).
pub async fn quiesce_all(pids: &[u32]) {
    for pid in pids {
        crate::ws::proc::quiesce(*pid).await;
    }
}
