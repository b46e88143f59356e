//! The projections: `apply` turns one event into read-model updates. The live write path and
//! `rebuild` both call it, so a replayed store equals the live one.
//!
//! The app row is not touched here except by the events that are about the app itself
//! (created, renamed): its counters change by deltas that the writer applies in the one
//! statement that also takes the app's log offsets, right before COMMIT (see `writer`), so
//! the app row is locked only across the commit.

use crate::conn::Conn;
use crate::rows::{direct_key, kind_str, visibility_str};
use confab_core::error::StoreError;
use confab_core::event::{Event, EventBody};
use confab_core::ids::{AppId, Seq, UserId};
use confab_core::model::MemberState;
use confab_core::rules::announcement;
use confab_core::search::fold;
use confab_core::store::StoreResult;
use std::collections::BTreeMap;

/// What a transaction owes to an app row's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    pub events: i64,
    pub messages: i64,
    pub users: i64,
    pub rooms: i64,
}

/// Per app, in app id order (the order the app rows are locked in).
pub type Deltas = BTreeMap<AppId, Delta>;

fn missing(what: &str) -> StoreError {
    StoreError::Internal(format!("projection: {what} missing"))
}

/// Applies `ev` to every projection but the app row's counters, which go to `deltas`.
pub fn apply(c: &mut Conn, ev: &Event, deltas: &mut Deltas) -> StoreResult<()> {
    let (app, at) = (ev.app.0, ev.at.0);
    let d = deltas.entry(ev.app).or_default();
    d.events += 1;
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
        EventBody::RoomCreated {
            room,
            kind,
            name,
            image_url,
            visibility,
            alias,
            creator,
            direct,
            pos,
            seq,
        } => {
            let dkey = direct.as_ref().map(|(a, b)| direct_key(a, b));
            c.exec(
                "INSERT INTO rooms (app_id, number, kind, name, image_url, visibility, alias, \
                    creator, direct_key, created_at, updated_at, last_pos, last_seq, activity)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, 0, $10)",
                &[
                    &app,
                    &room.0,
                    &kind_str(*kind),
                    name,
                    image_url,
                    &visibility_str(*visibility),
                    alias,
                    &creator.as_ref().map(UserId::as_str),
                    &dkey,
                    &at,
                    &pos.0,
                ],
            )?;
            d.rooms += 1;
            if let Some(seq) = seq {
                announce(c, ev, *seq, creator.as_ref())?;
            }
        }
        EventBody::RoomUpdated {
            room,
            by,
            name,
            image_url,
            visibility,
            pos,
            seq,
        } => {
            c.exec(
                "UPDATE rooms SET name = COALESCE($3, name), image_url = COALESCE($4, image_url),
                    visibility = COALESCE($5, visibility), updated_at = $6, last_pos = $7
                 WHERE app_id = $1 AND number = $2",
                &[
                    &app,
                    &room.0,
                    name,
                    image_url,
                    &visibility.map(visibility_str),
                    &at,
                    &pos.0,
                ],
            )?;
            if let Some(seq) = seq {
                announce(c, ev, *seq, Some(by))?;
            }
        }
        EventBody::RoomDeleted { room, pos, .. } => {
            let row = c.one(
                "UPDATE rooms SET deleted = TRUE, alias = NULL, last_pos = $3, updated_at = $4
                 WHERE app_id = $1 AND number = $2 RETURNING messages_count",
                &[&app, &room.0, &pos.0, &at],
            )?;
            let messages: i64 = crate::rows::get(&row, 0)?;
            d.rooms -= 1;
            d.messages -= messages;
        }
        EventBody::Membership {
            room,
            user,
            by,
            state,
            role,
            new_owner,
            pos,
            seq,
            ..
        } => {
            let before = c.opt(
                "SELECT state, read_seq, since FROM members
                 WHERE app_id = $1 AND room_no = $2 AND user_id = $3",
                &[&app, &room.0, &user.as_str()],
            )?;
            let before = match before {
                Some(r) => Some((
                    crate::rows::get::<String>(&r, 0)?,
                    crate::rows::get::<i64>(&r, 1)?,
                    crate::rows::get::<i64>(&r, 2)?,
                )),
                None => None,
            };
            let was_joined = before
                .as_ref()
                .is_some_and(|(s, _, _)| s == MemberState::Joined.as_str());
            let joined = *state == MemberState::Joined;
            // A member who joins has read everything up to the moment they joined.
            let read_seq = match (&before, joined && !was_joined) {
                (_, true) => match seq {
                    Some(s) => s.0,
                    None => {
                        let r = c.one(
                            "SELECT last_seq FROM rooms WHERE app_id = $1 AND number = $2",
                            &[&app, &room.0],
                        )?;
                        crate::rows::get(&r, 0)?
                    }
                },
                (Some((_, read, _)), false) => *read,
                (None, false) => 0,
            };
            // Seniority (for choosing a new owner) survives role changes of a joined member:
            // the room position of the joining, taken under the room's own lock.
            let since = match (joined && was_joined, &before) {
                (true, Some((_, _, since))) => *since,
                _ => pos.0,
            };
            c.exec(
                "INSERT INTO members (app_id, room_no, user_id, role, state, read_seq, since, \
                    updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (app_id, room_no, user_id) DO UPDATE SET role = $4, state = $5,
                    read_seq = $6, since = $7, updated_at = $8",
                &[
                    &app,
                    &room.0,
                    &user.as_str(),
                    &role.as_str(),
                    &state.as_str(),
                    &read_seq,
                    &since,
                    &at,
                ],
            )?;
            let delta = i64::from(joined) - i64::from(was_joined);
            c.exec(
                "UPDATE rooms SET member_count = member_count + $3, last_pos = $4
                 WHERE app_id = $1 AND number = $2",
                &[&app, &room.0, &delta, &pos.0],
            )?;
            if let Some(owner) = new_owner {
                c.exec(
                    "UPDATE members SET role = 'owner', updated_at = $4
                     WHERE app_id = $1 AND room_no = $2 AND user_id = $3",
                    &[&app, &room.0, &owner.as_str(), &at],
                )?;
            }
            if let Some(seq) = seq {
                announce(c, ev, *seq, Some(by))?;
            }
        }
        EventBody::MessagePosted {
            room,
            seq,
            pos,
            sender,
            text,
            reply_to,
            client_id,
            ..
        } => {
            // One round trip for the whole send: the item, its parent's reply count and the
            // room's counters.
            c.exec(
                "WITH item AS (
                     INSERT INTO items (app_id, room_no, seq, pos, kind, sender, text, folded,
                         reply_to, created_at, client_id)
                     VALUES ($1, $2, $3, $4, 'message', $5, $6, $7, $8, $9, $10)
                 ), parent AS (
                     UPDATE items SET reply_count = reply_count + 1
                     WHERE $8::BIGINT IS NOT NULL AND app_id = $1 AND room_no = $2 AND seq = $8
                 )
                 UPDATE rooms SET last_seq = $3, last_pos = $4,
                     messages_count = messages_count + 1, activity = $9
                 WHERE app_id = $1 AND number = $2",
                &[
                    &app,
                    &room.0,
                    &seq.0,
                    &pos.0,
                    &sender.as_ref().map(UserId::as_str),
                    text,
                    &fold(text),
                    &reply_to.map(|s| s.0),
                    &at,
                    client_id,
                ],
            )?;
            d.messages += 1;
        }
        EventBody::MessageEdited {
            room,
            seq,
            pos,
            text,
            ..
        } => {
            c.exec(
                "WITH item AS (
                     UPDATE items SET text = $4, folded = $5, edited_at = $6, pos = $7
                     WHERE app_id = $1 AND room_no = $2 AND seq = $3
                 )
                 UPDATE rooms SET last_pos = $7 WHERE app_id = $1 AND number = $2",
                &[&app, &room.0, &seq.0, text, &fold(text), &at, &pos.0],
            )?;
        }
        EventBody::MessageDeleted { room, seq, pos, .. } => {
            let row = c.one(
                "UPDATE items SET text = NULL, folded = NULL, deleted = TRUE, pos = $4,
                     edited_at = $5
                 WHERE app_id = $1 AND room_no = $2 AND seq = $3 RETURNING reply_to",
                &[&app, &room.0, &seq.0, &pos.0, &at],
            )?;
            let parent: Option<i64> = crate::rows::get(&row, 0)?;
            c.exec(
                "WITH parent AS (
                     UPDATE items SET reply_count = reply_count - 1
                     WHERE $4::BIGINT IS NOT NULL AND app_id = $1 AND room_no = $2 AND seq = $4
                 )
                 UPDATE rooms SET last_pos = $3, messages_count = messages_count - 1
                 WHERE app_id = $1 AND number = $2",
                &[&app, &room.0, &pos.0, &parent],
            )?;
            d.messages -= 1;
        }
        EventBody::ReadMarkerSet { room, user, seq } => {
            c.exec(
                "UPDATE members SET read_seq = GREATEST(read_seq, $4)
                 WHERE app_id = $1 AND room_no = $2 AND user_id = $3",
                &[&app, &room.0, &user.as_str(), &seq.0],
            )?;
        }
    }
    Ok(())
}

