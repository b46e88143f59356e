//! Identity providers and identity links: operational state beside the log (issue 14). Read
//! and written on pooled connections, outside the writer: they touch no projection and no
//! counter, so they need none of its locks. A link is taken with `ON CONFLICT DO NOTHING`
//! and read back, so nodes racing on one person's first sign-in agree on one user.

use crate::fault::pg as be;
use crate::read;
use crate::rows::get;
use crate::unstorable;
use confab_core::ids::{AppId, Timestamp, UserId};
use confab_core::model::{IdentityLink, IdentityProvider, Page};
use confab_core::store::StoreResult;
use deadpool_postgres::Client;
use tokio_postgres::Row;

fn provider(r: &Row) -> StoreResult<IdentityProvider> {
    Ok(IdentityProvider {
        id: get(r, 0)?,
        config: get(r, 1)?,
        created_at: Timestamp(get(r, 2)?),
        updated_at: Timestamp(get(r, 3)?),
    })
}

pub async fn providers(c: &Client, app: AppId) -> StoreResult<Vec<IdentityProvider>> {
    read::query(
        c,
        "SELECT id, config, created_at, updated_at FROM identity_providers
         WHERE app_id = $1 ORDER BY id COLLATE \"C\"",
        &[&app.0],
    )
    .await?
    .iter()
    .map(provider)
    .collect()
}

pub async fn provider_by_id(
    c: &Client,
    app: AppId,
    id: &str,
) -> StoreResult<Option<IdentityProvider>> {
    if unstorable(id) {
        return Ok(None);
    }
    read::opt(
        c,
        "SELECT id, config, created_at, updated_at FROM identity_providers
         WHERE app_id = $1 AND id = $2",
        &[&app.0, &id],
    )
    .await?
    .map(|r| provider(&r))
    .transpose()
}

pub async fn put_provider(c: &Client, app: AppId, id: &str, config: &str) -> StoreResult<bool> {
    let now = Timestamp::now().0;
    // `xmax = 0` only on a row this statement inserted.
    let r = read::opt(
        c,
        "INSERT INTO identity_providers (app_id, id, config, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (app_id, id) DO UPDATE
           SET config = EXCLUDED.config,
               updated_at = GREATEST(identity_providers.updated_at, EXCLUDED.updated_at)
         RETURNING (xmax = 0)",
        &[&app.0, &id, &config, &now],
    )
    .await?;
    r.map(|r| get::<bool>(&r, 0))
        .transpose()
        .map(|v| v.unwrap_or(false))
}

pub async fn delete_provider(c: &mut Client, app: AppId, id: &str) -> StoreResult<bool> {
    if unstorable(id) {
        return Ok(false);
    }
    let tx = c.transaction().await.map_err(be)?;
    tx.execute(
        "DELETE FROM identity_links WHERE app_id = $1 AND provider = $2",
        &[&app.0, &id],
    )
    .await
    .map_err(be)?;
    let n = tx
        .execute(
            "DELETE FROM identity_providers WHERE app_id = $1 AND id = $2",
            &[&app.0, &id],
        )
        .await
        .map_err(be)?;
    tx.commit().await.map_err(be)?;
    Ok(n == 1)
}

pub async fn identity(
    c: &Client,
    app: AppId,
    provider: &str,
    subject: &str,
) -> StoreResult<Option<UserId>> {
    if unstorable(provider) || unstorable(subject) {
        return Ok(None);
    }
    read::opt(
        c,
        "SELECT user_id FROM identity_links WHERE app_id = $1 AND provider = $2 AND subject = $3",
        &[&app.0, &provider, &subject],
    )
    .await?
    .map(|r| get::<String>(&r, 0).map(UserId))
    .transpose()
}

pub async fn link(
    c: &Client,
    app: AppId,
    provider: &str,
    subject: &str,
    user: &UserId,
) -> StoreResult<UserId> {
    let now = Timestamp::now().0;
    // Autocommit: the insert is committed (or lost to a committed one) before the read, which
    // then sees the winner under READ COMMITTED.
    c.execute(
        "INSERT INTO identity_links (app_id, provider, subject, user_id, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (app_id, provider, subject) DO NOTHING",
        &[&app.0, &provider, &subject, &user.as_str(), &now],
    )
    .await
    .map_err(be)?;
    identity(c, app, provider, subject)
        .await?
        .ok_or_else(|| confab_core::error::StoreError::conflict("the link was removed meanwhile"))
}

pub async fn unlink(c: &Client, app: AppId, provider: &str, subject: &str) -> StoreResult<bool> {
    if unstorable(provider) || unstorable(subject) {
        return Ok(false);
    }
    let n = c
        .execute(
            "DELETE FROM identity_links WHERE app_id = $1 AND provider = $2 AND subject = $3",
            &[&app.0, &provider, &subject],
        )
        .await
        .map_err(be)?;
    Ok(n == 1)
}

pub async fn links(
    c: &Client,
    app: AppId,
    after: Option<(String, String)>,
    limit: usize,
) -> StoreResult<Page<IdentityLink>> {
    let (provider, subject) = after.unwrap_or_default();
    let rows = read::query(
        c,
        "SELECT provider, subject, user_id FROM identity_links
         WHERE app_id = $1
           AND (provider COLLATE \"C\", subject COLLATE \"C\") > ($2 COLLATE \"C\", $3 COLLATE \"C\")
         ORDER BY provider COLLATE \"C\", subject COLLATE \"C\" LIMIT $4",
        &[&app.0, &provider, &subject, &(limit as i64 + 1)],
    )
    .await?;
    let mut out = rows
        .iter()
        .map(|r| {
            Ok(IdentityLink {
                provider: get(r, 0)?,
                subject: get(r, 1)?,
                user: UserId(get(r, 2)?),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let has_more = out.len() > limit;
    out.truncate(limit);
    Ok(Page {
        rows: out,
        has_more,
    })
}
