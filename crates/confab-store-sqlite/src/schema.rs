//! Connection set-up and embedded migrations, tracked with `PRAGMA user_version`.

use rusqlite::Connection;

/// Migrations in order; entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_hardening.sql"),
    include_str!("migrations/0003_room_spread.sql"),
    include_str!("migrations/0004_meetups.sql"),
    include_str!("migrations/0005_identities.sql"),
];

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: an acknowledged write survives power loss.
    Full,
    /// `synchronous=NORMAL`: survives a crash of the process, not of the machine.
    Normal,
}

/// The page size of a new database. A commit writes every page it changed in full, and a batch
/// of sends spread over many rooms changes a page per room in each b-tree ordered by room (the
/// items, the log's room index) for a row of about a hundred bytes: smaller pages write less per
/// message. At 1 KiB the timeline's rows still take several per page.
pub const NEW_PAGE_SIZE: i64 = 1024;

/// Gives a database that does not exist yet its page size; an existing one keeps its own
/// (changing it means rewriting the whole file, which WAL mode does not allow).
pub fn new_page_size(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "page_size", NEW_PAGE_SIZE)
}

/// How much write-ahead log grows before it is copied back into the database (a checkpoint; see
/// `checkpoint.rs` for who copies it). A checkpoint writes each page changed since the last one
/// once, however many commits changed it, and sends spread over many rooms keep changing the
/// same pages (each room's last page of items and of the log's room index): at SQLite's default
/// of 1,000 pages the same pages went to disk again every few commits. Since the copy runs off
/// the writer, a longer log costs commits nothing: 64 MiB wrote about a fifth fewer bytes per
/// message over 1,000 rooms than 16 MiB (crates/confab-bench/README.md).
pub const CHECKPOINT_BYTES: i64 = 64 * 1024 * 1024;

/// The writer's page cache, in KiB (readers keep the 32 MB `configure` gives). SQLite empties
/// the cache of every page past the end of the database at each commit, and once a B-tree page
/// has been split in the middle (sends spread over many rooms split pages all over the items
/// and the log's room index) it does so by walking the whole cache: while the database is under
/// 1 GiB, the split gives a page a temporary number past 1 GiB, which the cache remembers as its
/// highest. The walk costs in proportion to the pages cached: with 32 MB it took a fifth of the
/// writer's time over 1,000 rooms (`perf`), and 8 MB made those sends about 10 % faster. 8 MB
/// still holds the last pages of a few thousand rooms; what misses is read from the OS's cache.
pub const WRITER_CACHE_KIB: i64 = 8 * 1024;

/// How long a connection waits for a lock held by another.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.pragma_update(None, "cache_size", -32_000)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // A write-ahead log that grew (a long reader kept it from being reset) is cut back to this
    // size when it is next reset, rather than keeping its largest size for good.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Applies pending migrations; returns how many ran.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<usize> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let mut ran = 0;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        fill_key_ids(&tx)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        ran += 1;
    }
    Ok(ran)
}

/// Gives apps made before key ids existed theirs (computed in Rust: SQLite has no SHA-256).
fn fill_key_ids(conn: &Connection) -> rusqlite::Result<()> {
    let has_column = conn
        .prepare("SELECT 1 FROM pragma_table_info('apps') WHERE name = 'key_id'")?
        .exists([])?;
    if !has_column {
        return Ok(());
    }
    let missing = conn
        .prepare("SELECT id, signing_key FROM apps WHERE key_id IS NULL")?
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (id, key) in missing {
        conn.execute(
            "UPDATE apps SET key_id = ?2 WHERE id = ?1",
            rusqlite::params![id, confab_core::model::key_id(&key)],
        )?;
    }
    Ok(())
}

/// The projection tables, emptied before a replay.
pub const PROJECTIONS: &[&str] = &[
    "apps",
    "users",
    "rooms",
    "members",
    "items",
    "meetups",
    "rsvps",
    "polls",
    "poll_voters",
    "alerts",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma(conn: &Connection, name: &str) -> i64 {
        conn.pragma_query_value(None, name, |r| r.get(0))
            .expect("pragma")
    }

    /// The tables a replay keeps: the log itself and operational state not derived from it.
    /// Every table of the schema is in exactly one of this list and [`PROJECTIONS`], so a new
    /// projection table cannot be forgotten and survive a rebuild with stale rows.
    const NOT_REBUILT: &[&str] = &["events", "health", "identity_providers", "identity_links"];

    #[test]
    fn every_table_is_a_projection_or_kept_by_a_replay() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn).expect("migrate");
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .expect("prepare");
        let tables: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert!(tables.len() >= PROJECTIONS.len() + NOT_REBUILT.len());
        for t in &tables {
            let listed =
                PROJECTIONS.contains(&t.as_str()) as u8 + NOT_REBUILT.contains(&t.as_str()) as u8;
            assert_eq!(
                listed, 1,
                "table {t} must be in exactly one of PROJECTIONS and NOT_REBUILT"
            );
        }
    }

    #[test]
    fn a_new_database_gets_small_pages() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let mut conn = Connection::open(&path).expect("open");
        new_page_size(&conn).expect("page size");
        configure(&conn, Durability::Full).expect("configure");
        migrate(&mut conn).expect("migrate");
        assert_eq!(pragma(&conn, "page_size"), NEW_PAGE_SIZE);
        drop(conn);

        // Opened again, as an existing database: asking for the page size changes nothing.
        let conn = Connection::open(&path).expect("open again");
        conn.pragma_update(None, "page_size", 4096).expect("ask");
        configure(&conn, Durability::Full).expect("configure");
        assert_eq!(pragma(&conn, "page_size"), NEW_PAGE_SIZE);
    }
}
