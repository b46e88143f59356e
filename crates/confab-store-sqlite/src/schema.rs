//! Connection set-up and embedded migrations, tracked with `PRAGMA user_version`.

use rusqlite::Connection;

/// Migrations in order; entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_hardening.sql"),
    include_str!("migrations/0003_room_spread.sql"),
];

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: an acknowledged write survives power loss.
    Full,
    /// `synchronous=NORMAL`: survives a crash of the process, not of the machine.
    Normal,
}

pub fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
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
pub const PROJECTIONS: &[&str] = &["apps", "users", "rooms", "members", "items"];
