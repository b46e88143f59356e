//! Users: upserts by the app, profile changes by the user, logins and last-seen times.

use super::load::existing_user;
use crate::command::{Outcome, UpdateProfile, UpsertUser};
use crate::event::EventBody;
use crate::ids::{AppId, UserId};
use crate::store::{StoreResult, Tx};

pub(super) fn upsert(tx: &mut dyn Tx, cmd: UpsertUser) -> StoreResult<Outcome> {
    let UpsertUser {
        app,
        user,
        name,
        image_url,
        email,
    } = cmd;
    tx.append(
        app,
        EventBody::UserUpserted {
            user: user.clone(),
            name,
            image_url,
            email,
        },
    )?;
    Ok(Outcome::User(existing_user(tx, app, &user)?))
}

pub(super) fn update_profile(tx: &mut dyn Tx, cmd: UpdateProfile) -> StoreResult<Outcome> {
    let UpdateProfile {
        app,
        user,
        name,
        image_url,
    } = cmd;
    let cur = existing_user(tx, app, &user)?;
    let name = name.or(cur.name.clone());
    let image_url = image_url.or(cur.image_url.clone());
    if name != cur.name || image_url != cur.image_url {
        let email = cur.email.clone();
        tx.append(
            app,
            EventBody::UserUpserted {
                user: user.clone(),
                name,
                image_url,
                email,
            },
        )?;
    }
    Ok(Outcome::User(existing_user(tx, app, &user)?))
}

pub(super) fn record_login(tx: &mut dyn Tx, app: AppId, user: UserId) -> StoreResult<Outcome> {
    existing_user(tx, app, &user)?;
    tx.append(app, EventBody::UserLoggedIn { user: user.clone() })?;
    Ok(Outcome::User(existing_user(tx, app, &user)?))
}

pub(super) fn record_seen(tx: &mut dyn Tx, app: AppId, user: UserId) -> StoreResult<Outcome> {
    existing_user(tx, app, &user)?;
    tx.append(app, EventBody::UserSeen { user })?;
    Ok(Outcome::Done)
}
