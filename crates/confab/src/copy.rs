//! `confab copy`: moves a store's whole content into another (SQLite into PostgreSQL, say) by
//! replaying its event log. The target must be empty; its read models are built by its own
//! projections from the copied events, and the counts of both are compared at the end.
//! Operational state that is not in the log (each app's identity providers and identity
//! links) is copied after the app's events.

use anyhow::{Context, bail};
use confab_core::ids::Offset;
use confab_core::store::{Progress, Store};
use std::sync::Arc;

/// Events read and imported per round (one transaction each on the target).
const PAGE: usize = 1000;

/// What a finished copy moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub apps: usize,
    pub events: u64,
}

/// Copies every app's log from `source` into the empty `target`, then checks that both stores
/// hold the same number of events and, for each app, the same counts and last offset.
pub async fn copy(
    source: &Arc<dyn Store>,
    target: &Arc<dyn Store>,
    progress: Progress,
) -> anyhow::Result<Copied> {
    let existing = target.log_len().await.context("cannot read the target")?;
    if existing > 0 {
        bail!("the target is not empty: it holds {existing} events; copy only into a new database");
    }
    let total = source.log_len().await.context("cannot read the source")?;
    let apps = source
        .apps()
        .await
        .context("cannot list the source's apps")?;
    let mut done = 0u64;
    progress(0, total);
    for app in &apps {
        let mut after = Offset(0);
        loop {
            let page = source.events(app.id, after, PAGE).await?;
            let Some(last) = page.rows.last() else { break };
            after = last.offset;
            let n = page.rows.len() as u64;
            target.import(page.rows).await.with_context(|| {
                format!("cannot import app {}'s events after {}", app.token, after.0)
            })?;
            done += n;
            progress(done, total);
            if !page.has_more {
                break;
            }
        }
    }
    for app in &apps {
        copy_identities(source, target, app.id)
            .await
            .with_context(|| format!("cannot copy app {}'s identity providers", app.token))?;
    }
    let copied = target.log_len().await?;
    if copied != total || done != total {
        bail!("copied {done} events but the source holds {total} and the target {copied}");
    }
    for app in &apps {
        let (a, b) = (
            source.app_stats(app.id).await?,
            target.app_stats(app.id).await?,
        );
        if a != b {
            bail!(
                "app {}: the source counts {a:?}, the target {b:?}",
                app.token
            );
        }
    }
    let (a, b) = (source.apps().await?, target.apps().await?);
    if a != b {
        bail!("the apps of the target differ from the source's");
    }
    Ok(Copied {
        apps: apps.len(),
        events: total,
    })
}

/// An app's identity provider settings and identity links, which live beside the log.
async fn copy_identities(
    source: &Arc<dyn Store>,
    target: &Arc<dyn Store>,
    app: confab_core::ids::AppId,
) -> anyhow::Result<()> {
    for p in source.identity_providers(app).await? {
        target.put_identity_provider(app, &p.id, &p.config).await?;
    }
    let mut after = None;
    loop {
        let page = source.identity_links(app, after, PAGE).await?;
        for l in &page.rows {
            let linked = target
                .link_identity(app, &l.provider, &l.subject, &l.user)
                .await?;
            if linked != l.user {
                bail!(
                    "identity {}/{} is linked apart in the target",
                    l.provider,
                    l.subject
                );
            }
        }
        let Some(last) = page.rows.last() else { break };
        after = Some((last.provider.clone(), last.subject.clone()));
        if !page.has_more {
            break;
        }
    }
    Ok(())
}
