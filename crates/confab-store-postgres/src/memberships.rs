//! Membership events (joins, leaves, invitations, applications and their decisions, kicks,
//! bans, roles; the memberships a new room starts with) projected in memory, as
//! `projection::members` writes them one event at a time: the member row as it stands after
//! the event (written whole by the flush), the new owner's row, the room's position and
//! member count, and the announcement item (`rooms`). The rows they start from are the
//! transaction's own view (`Tx::member`, `Tx::room`), so a batch of membership changes costs
//! no round trip of its own unless a row is not known yet.

use crate::projection::missing;
use crate::tx::PgTx;
use confab_core::error::StoreError;
use confab_core::event::{Event, EventBody};
use confab_core::ids::{AppId, RoomNumber, Seq};
use confab_core::model::{Member, MemberState, Role};
use confab_core::store::{StoreResult, Tx};

impl PgTx<'_> {
    /// Projects `ev`, a `Membership` event, in memory.
    pub(crate) fn buffer_membership(&mut self, ev: &Event) -> StoreResult<()> {
        let EventBody::Membership {
            room,
            user,
            by,
            state,
            role,
            new_owner,
            pos,
            seq,
            ..
        } = &ev.body
        else {
            return Err(StoreError::internal(format!(
                "memberships: {} is not a membership",
                ev.body.type_name()
            )));
        };
        let (app, room, at) = (ev.app, *room, ev.at);
        // The room as the rules last saw it, before this event (it is in the cache: the rules
        // read it, and a room with buffered writes never leaves the cache).
        let mut rs = self.room(app, room)?.ok_or_else(|| missing("room row"))?;
        let before = self.member(app, room, user)?;
        let was_joined = before
            .as_ref()
            .is_some_and(|m| m.state == MemberState::Joined);
        let joined = *state == MemberState::Joined;
        // A member who joins has read everything up to the moment they joined.
        let read_seq = match &before {
            _ if joined && !was_joined => seq.unwrap_or(rs.room.last_seq),
            Some(m) => m.read_seq,
            None => Seq(0),
        };
        // Seniority (for choosing a new owner) survives role changes of a joined member.
        let since = match &before {
            Some(m) if joined && was_joined => m.since,
            _ => *pos,
        };
        self.keep_member(
            app,
            room,
            Member {
                user: user.clone(),
                role: *role,
                state: *state,
                read_seq,
                updated_at: at,
                since,
            },
        );
        if let Some(owner) = new_owner
            && let Some(mut m) = self.member(app, room, owner)?
        {
            m.role = Role::Owner;
            m.updated_at = at;
            self.keep_member(app, room, m);
        }
        let delta = i64::from(joined) - i64::from(was_joined);
        self.batch.pending.moved(app, room, *pos, delta);
        rs.room.last_pos = *pos;
        rs.room.member_count += delta;
        if let Some(seq) = seq {
            self.announce(ev, *seq, Some(by))?;
            rs.room.last_seq = *seq;
        }
        self.batch.rooms.insert((app, room), rs);
        Ok(())
    }

    /// Records a membership row as this transaction leaves it, for the flush and for later
    /// reads of the transaction.
    fn keep_member(&mut self, app: AppId, room: RoomNumber, m: Member) {
        let key = (app, room, m.user.clone());
        self.batch.members.insert(key.clone(), Some(m.clone()));
        self.batch.pending.set_member(key, m);
    }
}
