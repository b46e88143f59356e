//! Apps: creation and renaming.

use super::load::app;
use crate::command::{CreateApp, Outcome};
use crate::error::{DomainError, ErrorCode};
use crate::event::EventBody;
use crate::ids::AppId;
use crate::store::{StoreResult, Tx};

pub(super) fn create(tx: &mut dyn Tx, cmd: CreateApp) -> StoreResult<Outcome> {
    let CreateApp {
        name,
        token,
        secret_hash,
        signing_key,
    } = cmd;
    if tx.app_token_taken(&token)? {
        return Err(DomainError::new(ErrorCode::InvalidInput, "token collision, retry").into());
    }
    let id = tx.next_app_id()?;
    tx.append(
        id,
        EventBody::AppCreated {
            name,
            token,
            secret_hash,
            signing_key,
        },
    )?;
    Ok(Outcome::App(app(tx, id)?))
}

pub(super) fn rename(tx: &mut dyn Tx, id: AppId, name: String) -> StoreResult<Outcome> {
    let current = app(tx, id)?;
    if current.name != name {
        tx.append(id, EventBody::AppRenamed { name })?;
    }
    Ok(Outcome::App(app(tx, id)?))
}
