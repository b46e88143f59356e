//! Opening a store: its options, the URL's connection settings, migrations (safe when several
//! nodes start at once), the writer thread and the read pool.

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
}

impl Default for Options {
    fn default() -> Self {
        Options { readers: 8 }
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
    /// Connects, migrates (safe when several nodes start at once), starts the writer thread
    /// and the read pool.
    pub async fn open(url: &str, options: Options) -> StoreResult<PgStore> {
        migrate(url).await?;
        let cfg = config(url)?;
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
        let store = PgStore {
            jobs,
            pool,
            committed,
        };
        // A reader must work too.
        let _reader = store.client().await?;
        Ok(store)
    }
}
