//! The writer's connection: the blocking client with its prepared statements, so that each
//! statement is parsed once per connection and costs one round trip afterwards.

use crate::fault::pg as be;
use confab_core::store::StoreResult;
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};
use std::collections::HashMap;

pub struct Conn {
    pub client: Client,
    stmts: HashMap<String, Statement>,
}

impl Conn {
    pub fn new(client: Client) -> Conn {
        Conn {
            client,
            stmts: HashMap::new(),
        }
    }

    fn stmt(&mut self, sql: &str) -> StoreResult<Statement> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).map_err(be)?;
        self.stmts.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    pub fn exec(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        let s = self.stmt(sql)?;
        self.client.execute(&s, params).map_err(be)
    }

    pub fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
        let s = self.stmt(sql)?;
        self.client.query(&s, params).map_err(be)
    }

    pub fn opt(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Option<Row>> {
        let s = self.stmt(sql)?;
        self.client.query_opt(&s, params).map_err(be)
    }

    pub fn one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Row> {
        let s = self.stmt(sql)?;
        self.client.query_one(&s, params).map_err(be)
    }

    /// Statements without parameters or results (BEGIN, COMMIT, ...).
    pub fn batch(&mut self, sql: &str) -> StoreResult<()> {
        self.client.batch_execute(sql).map_err(be)
    }
}
