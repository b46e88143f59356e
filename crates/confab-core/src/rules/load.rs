//! What the rules of every area read from a transaction, with the refusal each lookup gives,
//! and the shapes of membership events they append.

use super::access::can_read_timeline;
use crate::error::{DomainError, ErrorCode, StoreError};
use crate::event::{EventBody, MemberAction};
use crate::ids::{AppId, Pos, RoomNumber, Seq, UserId};
use crate::model::{Access, Item, ItemKind, Member, MemberState, Role, RoomKind};
use crate::store::{RoomState, StoreResult, Tx};

pub(super) fn app(tx: &mut dyn Tx, id: AppId) -> StoreResult<crate::model::App> {
    tx.app(id)?
        .ok_or_else(|| DomainError::new(ErrorCode::AppNotFound, "app not found").into())
}

pub(super) fn existing_user(
    tx: &mut dyn Tx,
    app: AppId,
    user: &UserId,
) -> StoreResult<crate::model::User> {
    tx.user(app, user)?
        .ok_or_else(|| DomainError::user_not_found(user).into())
}

pub(super) fn load_room(tx: &mut dyn Tx, app: AppId, room: RoomNumber) -> StoreResult<RoomState> {
    match tx.room(app, room)? {
        Some(rs) if !rs.room.deleted => Ok(rs),
        _ => Err(DomainError::room_not_found().into()),
    }
}

pub(super) fn member_of(
    tx: &mut dyn Tx,
    app: AppId,
    room: RoomNumber,
    user: &UserId,
) -> StoreResult<Member> {
    tx.member(app, room, user)?
        .ok_or_else(|| StoreError::internal("membership missing after append"))
}

/// The next item seq and change pos of a room.
pub(super) fn next(rs: &RoomState) -> (Seq, Pos) {
    (Seq(rs.room.last_seq.0 + 1), Pos(rs.room.last_pos.0 + 1))
}

pub(super) fn refuse_direct(rs: &RoomState) -> Result<(), DomainError> {
    if rs.room.kind == RoomKind::Direct {
        return Err(DomainError::new(
            ErrorCode::DirectRoomFixed,
            "a direct room always has exactly its two members",
        ));
    }
    Ok(())
}

/// The actor's membership, which must be `joined`; otherwise the refusal `can_read_timeline` gives.
pub(super) fn require_joined(
    tx: &mut dyn Tx,
    app: AppId,
    rs: &RoomState,
    actor: &UserId,
) -> StoreResult<Member> {
    let member = tx.member(app, rs.room.number, actor)?;
    let access = Access {
        room: rs.room.clone(),
        member,
    };
    Ok(can_read_timeline(&access)?)
}

pub(super) fn joined_target(
    tx: &mut dyn Tx,
    app: AppId,
    room: RoomNumber,
    target: &UserId,
) -> StoreResult<Member> {
    match tx.member(app, room, target)? {
        Some(m) if m.state == MemberState::Joined => Ok(m),
        _ => Err(DomainError::new(
            ErrorCode::TargetNotMember,
            format!("'{target}' is not a member"),
        )
        .into()),
    }
}

pub(super) fn message(
    tx: &mut dyn Tx,
    app: AppId,
    room: RoomNumber,
    seq: Seq,
) -> StoreResult<Item> {
    match tx.item(app, room, seq)? {
        Some(i) if i.kind == ItemKind::Message => Ok(i),
        Some(_) => {
            Err(DomainError::new(ErrorCode::NotAMessage, "that item is an announcement").into())
        }
        None => Err(DomainError::new(ErrorCode::MessageNotFound, "message not found").into()),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn membership(
    room: RoomNumber,
    user: &UserId,
    by: &UserId,
    action: MemberAction,
    state: MemberState,
    role: Role,
    pos: Pos,
    seq: Option<Seq>,
) -> EventBody {
    EventBody::Membership {
        room,
        user: user.clone(),
        by: by.clone(),
        action,
        state,
        role,
        new_owner: None,
        pos,
        seq,
    }
}

/// Appends a membership change with its announcement at the room's next seq and pos.
pub(super) fn announce_member(
    tx: &mut dyn Tx,
    app: AppId,
    room: RoomNumber,
    (user, by): (&UserId, &UserId),
    action: MemberAction,
    state: MemberState,
    role: Role,
) -> StoreResult<Member> {
    let rs = load_room(tx, app, room)?;
    let (seq, pos) = next(&rs);
    tx.append(
        app,
        membership(room, user, by, action, state, role, pos, Some(seq)),
    )?;
    member_of(tx, app, room, user)
}
