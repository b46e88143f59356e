//! Projection of users: their rows, profile, last login and last seen.

use super::Delta;
use crate::conn::Conn;
use confab_core::event::{Event, EventBody};
use confab_core::store::StoreResult;

/// Applies `ev`, one of this area's events.
pub(super) fn apply(c: &mut Conn, ev: &Event, d: &mut Delta) -> StoreResult<()> {
    let (app, at) = (ev.app.0, ev.at.0);
    match &ev.body {
        EventBody::UserUpserted {
            user,
            name,
            image_url,
            email,
        } => {
            let inserted = c.exec(
                "INSERT INTO users (app_id, user_id, name, image_url, email, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (app_id, user_id) DO NOTHING",
                &[&app, &user.as_str(), name, image_url, email, &at],
            )?;
            if inserted == 1 {
                d.users += 1;
            } else {
                c.exec(
                    "UPDATE users SET name = $3, image_url = $4, email = $5, updated_at = $6
                     WHERE app_id = $1 AND user_id = $2",
                    &[&app, &user.as_str(), name, image_url, email, &at],
                )?;
            }
        }
        EventBody::UserLoggedIn { user } => {
            c.exec(
                "UPDATE users SET last_login_at = $3, last_seen_at = $3 \
                 WHERE app_id = $1 AND user_id = $2",
                &[&app, &user.as_str(), &at],
            )?;
        }
        EventBody::UserSeen { user } => {
            c.exec(
                "UPDATE users SET last_seen_at = $3 WHERE app_id = $1 AND user_id = $2",
                &[&app, &user.as_str(), &at],
            )?;
        }
        other => return Err(super::misrouted(other, "users")),
    }
    Ok(())
}
