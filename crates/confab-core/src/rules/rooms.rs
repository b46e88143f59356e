//! Rooms: direct and group creation, settings, deletion.

use super::load::{
    announce_member, existing_user, load_room, membership, next, refuse_direct, require_joined,
};
use crate::command::{CreateGroup, Outcome, UpdateRoom};
use crate::error::{DomainError, ErrorCode};
use crate::event::{EventBody, MemberAction};
use crate::ids::{AppId, Pos, RoomNumber, Seq, UserId};
use crate::model::{MemberState, Role, RoomKind, Visibility};
use crate::store::{StoreResult, Tx};

pub(super) fn create_direct(
    tx: &mut dyn Tx,
    app: AppId,
    actor: UserId,
    with: UserId,
) -> StoreResult<Outcome> {
    if actor == with {
        return Err(DomainError::new(
            ErrorCode::DirectWithSelf,
            "a direct room needs another user",
        )
        .into());
    }
    existing_user(tx, app, &actor)?;
    existing_user(tx, app, &with)?;
    if let Some(n) = tx.direct_room(app, &actor, &with)? {
        return Ok(Outcome::Room {
            room: load_room(tx, app, n)?.room,
            created: false,
        });
    }
    let room = RoomNumber(tx.last_room_number(app)?.0 + 1);
    let pair = if actor < with {
        (actor.clone(), with.clone())
    } else {
        (with.clone(), actor.clone())
    };
    tx.append(
        app,
        EventBody::RoomCreated {
            room,
            kind: RoomKind::Direct,
            name: None,
            image_url: None,
            visibility: Visibility::Private,
            alias: None,
            creator: Some(actor.clone()),
            direct: Some(pair),
            pos: Pos(1),
            seq: Some(Seq(1)),
        },
    )?;
    for (i, user) in [&actor, &with].into_iter().enumerate() {
        let pos = Pos(2 + i as i64);
        tx.append(
            app,
            membership(
                room,
                user,
                &actor,
                MemberAction::Added,
                MemberState::Joined,
                Role::Member,
                pos,
                None,
            ),
        )?;
    }
    Ok(Outcome::Room {
        room: load_room(tx, app, room)?.room,
        created: true,
    })
}

pub(super) fn create_group(tx: &mut dyn Tx, cmd: CreateGroup) -> StoreResult<Outcome> {
    let CreateGroup {
        app,
        actor,
        name,
        image_url,
        visibility,
        alias,
        members,
    } = cmd;
    if let Some(a) = &alias
        && tx.room_by_alias(app, a)?.is_some()
    {
        return Err(
            DomainError::new(ErrorCode::RoomAliasTaken, format!("alias '{a}' is taken")).into(),
        );
    }
    let mut others: Vec<UserId> = Vec::new();
    for m in members {
        if Some(&m) != actor.as_ref() && !others.contains(&m) {
            others.push(m);
        }
    }
    let Some(creator) = actor else {
        if !others.is_empty() {
            return Err(DomainError::new(
                ErrorCode::InvalidInput,
                "a room made by the app starts empty",
            )
            .into());
        }
        let room = RoomNumber(tx.last_room_number(app)?.0 + 1);
        tx.append(
            app,
            EventBody::RoomCreated {
                room,
                kind: RoomKind::Group,
                name,
                image_url,
                visibility,
                alias,
                creator: None,
                direct: None,
                pos: Pos(1),
                seq: None,
            },
        )?;
        return Ok(Outcome::Room {
            room: load_room(tx, app, room)?.room,
            created: true,
        });
    };
    existing_user(tx, app, &creator)?;
    for m in &others {
        existing_user(tx, app, m)?;
    }
    let room = RoomNumber(tx.last_room_number(app)?.0 + 1);
    tx.append(
        app,
        EventBody::RoomCreated {
            room,
            kind: RoomKind::Group,
            name,
            image_url,
            visibility,
            alias,
            creator: Some(creator.clone()),
            direct: None,
            pos: Pos(1),
            seq: Some(Seq(1)),
        },
    )?;
    tx.append(
        app,
        membership(
            room,
            &creator,
            &creator,
            MemberAction::Added,
            MemberState::Joined,
            Role::Owner,
            Pos(2),
            None,
        ),
    )?;
    for m in &others {
        announce_member(
            tx,
            app,
            room,
            (m, &creator),
            MemberAction::Added,
            MemberState::Joined,
            Role::Member,
        )?;
    }
    Ok(Outcome::Room {
        room: load_room(tx, app, room)?.room,
        created: true,
    })
}

pub(super) fn update(tx: &mut dyn Tx, cmd: UpdateRoom) -> StoreResult<Outcome> {
    let UpdateRoom {
        app,
        actor,
        room,
        name,
        image_url,
        visibility,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    let me = require_joined(tx, app, &rs, &actor)?;
    refuse_direct(&rs)?;
    if me.role < Role::Admin {
        return Err(DomainError::not_allowed("only admins may change the room").into());
    }
    let r = &rs.room;
    let name = name.filter(|n| Some(n) != r.name.as_ref());
    let image_url = image_url.filter(|u| Some(u) != r.image_url.as_ref());
    let visibility = visibility.filter(|v| *v != r.visibility);
    if name.is_some() || image_url.is_some() || visibility.is_some() {
        let (seq, pos) = next(&rs);
        let seq = name.as_ref().map(|_| seq);
        tx.append(
            app,
            EventBody::RoomUpdated {
                room,
                by: actor,
                name,
                image_url,
                visibility,
                pos,
                seq,
            },
        )?;
    }
    Ok(Outcome::Room {
        room: load_room(tx, app, room)?.room,
        created: false,
    })
}

pub(super) fn delete(
    tx: &mut dyn Tx,
    app: AppId,
    actor: UserId,
    room: RoomNumber,
) -> StoreResult<Outcome> {
    let rs = load_room(tx, app, room)?;
    let me = require_joined(tx, app, &rs, &actor)?;
    refuse_direct(&rs)?;
    if me.role != Role::Owner {
        return Err(DomainError::not_allowed("only the owner may delete the room").into());
    }
    let pos = Pos(rs.room.last_pos.0 + 1);
    tx.append(
        app,
        EventBody::RoomDeleted {
            room,
            by: actor,
            pos,
        },
    )?;
    Ok(Outcome::Done)
}
