//! Projection of memberships: state, role, seniority, read marker at joining, member count.
//! One event at a time, for rebuild: the reference for the writer's in-memory projection
//! (`memberships`), which must leave the same rows.

use super::announce;
use crate::conn::Conn;
use confab_core::event::{Event, EventBody};
use confab_core::model::MemberState;
use confab_core::store::StoreResult;

/// Applies `ev`, one of this area's events.
pub(super) fn apply(c: &mut Conn, ev: &Event) -> StoreResult<()> {
    let (app, at) = (ev.app.0, ev.at.0);
    match &ev.body {
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
        other => return Err(super::misrouted(other, "members")),
    }
    Ok(())
}
