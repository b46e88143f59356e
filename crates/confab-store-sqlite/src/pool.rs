//! How the store's methods reach the database: a reader connection lent from the pool (and
//! given back whatever happens), or a job for the writer thread.

use crate::SqliteStore;
use crate::writer::Job;
use confab_core::error::StoreError;
use confab_core::store::StoreResult;
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

impl SqliteStore {
    pub(crate) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        // The permit is owned by the blocking task, and the connection goes back to the pool
        // from inside it: a request cancelled while it waits for the answer (its client went
        // away) neither loses the connection nor frees its permit before the read ends.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(StoreError::unavailable)?;
        let conn = self
            .readers
            .lock()
            .map_err(StoreError::internal)?
            .pop()
            .ok_or_else(|| StoreError::internal("reader pool empty"))?;
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let lent = Lent {
                conn: Some(conn),
                pool,
            };
            let r = match &lent.conn {
                Some(c) => f(c),
                None => Err(StoreError::internal("reader lost")),
            };
            drop(lent);
            drop(permit);
            r
        })
        .await
        .map_err(StoreError::internal)?
    }

    /// A write of operational state, on the writer thread in a transaction of its own.
    pub(crate) async fn operational<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.submit(|reply| {
            Job::Operational(Box::new(move |c: &Connection| {
                let _ = reply.send(write(c));
            }))
        })
        .await
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

/// A reader connection on loan; it returns to the pool when dropped, a panic included.
struct Lent {
    conn: Option<Connection>,
    pool: Arc<Mutex<Vec<Connection>>>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            // A poisoned lock still holds a usable pool: take it back rather than lose the
            // connection.
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            pool.push(c);
        }
    }
}
