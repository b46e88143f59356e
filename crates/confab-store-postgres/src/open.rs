//! Opening a store: its options, the URL's connection settings, migrations (safe when several
//! nodes start at once), the writer thread, the read pool and the search indexer.

use crate::{PgStore, schema, writer};
use confab_core::error::StoreError;
use confab_core::store::StoreResult;
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// How long making a connection may take, unless the URL says (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read waits for a pooled connection before answering "unavailable".
const POOL_WAIT: Duration = Duration::from_secs(5);

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pooled read connections of this node.
    pub readers: usize,
    /// Whether this node runs a search indexer (`indexer`). Searches are exact without one
    /// (they read what no indexer has applied directly), only slower as the log grows past
    /// the marks: turned off by tests, and by nodes that leave indexing to others.
    pub search_index: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            readers: 8,
            search_index: true,
        }
    }
}

/// The URL parsed, with a connect timeout unless it names one.
fn config(url: &str) -> StoreResult<tokio_postgres::Config> {
    let mut cfg = tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Internal(format!("bad PostgreSQL URL: {e}")))?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(CONNECT_TIMEOUT);
    }
    cfg.keepalives(true);
    cfg.application_name("confab");
    Ok(cfg)
}

/// Adds server settings (`-c name=value ...`) to the ones the URL may give (`options`).
///
/// Readers and the search indexer run with JIT compilation off: their statements are short,
/// but a generic plan's estimates can be large (a search's tail past the index's mark has an
/// unknown length), and past `jit_above_cost` PostgreSQL then spends tens to hundreds of
/// milliseconds compiling what runs in a few.
pub(crate) fn set_options(cfg: &mut tokio_postgres::Config, settings: &str) {
    let options = match cfg.get_options() {
        Some(given) if !given.is_empty() => format!("{given} {settings}"),
        _ => settings.to_owned(),
    };
    cfg.options(&options);
}

/// Connects once and applies pending migrations; returns how many ran.
pub async fn migrate(url: &str) -> StoreResult<usize> {
    let (mut client, connection) = config(url)?
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| StoreError::unavailable(format!("connecting: {e}")))?;
    let task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "migration connection ended");
        }
    });
    let ran = schema::migrate(&mut client).await;
    drop(client);
    let _ = task.await;
    ran
}

impl PgStore {
    /// Connects, migrates (safe when several nodes start at once), starts the writer thread,
    /// the read pool and, unless told not to, the search indexer (on the caller's runtime).
    pub async fn open(url: &str, options: Options) -> StoreResult<PgStore> {
        migrate(url).await?;
        let mut cfg = config(url)?;
        set_options(&mut cfg, "-c jit=off");
        let manager = deadpool_postgres::Manager::from_config(
            cfg,
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(options.readers.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(StoreError::internal)?;
        let icfg = config(url)?;
        let mut wcfg = config(url)?;
        wcfg.application_name("confab-writer");
        let (jobs, rx) = mpsc::channel(4096);
        let (committed, _) = broadcast::channel(4096);
        let mut writer = writer::Writer::new(wcfg, committed.clone());
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("confab-pg-writer".into())
            .spawn(move || {
                // Connect before answering, so a node that cannot write does not start.
                let ready = writer.conn().map(|_| ());
                let ok = ready.is_ok();
                let _ = ready_tx.send(ready);
                if ok {
                    writer.run(rx);
                }
            })
            .map_err(StoreError::unavailable)?;
        ready_rx
            .await
            .map_err(|_| StoreError::internal("the writer thread ended while starting"))??;
        let mut store = PgStore {
            jobs,
            pool,
            committed,
            indexer: None,
        };
        // A reader must work too.
        let _reader = store.client().await?;
        if options.search_index {
            store.indexer = Some(crate::indexer::spawn(icfg, store.committed.subscribe()));
        }
        Ok(store)
    }
}
