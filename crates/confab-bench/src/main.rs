//! `confab-bench`: starts the real server in this process (127.0.0.1:0, a temp data dir,
//! `durability = full`), drives it over real HTTP, and prints one table per scenario with the
//! targets of the Performance section of issue 2 beside the measurements.

mod cluster;
mod cpu;
mod harness;
mod history;
mod latency;
mod marks;
mod nodes;
mod pg;
mod presence;
mod raw;
mod rooms;
mod search;
mod sends;
mod stats;
mod ws;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use harness::StoreKind;
use stats::Table;

/// The same allocator as the `confab` binary, so the server measured here is the one shipped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "confab-bench",
    about = "Benchmarks of the Confab server, in process, over HTTP"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Subcommand, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Concurrent durable sends into one room, and the raw SQLite group-commit limit.
    Sends,
    /// One sequential sender, against the cost of one fsync.
    Latency,
    /// Concurrent readers of the latest page of a very long room.
    History,
    /// Newest-first search over many messages in many rooms, and the index's cost on sends.
    Search,
    /// Concurrent durable sends into one room, then spread over 64 and over 1,000 rooms, with
    /// the bytes written per message.
    Rooms,
    /// 64 members of one room moving their read markers, alone and after each send, straight
    /// into the store (not part of `all`).
    Marks,
    /// Two and three in-process servers on one PostgreSQL database, the senders split across
    /// them (not part of `all`).
    Nodes,
    /// WebSocket fan-out to 10,000 members, two-member latency, idle connection memory (the
    /// server and the clients run in child processes; not part of `all`).
    Ws,
    /// 10,000 members of one room over three `confab serve` nodes on PostgreSQL and NATS, and
    /// on one node (the cluster scenarios are not part of `all`).
    ClusterFanout,
    /// 50,000 idle connections over three nodes: RSS per connection on each.
    ClusterIdle,
    /// A 2-member room with its members on different nodes: send → delivery latency.
    ClusterLatency,
    /// N members of one room connect at once: presence frames and server CPU (not in `all`).
    PresenceStorm,
    /// Every scenario, one after the other.
    All,
}

/// The stores a run measures.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stores {
    Sqlite,
    Postgres,
    /// SQLite, then PostgreSQL, in the same run.
    Both,
}

/// Options; each scenario reads the ones that concern it.
#[derive(Args, Clone)]
pub struct Opts {
    /// The store of the server under test (sends, history, search, rooms; latency and ws
    /// always run on SQLite, nodes always on PostgreSQL).
    #[arg(long, global = true, value_enum, default_value_t = Stores::Sqlite)]
    pub store: Stores,
    /// The PostgreSQL server (a URL naming the user; a database name in it is ignored): each
    /// server under test gets a database of its own there, dropped at the end.
    #[arg(
        long,
        global = true,
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pub pg: String,
    /// Measured duration of the sends and history scenarios, in seconds.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub seconds: f64,
    /// Warm-up before each measured window, in seconds.
    #[arg(long, global = true, default_value_t = 1.0)]
    pub warmup: f64,
    /// Duration of each raw SQLite loop in the sends scenario, in seconds.
    #[arg(long, global = true, default_value_t = 5.0)]
    pub raw_seconds: f64,
    /// Concurrent senders (sends).
    #[arg(long, global = true, default_value_t = 64)]
    pub senders: usize,
    /// Messages sent one after the other (latency).
    #[arg(long, global = true, default_value_t = 2000)]
    pub messages: usize,
    /// Items in the history room.
    #[arg(long, global = true, default_value_t = 1_000_000)]
    pub items: u64,
    /// Concurrent readers (history).
    #[arg(long, global = true, default_value_t = 32)]
    pub readers: usize,
    /// Messages in the searched app (search).
    #[arg(long, global = true, default_value_t = 1_000_000)]
    pub search_messages: u64,
    /// Rooms in the searched app (search).
    #[arg(long, global = true, default_value_t = 1000)]
    pub rooms: usize,
    /// Sequential requests per search case (search).
    #[arg(long, global = true, default_value_t = 300)]
    pub queries: usize,
    /// Members of the fan-out room, each with one connection (ws).
    #[arg(long, global = true, default_value_t = 10_000)]
    pub ws_members: usize,
    /// Further idle connections, of users in no room, for the memory figure (ws).
    #[arg(long, global = true, default_value_t = 9_000)]
    pub ws_idle_extra: usize,
    /// Messages per second of the fan-out throughput run (ws).
    #[arg(long, global = true, default_value_t = 25.0)]
    pub ws_rate: f64,
    #[command(flatten)]
    pub cluster: cluster::ClusterOpts,
}

impl Opts {
    pub fn stores(&self) -> Vec<StoreKind> {
        match self.store {
            Stores::Sqlite => vec![StoreKind::Sqlite],
            Stores::Postgres => vec![StoreKind::Postgres],
            Stores::Both => vec![StoreKind::Sqlite, StoreKind::Postgres],
        }
    }
}

/// Runs blocking work off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("blocking task")?
}

fn main() -> anyhow::Result<()> {
    // The child processes of the ws scenario.
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("ws-server") => return ws::server_main(),
        Some("ws-clients") => return ws::clients_main(&args[2..]),
        _ => {}
    }
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(cli.scenario, &cli.opts))
}

async fn run(scenario: Scenario, opts: &Opts) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# confab-bench");
    println!();
    println!(
        "machine: {cores} cores; server and load generator in one process (one tokio runtime, \
         {cores} worker threads); durability full (WAL, synchronous=FULL); data in {}",
        std::env::temp_dir().display()
    );
    if opts.store != Stores::Sqlite || scenario == Scenario::Nodes {
        println!(
            "PostgreSQL: fresh databases on {} (default synchronous_commit: one WAL flush per \
             commit), on the same machine",
            opts.pg
        );
    }
    let all = scenario == Scenario::All;
    let mut tables: Vec<Table> = Vec::new();
    let stores = opts.stores();
    if all || scenario == Scenario::Sends {
        for &kind in &stores {
            tables.push(report(sends::run(opts, kind).await?));
        }
    }
    if all || scenario == Scenario::Latency {
        tables.push(report(latency::run(opts).await?));
    }
    if all || scenario == Scenario::History {
        for &kind in &stores {
            tables.push(report(history::run(opts, kind).await?));
        }
    }
    if all || scenario == Scenario::Search {
        for &kind in &stores {
            for t in search::run(opts, kind).await? {
                tables.push(report(t));
            }
        }
    }
    if all || scenario == Scenario::Rooms {
        tables.push(report(rooms::run(opts).await?));
    }
    if scenario == Scenario::Marks {
        for &kind in &stores {
            tables.push(report(marks::run(opts, kind).await?));
        }
    }
    if scenario == Scenario::Nodes {
        tables.push(report(nodes::run(opts).await?));
    }
    if scenario == Scenario::Ws {
        tables.push(report(ws::run(opts).await?));
    }
    if let Some(t) = cluster::run(scenario, opts).await? {
        tables.push(report(t));
    }
    if scenario == Scenario::PresenceStorm {
        tables.push(report(presence::run().await?));
    }
    let misses: usize = tables.iter().map(Table::misses).sum();
    println!();
    println!("targets missed: {misses}");
    Ok(())
}

fn report(t: Table) -> Table {
    print!("{}", t.render());
    t
}
