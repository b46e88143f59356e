//! Which kind of store fault a SQLite error is (see `StoreError`): what callers can do about it
//! depends on it, and only the kind crosses the port.

use confab_core::error::StoreError;
use rusqlite::ErrorCode;

/// Classifies a SQLite error. The disk or the file cannot be written or reached, or the file is
/// locked by another process: unavailable (retry later). Anything else is a bug or damage.
pub fn sql(e: rusqlite::Error) -> StoreError {
    sql_ref(&e)
}

/// As [`sql`], for an error that several callers are told about.
pub fn sql_ref(e: &rusqlite::Error) -> StoreError {
    let code = match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    };
    match code {
        Some(
            ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::ReadOnly
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed,
        ) => StoreError::unavailable(e),
        _ => StoreError::internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_unavailable_and_a_bad_statement_internal() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert!(matches!(sql(full), StoreError::Unavailable(_)));
        let conn = rusqlite::Connection::open_in_memory().expect("memory db");
        let bad = conn.execute("SELEC 1", []).expect_err("syntax error");
        assert!(matches!(sql(bad), StoreError::Internal(_)));
    }
}
