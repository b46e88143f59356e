//! Write leases (issue 11): which node writes an app now. One statement on a pooled
//! connection claims the lease when it is free or expired, renews it when it is the asker's,
//! and otherwise leaves it; times come from the database's clock only, so nodes' clocks never
//! decide who holds a lease. A stopping node deletes its leases, which frees them at once.

use crate::fault::pg as be;
use crate::read;
use crate::rows::get;
use confab_core::error::StoreError;
use confab_core::ids::AppId;
use confab_core::store::{Lease, StoreResult};
use deadpool_postgres::Client;
use std::time::Duration;

/// Claim-or-renew, then the holder and its remaining time. When the row was not changed, the
/// statement's snapshot may predate a concurrent first claim (the insert waited for it, the
/// read does not see it): the caller then asks again.
const CLAIM: &str = "
    WITH claimed AS (
        INSERT INTO write_leases (app_id, node, expires_at)
        VALUES ($1, $2, now() + $3::BIGINT * INTERVAL '1 millisecond')
        ON CONFLICT (app_id) DO UPDATE
            SET node = EXCLUDED.node, expires_at = EXCLUDED.expires_at
            WHERE write_leases.expires_at <= now() OR write_leases.node = EXCLUDED.node
        RETURNING node, expires_at
    ), holder AS (
        SELECT node, expires_at FROM claimed
        UNION ALL
        SELECT node, expires_at FROM write_leases
        WHERE app_id = $1 AND NOT EXISTS (SELECT 1 FROM claimed)
    )
    SELECT node,
           GREATEST(0, (EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::BIGINT)
    FROM holder";

pub async fn write_lease(c: &Client, app: AppId, node: &str, ttl: Duration) -> StoreResult<Lease> {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
    for _ in 0..3 {
        if let Some(r) = read::opt(c, CLAIM, &[&app.0, &node, &ttl_ms]).await? {
            let left: i64 = get(&r, 1)?;
            return Ok(Lease {
                holder: get(&r, 0)?,
                valid_for: Duration::from_millis(left.max(0) as u64),
            });
        }
    }
    Err(StoreError::conflict(
        "the write lease changed hands three times in a row",
    ))
}

/// Deletes every lease `node` holds; answers how many there were.
pub async fn release_leases(c: &Client, node: &str) -> StoreResult<u64> {
    let stmt = c
        .prepare_cached("DELETE FROM write_leases WHERE node = $1")
        .await
        .map_err(be)?;
    c.execute(&stmt, &[&node]).await.map_err(be)
}
