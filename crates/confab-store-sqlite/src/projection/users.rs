//! The user rows: upserted (counted on the app the first time), logins and activity.

use super::{Cx, R, misrouted};
use confab_core::event::EventBody;
use rusqlite::params;

pub(super) fn apply(cx: &Cx<'_>) -> R {
    let (conn, app, at) = (cx.conn, cx.app(), cx.at());
    match &cx.ev.body {
        EventBody::UserUpserted {
            user,
            name,
            image_url,
            email,
        } => {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO users (app_id, user_id, name, image_url, email, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                     ON CONFLICT (app_id, user_id) DO NOTHING",
                )?
                .execute(params![app, user.as_str(), name, image_url, email, at])?;
            if inserted == 1 {
                conn.prepare_cached("UPDATE apps SET users_count = users_count + 1 WHERE id = ?1")?
                    .execute(params![app])?;
            } else {
                conn.prepare_cached(
                    "UPDATE users SET name = ?3, image_url = ?4, email = ?5, updated_at = ?6
                     WHERE app_id = ?1 AND user_id = ?2",
                )?
                .execute(params![
                    app,
                    user.as_str(),
                    name,
                    image_url,
                    email,
                    at
                ])?;
            }
        }
        EventBody::UserLoggedIn { user } => {
            conn.prepare_cached(
                "UPDATE users SET last_login_at = ?3, last_seen_at = ?3 WHERE app_id = ?1 AND user_id = ?2",
            )?
            .execute(params![app, user.as_str(), at])?;
        }
        EventBody::UserSeen { user } => {
            conn.prepare_cached(
                "UPDATE users SET last_seen_at = ?3 WHERE app_id = ?1 AND user_id = ?2",
            )?
            .execute(params![app, user.as_str(), at])?;
        }
        other => return Err(misrouted(other)),
    }
    Ok(())
}
