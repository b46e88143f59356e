//! Identity providers and identity links: operational state beside the log (issue 14). Reads
//! go through the reader pool; writes go to the writer thread as `Job::Operational`, each in a
//! transaction of its own, so they never interleave with a batch of commands.

use crate::fault::sql as be;
use confab_core::ids::{AppId, Timestamp, UserId};
use confab_core::model::{IdentityLink, IdentityProvider, Page};
use confab_core::store::StoreResult;
use rusqlite::{Connection, OptionalExtension, params};

const PROVIDER_COLS: &str = "id, config, created_at, updated_at";

fn provider(r: &rusqlite::Row<'_>) -> rusqlite::Result<IdentityProvider> {
    Ok(IdentityProvider {
        id: r.get(0)?,
        config: r.get(1)?,
        created_at: Timestamp(r.get(2)?),
        updated_at: Timestamp(r.get(3)?),
    })
}

pub(crate) fn providers(c: &Connection, app: AppId) -> StoreResult<Vec<IdentityProvider>> {
    c.prepare_cached(&format!(
        "SELECT {PROVIDER_COLS} FROM identity_providers WHERE app_id = ?1 ORDER BY id"
    ))
    .and_then(|mut s| {
        s.query_map(params![app.0], provider)?
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(be)
}

pub(crate) fn provider_by_id(
    c: &Connection,
    app: AppId,
    id: &str,
) -> StoreResult<Option<IdentityProvider>> {
    c.prepare_cached(&format!(
        "SELECT {PROVIDER_COLS} FROM identity_providers WHERE app_id = ?1 AND id = ?2"
    ))
    .and_then(|mut s| s.query_row(params![app.0, id], provider).optional())
    .map_err(be)
}

pub(crate) fn identity(
    c: &Connection,
    app: AppId,
    provider: &str,
    subject: &str,
) -> StoreResult<Option<UserId>> {
    c.prepare_cached(
        "SELECT user_id FROM identity_links WHERE app_id = ?1 AND provider = ?2 AND subject = ?3",
    )
    .and_then(|mut s| {
        s.query_row(params![app.0, provider, subject], |r| r.get(0))
            .optional()
    })
    .map(|u| u.map(UserId))
    .map_err(be)
}

pub(crate) fn links(
    c: &Connection,
    app: AppId,
    after: Option<(String, String)>,
    limit: usize,
) -> StoreResult<Page<IdentityLink>> {
    let (provider, subject) = after.unwrap_or_default();
    let mut rows = c
        .prepare_cached(
            "SELECT provider, subject, user_id FROM identity_links
             WHERE app_id = ?1 AND (provider, subject) > (?2, ?3)
             ORDER BY provider, subject LIMIT ?4",
        )
        .and_then(|mut s| {
            s.query_map(params![app.0, provider, subject, limit as i64 + 1], |r| {
                Ok(IdentityLink {
                    provider: r.get(0)?,
                    subject: r.get(1)?,
                    user: UserId(r.get(2)?),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(be)?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    Ok(Page { rows, has_more })
}

/// Runs `f` in a write transaction of its own.
pub(crate) fn in_tx<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> StoreResult<T> {
    c.execute_batch("BEGIN IMMEDIATE").map_err(be)?;
    match f(c).and_then(|v| c.execute_batch("COMMIT").map(|()| v)) {
        Ok(v) => Ok(v),
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(be(e))
        }
    }
}

pub(crate) fn put_provider(
    c: &Connection,
    app: AppId,
    id: &str,
    config: &str,
) -> StoreResult<bool> {
    in_tx(c, |c| {
        let now = Timestamp::now().0;
        let updated = c
            .prepare_cached(
                "UPDATE identity_providers SET config = ?3, updated_at = MAX(updated_at, ?4)
                 WHERE app_id = ?1 AND id = ?2",
            )?
            .execute(params![app.0, id, config, now])?;
        if updated == 1 {
            return Ok(false);
        }
        c.prepare_cached(
            "INSERT INTO identity_providers (app_id, id, config, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
        )?
        .execute(params![app.0, id, config, now])?;
        Ok(true)
    })
}

pub(crate) fn delete_provider(c: &Connection, app: AppId, id: &str) -> StoreResult<bool> {
    in_tx(c, |c| {
        c.prepare_cached("DELETE FROM identity_links WHERE app_id = ?1 AND provider = ?2")?
            .execute(params![app.0, id])?;
        let n = c
            .prepare_cached("DELETE FROM identity_providers WHERE app_id = ?1 AND id = ?2")?
            .execute(params![app.0, id])?;
        Ok(n == 1)
    })
}

pub(crate) fn link(
    c: &Connection,
    app: AppId,
    provider: &str,
    subject: &str,
    user: &UserId,
) -> StoreResult<UserId> {
    in_tx(c, |c| {
        c.prepare_cached(
            "INSERT INTO identity_links (app_id, provider, subject, user_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (app_id, provider, subject) DO NOTHING",
        )?
        .execute(params![
            app.0,
            provider,
            subject,
            user.as_str(),
            Timestamp::now().0
        ])?;
        c.prepare_cached(
            "SELECT user_id FROM identity_links
             WHERE app_id = ?1 AND provider = ?2 AND subject = ?3",
        )?
        .query_row(params![app.0, provider, subject], |r| r.get(0))
        .map(UserId)
    })
}

pub(crate) fn unlink(
    c: &Connection,
    app: AppId,
    provider: &str,
    subject: &str,
) -> StoreResult<bool> {
    in_tx(c, |c| {
        let n = c
            .prepare_cached(
                "DELETE FROM identity_links WHERE app_id = ?1 AND provider = ?2 AND subject = ?3",
            )?
            .execute(params![app.0, provider, subject])?;
        Ok(n == 1)
    })
}
