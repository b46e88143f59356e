//! How the store's methods reach the database: a pooled read connection, or a job for the
//! writer thread.

use crate::writer::Job;
use crate::{PgStore, fault};
use confab_core::error::StoreError;
use confab_core::store::StoreResult;
use tokio::sync::oneshot;

impl PgStore {
    pub(crate) async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        self.pool.get().await.map_err(fault::pool)
    }

    pub(crate) async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Job,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(make(tx))
            .await
            .map_err(|_| StoreError::unavailable("the writer stopped"))?;
        rx.await
            .map_err(|_| StoreError::unavailable("the writer dropped the request"))?
    }
}
