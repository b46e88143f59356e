//! Embedded migrations, run at start-up under a session advisory lock so that several nodes
//! starting at once apply each migration exactly once. Applied versions are kept in
//! `confab_schema`; a database whose schema is newer than this binary is refused.

use crate::fault::pg as be;
use confab_core::error::StoreError;
use confab_core::store::StoreResult;

/// Migrations in order; entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_meetups.sql"),
    include_str!("migrations/0003_identities.sql"),
    include_str!("migrations/0004_write_leases.sql"),
];

/// The schema version this binary writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock class of this crate (`pg_advisory_lock(int4, int4)` keys): ids below.
pub const LOCK_CLASS: i32 = 0x6366_6200;
/// Held by migrations (session-scoped).
pub const LOCK_MIGRATE: i32 = 0;
/// Taken shared by every write transaction and exclusively by a rebuild.
pub const LOCK_REBUILD: i32 = 1;
/// Serialises app creation (new app ids and tokens) across nodes.
pub const LOCK_APPS: i32 = 2;
/// Room creation of one app (room numbers, aliases, direct pairs) uses this class, keyed by
/// the app id.
pub const ROOMS_CLASS: i32 = 0x6366_6201;

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

/// Applies pending migrations; returns how many ran.
pub async fn migrate(client: &mut tokio_postgres::Client) -> StoreResult<usize> {
    client
        .execute(
            "SELECT pg_advisory_lock($1, $2)",
            &[&LOCK_CLASS, &LOCK_MIGRATE],
        )
        .await
        .map_err(be)?;
    let result = migrate_locked(client).await;
    // The lock is the session's: released here, or with the connection if this fails.
    let unlocked = client
        .execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&LOCK_CLASS, &LOCK_MIGRATE],
        )
        .await
        .map_err(be);
    let ran = result?;
    unlocked?;
    Ok(ran)
}

async fn migrate_locked(client: &mut tokio_postgres::Client) -> StoreResult<usize> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS confab_schema (
                 version    BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(be)?;
    let current: i64 = client
        .query_one("SELECT COALESCE(MAX(version), 0) FROM confab_schema", &[])
        .await
        .map_err(be)?
        .get(0);
    if current > VERSION {
        return Err(StoreError::Internal(format!(
            "the database's schema is version {current}, newer than this binary's {VERSION}: \
             run a newer Confab (refusing to touch it)"
        )));
    }
    let mut ran = 0;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = client.transaction().await.map_err(be)?;
        tx.batch_execute(sql).await.map_err(be)?;
        tx.execute(
            "INSERT INTO confab_schema (version) VALUES ($1)",
            &[&((i + 1) as i64)],
        )
        .await
        .map_err(be)?;
        tx.commit().await.map_err(be)?;
        tracing::info!(version = i + 1, "applied a PostgreSQL migration");
        ran += 1;
    }
    Ok(ran)
}
