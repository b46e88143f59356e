//! The app rows: created and renamed. Their counters (rooms, users, messages, log offset) are
//! kept by the areas that change them and by `apply`.

use super::{Cx, R, misrouted};
use confab_core::event::EventBody;
use rusqlite::params;

pub(super) fn apply(cx: &Cx<'_>) -> R {
    let (app, at) = (cx.app(), cx.at());
    match &cx.ev.body {
        EventBody::AppCreated {
            name,
            token,
            secret_hash,
            signing_key,
        } => {
            cx.conn
                .prepare_cached(
                    "INSERT INTO apps (id, name, token, secret_hash, signing_key, key_id, created_at, \
                     updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                )?
                .execute(params![
                    app,
                    name,
                    token,
                    secret_hash,
                    signing_key,
                    confab_core::model::key_id(signing_key),
                    at
                ])?;
        }
        EventBody::AppRenamed { name } => {
            cx.conn
                .prepare_cached("UPDATE apps SET name = ?2, updated_at = ?3 WHERE id = ?1")?
                .execute(params![app, name, at])?;
        }
        other => return Err(misrouted(other)),
    }
    Ok(())
}
