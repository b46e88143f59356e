//! Projection of the events about an app itself: its row, created and renamed.

use crate::conn::Conn;
use confab_core::event::{Event, EventBody};
use confab_core::store::StoreResult;

/// Applies `ev`, one of this area's events.
pub(super) fn apply(c: &mut Conn, ev: &Event) -> StoreResult<()> {
    let (app, at) = (ev.app.0, ev.at.0);
    match &ev.body {
        EventBody::AppCreated {
            name,
            token,
            secret_hash,
            signing_key,
        } => {
            c.exec(
                "INSERT INTO apps (id, name, token, secret_hash, signing_key, key_id, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                &[
                    &app,
                    name,
                    token,
                    secret_hash,
                    signing_key,
                    &confab_core::model::key_id(signing_key),
                    &at,
                ],
            )?;
        }
        EventBody::AppRenamed { name } => {
            c.exec(
                "UPDATE apps SET name = $2, updated_at = $3 WHERE id = $1",
                &[&app, name, &at],
            )?;
        }
        other => return Err(super::misrouted(other, "apps")),
    }
    Ok(())
}
