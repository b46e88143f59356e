//! A fresh database per test case on the local PostgreSQL, dropped when the guard goes (also
//! when the test panics). `CONFAB_TEST_PG` names the server (default: the local one, trust
//! auth). Without a server the tests are skipped loudly, unless `CONFAB_REQUIRE_SERVICES=1`.

#![allow(dead_code)]

use confab_core::store::Store;
use confab_store_postgres::{Options, PgStore};
use std::sync::Arc;

fn server() -> String {
    std::env::var("CONFAB_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A database made for one test; dropped (with any connection still open) on drop.
pub struct Db {
    pub name: String,
    pub url: String,
}

impl Drop for Db {
    fn drop(&mut self) {
        // The blocking client builds its own runtime: run it off the test's runtime thread.
        let admin = format!("{}/postgres", server());
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let done = std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls)?;
            c.batch_execute(&sql)
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// Makes an empty database, or skips the whole test binary if there is no PostgreSQL.
pub async fn database() -> Db {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random name");
    let name = format!(
        "confab_test_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let admin = format!("{}/postgres", server());
    let create = format!("CREATE DATABASE \"{name}\"");
    let made = tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&admin, postgres::NoTls)?;
        c.batch_execute(&create)
    })
    .await
    .expect("create task");
    if let Err(e) = made {
        if std::env::var("CONFAB_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("PostgreSQL is required (CONFAB_REQUIRE_SERVICES=1) but: {e}");
        }
        // Every case of this binary needs the server: skip them all at once, successfully
        // (a test cannot mark itself skipped, and each returning early would hide it).
        // Written past the test harness's capture, which exiting would swallow.
        use std::io::Write;
        let line = format!(
            "SKIPPED PostgreSQL store tests (no PostgreSQL at {}): {e}\n",
            server()
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
        std::process::exit(0);
    }
    Db {
        url: format!("{}/{name}", server()),
        name,
    }
}

pub async fn open(db: &Db) -> Arc<dyn Store> {
    Arc::new(
        PgStore::open(&db.url, Options::default())
            .await
            .expect("open the store"),
    )
}

pub async fn fresh() -> (Arc<dyn Store>, Db) {
    let db = database().await;
    let store = open(&db).await;
    (store, db)
}
