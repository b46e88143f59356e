//! Opening a store: its options, the database made private and migrated, the reader
//! connections, and the writer thread that owns the only write connection.

use crate::fault::sql as be;
use crate::schema::{self, Durability};
use crate::search::SearchTuning;
use crate::writer::writer_loop;
use crate::{SqliteStore, checkpoint, files, index};
use confab_core::error::StoreError;
use confab_core::store::StoreResult;
use rusqlite::{Connection, OpenFlags, params};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, broadcast, mpsc};

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct Options {
    pub durability: Durability,
    pub readers: usize,
    /// Whether the background search indexer runs. Without it search still answers exactly,
    /// by reading every message (benchmarks switch it off to measure its cost).
    pub search_index: bool,
    pub search: SearchTuning,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Full,
            readers: 4,
            search_index: true,
            search: SearchTuning::default(),
        }
    }
}

/// Opens the database at `path`, creating and migrating it as needed.
pub fn migrate(path: &Path) -> StoreResult<usize> {
    files::make_private(path).map_err(StoreError::unavailable)?;
    let mut conn = Connection::open(path).map_err(be)?;
    schema::new_page_size(&conn).map_err(be)?;
    schema::configure(&conn, Durability::Full).map_err(be)?;
    schema::migrate(&mut conn).map_err(be)
}

impl SqliteStore {
    pub fn open(path: &Path, options: Options) -> StoreResult<SqliteStore> {
        files::make_private(path).map_err(StoreError::unavailable)?;
        let mut writer = Connection::open(path).map_err(be)?;
        schema::new_page_size(&writer).map_err(be)?;
        schema::configure(&writer, options.durability).map_err(be)?;
        writer
            .pragma_update(None, "cache_size", -schema::WRITER_CACHE_KIB)
            .map_err(be)?;
        schema::migrate(&mut writer).map_err(be)?;
        let checkpoints = checkpoint::start(
            path,
            options.durability,
            &mut writer,
            checkpoint::Limits::default(),
        )
        .map_err(StoreError::unavailable)?;
        let index = index::start(path, options.search_index).map_err(StoreError::unavailable)?;
        let mut readers = Vec::new();
        for _ in 0..options.readers.max(1) {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(path, flags).map_err(be)?;
            schema::configure(&conn, options.durability).map_err(be)?;
            conn.execute(
                "ATTACH DATABASE ?1 AS s",
                params![index.path.to_string_lossy()],
            )
            .map_err(be)?;
            conn.pragma_update(None, "query_only", true).map_err(be)?;
            readers.push(conn);
        }
        let (jobs, rx) = mpsc::channel(4096);
        let (committed, _) = broadcast::channel(4096);
        let publish = committed.clone();
        let writer_index = index.clone();
        std::thread::Builder::new()
            .name("confab-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx, publish, writer_index, checkpoints))
            .map_err(StoreError::unavailable)?;
        Ok(SqliteStore {
            jobs,
            permits: Arc::new(Semaphore::new(readers.len())),
            readers: Arc::new(Mutex::new(readers)),
            committed,
            path: path.to_owned(),
            tuning: options.search,
            index,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
