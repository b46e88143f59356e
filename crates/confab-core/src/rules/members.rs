//! Membership: joining, leaving, invitations, applications and their decisions, kicks, bans
//! and roles.

use super::access::{can_read_timeline, not_a_member};
use super::load::{
    announce_member, existing_user, joined_target, load_room, member_of, membership, next,
    refuse_direct, require_joined,
};
use crate::command::{Decide, Decision, Invite, Outcome, SetRole};
use crate::error::{DomainError, ErrorCode, StoreError};
use crate::event::{EventBody, MemberAction};
use crate::ids::{AppId, Pos, RoomNumber, UserId};
use crate::model::{Access, Member, MemberState, Role, RoomKind, Visibility};
use crate::store::{StoreResult, Tx};

pub(super) fn join(
    tx: &mut dyn Tx,
    app: AppId,
    actor: UserId,
    room: RoomNumber,
) -> StoreResult<Outcome> {
    let rs = load_room(tx, app, room)?;
    let current = tx.member(app, room, &actor)?;
    let state = current.as_ref().map(|m| m.state);
    if let Some(m) = current.as_ref().filter(|m| m.state == MemberState::Joined) {
        return Ok(Outcome::Member(m.clone()));
    }
    // Chats of the compatible API have no members and never get any: users cannot see them.
    if rs.room.kind == RoomKind::Direct || rs.room.is_app_chat() {
        return Err(DomainError::room_not_found().into());
    }
    if state == Some(MemberState::Banned) {
        return Err(DomainError::new(ErrorCode::Banned, "you are banned from this room").into());
    }
    let who = (&actor, &actor);
    let m = match (rs.room.visibility, state) {
        (Visibility::Public, _) | (Visibility::Private, Some(MemberState::Invited)) => {
            announce_member(
                tx,
                app,
                room,
                who,
                MemberAction::Joined,
                MemberState::Joined,
                Role::Member,
            )?
        }
        (Visibility::Private, Some(MemberState::Applied)) => current
            .clone()
            .ok_or_else(|| StoreError::internal("lost member"))?,
        (Visibility::Private, _) => announce_member(
            tx,
            app,
            room,
            who,
            MemberAction::Applied,
            MemberState::Applied,
            Role::Member,
        )?,
    };
    Ok(Outcome::Member(m))
}

pub(super) fn leave(
    tx: &mut dyn Tx,
    app: AppId,
    actor: UserId,
    room: RoomNumber,
) -> StoreResult<Outcome> {
    let rs = load_room(tx, app, room)?;
    let current = tx.member(app, room, &actor)?;
    let action = match current.as_ref().map(|m| m.state) {
        Some(MemberState::Joined) => MemberAction::Left,
        Some(MemberState::Invited) => MemberAction::Declined,
        Some(MemberState::Applied) => MemberAction::Withdrew,
        _ => {
            can_read_timeline(&Access {
                room: rs.room.clone(),
                member: current,
            })?;
            return Err(not_a_member().into());
        }
    };
    refuse_direct(&rs)?;
    let role = current.as_ref().map_or(Role::Member, |m| m.role);
    let new_owner = if role == Role::Owner {
        tx.successor(app, room, &actor)?
    } else {
        None
    };
    let (seq, pos) = next(&rs);
    tx.append(
        app,
        EventBody::Membership {
            room,
            user: actor.clone(),
            by: actor.clone(),
            action,
            state: MemberState::Left,
            role: Role::Member,
            new_owner,
            pos,
            seq: Some(seq),
        },
    )?;
    Ok(Outcome::Member(member_of(tx, app, room, &actor)?))
}

