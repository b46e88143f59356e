//! The reads of apps: every app, one by its token, and an app's signing keys by its token,
//! secret hash or key id.

use crate::fault::sql as be;
use crate::rows;
use confab_core::model::{App, AppKeys};
use confab_core::store::StoreResult;
use rusqlite::{Connection, OptionalExtension, params};

pub(crate) fn apps(c: &Connection) -> StoreResult<Vec<App>> {
    let mut s = c
        .prepare_cached(&format!("SELECT {} FROM apps ORDER BY id", rows::APP_COLS))
        .map_err(be)?;
    s.query_map([], rows::app)
        .map_err(be)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(be)
}

pub(crate) fn app_by_token(c: &Connection, token: &str) -> StoreResult<Option<App>> {
    c.prepare_cached(&format!(
        "SELECT {} FROM apps WHERE token = ?1",
        rows::APP_COLS
    ))
    .and_then(|mut s| s.query_row(params![token], rows::app).optional())
    .map_err(be)
}

pub(crate) fn app_keys_by_token(c: &Connection, token: &str) -> StoreResult<Option<AppKeys>> {
    c.prepare_cached(&format!(
        "SELECT {} FROM apps WHERE token = ?1",
        rows::KEYS_COLS
    ))
    .and_then(|mut s| s.query_row(params![token], rows::keys).optional())
    .map_err(be)
}

pub(crate) fn app_keys_by_secret_hash(c: &Connection, hash: &str) -> StoreResult<Option<AppKeys>> {
    c.prepare_cached(&format!(
        "SELECT {} FROM apps WHERE secret_hash = ?1",
        rows::KEYS_COLS
    ))
    .and_then(|mut s| s.query_row(params![hash], rows::keys).optional())
    .map_err(be)
}

pub(crate) fn app_keys_by_key_id(c: &Connection, key_id: &str) -> StoreResult<Option<AppKeys>> {
    c.prepare_cached(&format!(
        "SELECT {} FROM apps WHERE key_id = ?1",
        rows::KEYS_COLS
    ))
    .and_then(|mut s| s.query_row(params![key_id], rows::keys).optional())
    .map_err(be)
}
