//! Which kind of store fault a PostgreSQL error is (see `StoreError`): only the kind crosses
//! the port, and callers act on it (retry, 503, 500).

use confab_core::error::StoreError;
use tokio_postgres::error::SqlState;

/// Classifies a driver error.
/// - another writer won a race (serialization failure, deadlock, a unique key taken
///   meanwhile): conflict, retried by the writer;
/// - the server cannot be reached or cannot work now (connection lost, shutting down, out of
///   connections or disk, a read-only standby): unavailable;
/// - anything else (a bad statement, a type mismatch, damaged data): internal.
pub fn pg(e: tokio_postgres::Error) -> StoreError {
    pg_ref(&e)
}

pub fn pg_ref(e: &tokio_postgres::Error) -> StoreError {
    if let Some(code) = e.code() {
        return classify_code(code, e);
    }
    if e.is_closed() || io_source(e) || connecting(e) {
        return StoreError::unavailable(e);
    }
    StoreError::internal(e)
}

fn classify_code(code: &SqlState, e: &tokio_postgres::Error) -> StoreError {
    let s = code.code();
    if *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::UNIQUE_VIOLATION
    {
        return StoreError::conflict(e);
    }
    // 08: connection exception; 53: insufficient resources (disk full, too many
    // connections); 57P0x: the server is shutting down or starting; 25006: read-only
    // (a standby); 55P03: a lock could not be had in time.
    if s.starts_with("08")
        || s.starts_with("53")
        || s.starts_with("57P")
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::QUERY_CANCELED
    {
        return StoreError::unavailable(e);
    }
    StoreError::internal(e)
}

fn io_source(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Errors raised while connecting carry no SQL state; they say so in their text.
fn connecting(e: &tokio_postgres::Error) -> bool {
    let text = e.to_string();
    text.contains("error connecting") || text.contains("timed out") || text.contains("timeout")
}

/// A pool error: the pool gives out no connection, or making one failed.
pub fn pool(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg(e),
        other => StoreError::unavailable(other),
    }
}