pub(super) fn invite(tx: &mut dyn Tx, cmd: Invite) -> StoreResult<Outcome> {
    let Invite {
        app,
        actor,
        room,
        target,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    let me = require_joined(tx, app, &rs, &actor)?;
    refuse_direct(&rs)?;
    if rs.room.visibility == Visibility::Private && me.role < Role::Admin {
        return Err(DomainError::not_allowed("only admins may invite to a private room").into());
    }
    existing_user(tx, app, &target)?;
    let current = tx.member(app, room, &target)?;
    let who = (&target, &actor);
    let m = match current.as_ref().map(|m| m.state) {
        Some(MemberState::Joined) => {
            return Err(DomainError::new(
                ErrorCode::AlreadyMember,
                format!("'{target}' is already a member"),
            )
            .into());
        }
        Some(MemberState::Banned) => {
            return Err(DomainError::new(
                ErrorCode::Banned,
                format!("'{target}' is banned; lift the ban first"),
            )
            .into());
        }
        Some(MemberState::Invited) => current
            .clone()
            .ok_or_else(|| StoreError::internal("lost member"))?,
        Some(MemberState::Applied) => announce_member(
            tx,
            app,
            room,
            who,
            MemberAction::Approved,
            MemberState::Joined,
            Role::Member,
        )?,
        _ => announce_member(
            tx,
            app,
            room,
            who,
            MemberAction::Invited,
            MemberState::Invited,
            Role::Member,
        )?,
    };
    Ok(Outcome::Member(m))
}

pub(super) fn decide(tx: &mut dyn Tx, cmd: Decide) -> StoreResult<Outcome> {
    let Decide {
        app,
        actor,
        room,
        target,
        decision,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    let me = require_joined(tx, app, &rs, &actor)?;
    refuse_direct(&rs)?;
    if me.role < Role::Admin {
        return Err(DomainError::not_allowed("only admins may decide on members").into());
    }
    existing_user(tx, app, &target)?;
    let current = tx.member(app, room, &target)?;
    let state = current.as_ref().map(|m| m.state);
    let outranks = |m: &Option<Member>| match m {
        Some(m) if m.state == MemberState::Joined || m.state == MemberState::Invited => {
            m.role < me.role
        }
        _ => true,
    };
    if target == actor || !outranks(&current) {
        return Err(DomainError::new(
            ErrorCode::CannotTargetRank,
            "you cannot do that to someone of your rank or above",
        )
        .into());
    }
    let who = (&target, &actor);
    let (action, new_state) = match decision {
        Decision::Approve | Decision::Reject if state != Some(MemberState::Applied) => {
            return Err(DomainError::new(
                ErrorCode::NotApplied,
                format!("'{target}' has not applied"),
            )
            .into());
        }
        Decision::Approve => (MemberAction::Approved, MemberState::Joined),
        Decision::Reject => (MemberAction::Rejected, MemberState::Rejected),
        Decision::Kick => match state {
            Some(MemberState::Joined | MemberState::Invited) => {
                (MemberAction::Kicked, MemberState::Kicked)
            }
            _ => {
                return Err(DomainError::new(
                    ErrorCode::TargetNotMember,
                    format!("'{target}' is not a member"),
                )
                .into());
            }
        },
        Decision::Ban if state == Some(MemberState::Banned) => {
            return Ok(Outcome::Member(member_of(tx, app, room, &target)?));
        }
        Decision::Ban => (MemberAction::Banned, MemberState::Banned),
        Decision::Unban if state != Some(MemberState::Banned) => {
            return Err(DomainError::new(
                ErrorCode::NotBanned,
                format!("'{target}' is not banned"),
            )
            .into());
        }
        Decision::Unban => (MemberAction::Unbanned, MemberState::Left),
    };
    Ok(Outcome::Member(announce_member(
        tx,
        app,
        room,
        who,
        action,
        new_state,
        Role::Member,
    )?))
}

pub(super) fn set_role(tx: &mut dyn Tx, cmd: SetRole) -> StoreResult<Outcome> {
    let SetRole {
        app,
        actor,
        room,
        target,
        role,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    let me = require_joined(tx, app, &rs, &actor)?;
    refuse_direct(&rs)?;
    if me.role != Role::Owner {
        return Err(DomainError::not_allowed("only the owner may change roles").into());
    }
    if role == Role::Owner {
        return Err(
            DomainError::new(ErrorCode::InvalidInput, "role must be admin or member").into(),
        );
    }
    if target == actor {
        return Err(DomainError::new(
            ErrorCode::CannotTargetRank,
            "the owner's role cannot change",
        )
        .into());
    }
    let t = joined_target(tx, app, room, &target)?;
    if t.role != role {
        let pos = Pos(rs.room.last_pos.0 + 1);
        tx.append(
            app,
            membership(
                room,
                &target,
                &actor,
                MemberAction::RoleChanged,
                MemberState::Joined,
                role,
                pos,
                None,
            ),
        )?;
    }
    Ok(Outcome::Member(member_of(tx, app, room, &target)?))
}
