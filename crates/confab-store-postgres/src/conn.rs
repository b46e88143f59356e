//! The writer's connection: an async client driven by a runtime of the writer thread's own,
//! so `Tx` stays synchronous, with its prepared statements (each parsed once per connection)
//! and a way to send several statements in one round trip (`pipeline`): a batch's locks and
//! reads go out together, and so do its writes and its COMMIT.

use crate::fault::pg as be;
use confab_core::error::StoreError;
use confab_core::store::StoreResult;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Row, Statement};

pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// One statement of a pipeline.
pub enum Step<'a> {
    /// A prepared statement with its parameters; its rows are returned.
    Query(&'a str, Params<'a>),
    /// A statement without parameters or rows (BEGIN, COMMIT, a lock with literal keys).
    Batch(&'a str),
}

pub struct Conn {
    /// Current-thread: the connection's I/O runs only while the writer waits on it, as in
    /// the blocking `postgres` crate.
    rt: tokio::runtime::Runtime,
    pub client: Client,
    stmts: HashMap<String, Statement>,
    /// Requests answered so far (a pipeline counts once; preparing a statement, once per
    /// connection, is not counted): what the writer logs per batch.
    trips: u64,
}

type Pending<'a> = Pin<Box<dyn Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + 'a>>;

impl Conn {
    pub fn connect(config: &Config) -> StoreResult<Conn> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::internal(format!("the writer's runtime: {e}")))?;
        let (client, connection) = rt
            .block_on(config.connect(tokio_postgres::NoTls))
            .map_err(|e| StoreError::unavailable(format!("connecting: {e}")))?;
        rt.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "the writer's connection ended");
            }
        });
        // Every statement of the writer looks rows up by key, for a batch of at most a few
        // hundred keys, so an index probe per key is always the right plan. Left to itself,
        // the planner hash-joined a batch's keys against a scan of the whole rooms and members
        // tables whenever it took them for small (no statistics yet, or a few thousand rows):
        // at 1,000 rooms that was half of what PostgreSQL spent per message beyond one room.
        // Plans are made once per statement (generic): without hash joins, re-planning each
        // batch for its own keys cost more than it saved (one room fell by a fifth).
        rt.block_on(client.batch_execute(
            "SET enable_hashjoin = off; SET enable_mergejoin = off; \
             SET plan_cache_mode = force_generic_plan",
        ))
        .map_err(|e| StoreError::unavailable(format!("setting up the connection: {e}")))?;
        Ok(Conn {
            rt,
            client,
            stmts: HashMap::new(),
            trips: 0,
        })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Round trips made on this connection (see `trips`).
    pub fn round_trips(&self) -> u64 {
        self.trips
    }

    fn stmt(&mut self, sql: &str) -> StoreResult<Statement> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.rt.block_on(self.client.prepare(sql)).map_err(be)?;
        self.stmts.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    pub fn exec(&mut self, sql: &str, params: Params<'_>) -> StoreResult<u64> {
        let s = self.stmt(sql)?;
        self.trips += 1;
        self.rt
            .block_on(self.client.execute(&s, params))
            .map_err(be)
    }

    pub fn query(&mut self, sql: &str, params: Params<'_>) -> StoreResult<Vec<Row>> {
        let s = self.stmt(sql)?;
        self.trips += 1;
        self.rt.block_on(self.client.query(&s, params)).map_err(be)
    }

    pub fn opt(&mut self, sql: &str, params: Params<'_>) -> StoreResult<Option<Row>> {
        let s = self.stmt(sql)?;
        self.trips += 1;
        self.rt
            .block_on(self.client.query_opt(&s, params))
            .map_err(be)
    }

    pub fn one(&mut self, sql: &str, params: Params<'_>) -> StoreResult<Row> {
        let s = self.stmt(sql)?;
        self.trips += 1;
        self.rt
            .block_on(self.client.query_one(&s, params))
            .map_err(be)
    }

    /// Statements without parameters or results (BEGIN, COMMIT, ...).
    pub fn batch(&mut self, sql: &str) -> StoreResult<()> {
        self.trips += 1;
        self.rt.block_on(self.client.batch_execute(sql)).map_err(be)
    }

    /// Sends `steps` at once and waits for all their answers: one round trip. The server
    /// runs them in order, each in a snapshot of its own (READ COMMITTED), exactly as if
    /// they had been sent one by one. Each step is synchronised on its own, so a failed one
    /// does not stop the others from being answered: inside a transaction the later ones
    /// then fail too (and a COMMIT rolls back), which is why the first error is returned.
    pub fn pipeline(&mut self, steps: &[Step<'_>]) -> StoreResult<Vec<Vec<Row>>> {
        let mut prepared = Vec::with_capacity(steps.len());
        for step in steps {
            prepared.push(match step {
                Step::Query(sql, _) => Some(self.stmt(sql)?),
                Step::Batch(_) => None,
            });
        }
        self.trips += 1;
        let client = &self.client;
        let futures: Vec<Pending<'_>> = steps
            .iter()
            .zip(&prepared)
            .map(|(step, stmt)| -> Pending<'_> {
                match (step, stmt) {
                    (Step::Query(_, params), Some(s)) => Box::pin(client.query(s, params)),
                    (Step::Batch(sql), _) => {
                        Box::pin(async move { client.batch_execute(sql).await.map(|()| vec![]) })
                    }
                    // Every query step was prepared above.
                    (Step::Query(..), None) => Box::pin(async { Ok(vec![]) }),
                }
            })
            .collect();
        // `join_all` polls the futures in order on its first poll, and each sends its
        // request on its first poll: the server receives them in this order.
        let results = self.rt.block_on(futures_util::future::join_all(futures));
        results.into_iter().map(|r| r.map_err(be)).collect()
    }
}