/// Writes the announcement item an event carries at `seq`.
fn announce(c: &mut Conn, ev: &Event, seq: Seq, by: Option<&UserId>) -> StoreResult<()> {
    let Some((text, data)) = announcement(&ev.body) else {
        return Err(missing("announcement text"));
    };
    let (room, pos) = ev.body.room_pos().map_or((0, 0), |(r, p)| (r.0, p.0));
    c.exec(
        "WITH item AS (
             INSERT INTO items (app_id, room_no, seq, pos, kind, sender, text, created_at,
                 announcement)
             VALUES ($1, $2, $3, $4, 'announcement', $5, $6, $7, $8)
         )
         UPDATE rooms SET last_seq = $3, activity = $7 WHERE app_id = $1 AND number = $2",
        &[
            &ev.app.0,
            &room,
            &seq.0,
            &pos,
            &by.map(UserId::as_str),
            &text,
            &ev.at.0,
            &data.to_string(),
        ],
    )?;
    Ok(())
}

/// Applies the counters owed to an app's row and takes offsets of its log (app, events,
/// messages, users, rooms); returns the new last offset.
pub const SETTLE_SQL: &str = "UPDATE apps SET last_offset = last_offset + $2,
        messages_count = messages_count + $3, users_count = users_count + $4,
        rooms_count = rooms_count + $5
    WHERE id = $1 RETURNING last_offset";

/// Applies the counters owed to `app`'s row and takes `d.events` offsets of its log, in one
/// statement; returns the first offset taken.
pub fn settle_app(c: &mut Conn, app: AppId, d: Delta) -> StoreResult<i64> {
    let row = c
        .opt(
            SETTLE_SQL,
            &[&app.0, &d.events, &d.messages, &d.users, &d.rooms],
        )?
        .ok_or_else(|| missing("app row"))?;
    let last: i64 = crate::rows::get(&row, 0)?;
    Ok(last - d.events + 1)
}
