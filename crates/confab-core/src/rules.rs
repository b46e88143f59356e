//! The rules: who may do what, and which events a command produces. [`handle`] runs inside one
//! store transaction; a refusal returns an error before anything is appended, so a refused
//! command changes nothing.

use crate::command::{Command, Decision, Outcome};
use crate::error::{DomainError, ErrorCode, StoreError};
use crate::event::{EventBody, MemberAction};
use crate::ids::{AppId, Pos, RoomNumber, Seq, UserId};
use crate::model::{Access, Item, ItemKind, Member, MemberState, Role, RoomKind, Visibility};
use crate::store::{RoomState, StoreResult, Tx};

/// May `access`'s viewer see the room's details? Public rooms: every user of the app. Private
/// rooms: members, and those invited or applying; everyone else gets "not found".
pub fn can_view_room(access: &Access) -> Result<(), DomainError> {
    let involved = access.member.as_ref().is_some_and(|m| {
        matches!(
            m.state,
            MemberState::Joined | MemberState::Invited | MemberState::Applied
        )
    });
    if involved || access.room.visibility == Visibility::Public {
        Ok(())
    } else {
        Err(DomainError::room_not_found())
    }
}

/// May the viewer read the timeline, members and changes? Joined members only; a public room
/// answers "not a member" to others, a private one "not found".
pub fn can_read_timeline(access: &Access) -> Result<Member, DomainError> {
    match &access.member {
        Some(m) if m.state == MemberState::Joined => Ok(m.clone()),
        Some(m)
            if m.state == MemberState::Invited || access.room.visibility == Visibility::Public =>
        {
            let _ = m;
            Err(not_a_member())
        }
        _ if access.room.visibility == Visibility::Public => Err(not_a_member()),
        _ => Err(DomainError::room_not_found()),
    }
}

fn not_a_member() -> DomainError {
    DomainError::new(ErrorCode::NotAMember, "you are not a member of this room")
}

/// The text and structured form of the announcement an event puts in the timeline.
pub fn announcement(body: &EventBody) -> Option<(String, serde_json::Value)> {
    use serde_json::json;
    match body {
        EventBody::RoomCreated {
            creator: Some(c),
            name,
            ..
        } => Some((
            match name {
                Some(n) => format!("{c} created the room \"{n}\""),
                None => format!("{c} created the room"),
            },
            json!({"type": "room_created", "by": c}),
        )),
        EventBody::RoomUpdated {
            by, name: Some(n), ..
        } => Some((
            format!("{by} renamed the room to \"{n}\""),
            json!({"type": "room_renamed", "by": by, "name": n}),
        )),
        EventBody::Membership {
            user, by, action, ..
        } => {
            let text = match action {
                MemberAction::Added => format!("{by} added {user}"),
                MemberAction::Invited => format!("{by} invited {user}"),
                MemberAction::Applied => format!("{user} asked to join"),
                MemberAction::Approved => format!("{by} approved {user}"),
                MemberAction::Rejected => format!("{by} rejected {user}"),
                MemberAction::Joined => format!("{user} joined"),
                MemberAction::Left => format!("{user} left"),
                MemberAction::Declined => format!("{user} declined the invitation"),
                MemberAction::Withdrew => format!("{user} withdrew the request to join"),
                MemberAction::Kicked => format!("{by} removed {user}"),
                MemberAction::Banned => format!("{by} banned {user}"),
                MemberAction::Unbanned => format!("{by} lifted the ban on {user}"),
                MemberAction::RoleChanged => return None,
            };
            Some((
                text,
                json!({"type": format!("member_{}", action.as_str()), "user": user, "by": by}),
            ))
        }
        _ => None,
    }
}

/// Decides `cmd` against the state `tx` sees and appends the resulting events.
pub fn handle(tx: &mut dyn Tx, cmd: Command) -> StoreResult<Outcome> {
    use Command::*;
    match cmd {
        CreateApp {
            name,
            token,
            secret_hash,
            signing_key,
        } => {
            if tx.app_token_taken(&token)? {
                return Err(
                    DomainError::new(ErrorCode::InvalidInput, "token collision, retry").into(),
                );
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
        RenameApp { app: id, name } => {
            let current = app(tx, id)?;
            if current.name != name {
                tx.append(id, EventBody::AppRenamed { name })?;
            }
            Ok(Outcome::App(app(tx, id)?))
        }
        UpsertUser {
            app,
            user,
            name,
            image_url,
            email,
        } => {
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
        UpdateProfile {
            app,
            user,
            name,
            image_url,
        } => {
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
        RecordLogin { app, user } => {
            existing_user(tx, app, &user)?;
            tx.append(app, EventBody::UserLoggedIn { user: user.clone() })?;
            Ok(Outcome::User(existing_user(tx, app, &user)?))
        }
        RecordSeen { app, user } => {
            existing_user(tx, app, &user)?;
            tx.append(app, EventBody::UserSeen { user })?;
            Ok(Outcome::Done)
        }
        CreateDirect { app, actor, with } => create_direct(tx, app, actor, with),
        CreateGroup {
            app,
            actor,
            name,
            image_url,
            visibility,
            alias,
            members,
        } => create_group(tx, app, actor, name, image_url, visibility, alias, members),
        UpdateRoom {
            app,
            actor,
            room,
            name,
            image_url,
            visibility,
        } => {
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
        DeleteRoom { app, actor, room } => {
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
        Join { app, actor, room } => join(tx, app, actor, room),
        Leave { app, actor, room } => leave(tx, app, actor, room),
        Invite {
            app,
            actor,
            room,
            target,
        } => invite(tx, app, actor, room, target),
        Decide {
            app,
            actor,
            room,
            target,
            decision,
        } => decide(tx, app, actor, room, target, decision),
        SetRole {
            app,
            actor,
            room,
            target,
            role,
        } => {
            let rs = load_room(tx, app, room)?;
            let me = require_joined(tx, app, &rs, &actor)?;
            refuse_direct(&rs)?;
            if me.role != Role::Owner {
                return Err(DomainError::not_allowed("only the owner may change roles").into());
            }
            if role == Role::Owner {
                return Err(DomainError::new(
                    ErrorCode::InvalidInput,
                    "role must be admin or member",
                )
                .into());
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
        Send {
            app,
            actor,
            room,
            text,
            reply_to,
            client_id,
        } => send(tx, app, actor, room, text, reply_to, client_id),
        Edit {
            app,
            actor,
            room,
            seq,
            text,
        } => {
            let rs = load_room(tx, app, room)?;
            require_joined(tx, app, &rs, &actor)?;
            let item = message(tx, app, room, seq)?;
            if item.sender.as_ref() != Some(&actor) {
                return Err(DomainError::not_allowed("only the sender may edit a message").into());
            }
            if item.deleted {
                return Err(
                    DomainError::new(ErrorCode::MessageDeleted, "the message was deleted").into(),
                );
            }
            if item.text.as_deref() != Some(text.as_str()) {
                let pos = Pos(rs.room.last_pos.0 + 1);
                tx.append(
                    app,
                    EventBody::MessageEdited {
                        room,
                        seq,
                        pos,
                        text,
                        redacted: false,
                    },
                )?;
            }
            Ok(Outcome::Item {
                item: message(tx, app, room, seq)?,
                created: false,
            })
        }
        Delete {
            app,
            actor,
            room,
            seq,
        } => {
            let rs = load_room(tx, app, room)?;
            let me = require_joined(tx, app, &rs, &actor)?;
            let item = message(tx, app, room, seq)?;
            if item.sender.as_ref() != Some(&actor) && me.role < Role::Admin {
                return Err(DomainError::not_allowed(
                    "only the sender or an admin may delete a message",
                )
                .into());
            }
            if !item.deleted {
                let pos = Pos(rs.room.last_pos.0 + 1);
                tx.append(
                    app,
                    EventBody::MessageDeleted {
                        room,
                        seq,
                        pos,
                        by: Some(actor),
                    },
                )?;
            }
            Ok(Outcome::Item {
                item: message(tx, app, room, seq)?,
                created: false,
            })
        }
        MarkRead {
            app,
            actor,
            room,
            seq,
        } => {
            let rs = load_room(tx, app, room)?;
            let me = require_joined(tx, app, &rs, &actor)?;
            if seq.0 < 0 || seq > rs.room.last_seq {
                return Err(DomainError::new(
                    ErrorCode::SeqOutOfRange,
                    format!("seq must be between 0 and {}", rs.room.last_seq),
                )
                .into());
            }
            if seq <= me.read_seq {
                return Ok(Outcome::ReadMarker(me.read_seq));
            }
            tx.append(
                app,
                EventBody::ReadMarkerSet {
                    room,
                    user: actor,
                    seq,
                },
            )?;
            Ok(Outcome::ReadMarker(seq))
        }
    }
}

fn app(tx: &mut dyn Tx, id: AppId) -> StoreResult<crate::model::App> {
    tx.app(id)?
        .ok_or_else(|| DomainError::new(ErrorCode::AppNotFound, "app not found").into())
}

fn existing_user(tx: &mut dyn Tx, app: AppId, user: &UserId) -> StoreResult<crate::model::User> {
    tx.user(app, user)?
        .ok_or_else(|| DomainError::user_not_found(user).into())
}

fn load_room(tx: &mut dyn Tx, app: AppId, room: RoomNumber) -> StoreResult<RoomState> {
    match tx.room(app, room)? {
        Some(rs) if !rs.room.deleted => Ok(rs),
        _ => Err(DomainError::room_not_found().into()),
    }
}

fn member_of(tx: &mut dyn Tx, app: AppId, room: RoomNumber, user: &UserId) -> StoreResult<Member> {
    tx.member(app, room, user)?
        .ok_or_else(|| StoreError::internal("membership missing after append"))
}

/// The next item seq and change pos of a room.
fn next(rs: &RoomState) -> (Seq, Pos) {
    (Seq(rs.room.last_seq.0 + 1), Pos(rs.room.last_pos.0 + 1))
}

fn refuse_direct(rs: &RoomState) -> Result<(), DomainError> {
    if rs.room.kind == RoomKind::Direct {
        return Err(DomainError::new(
            ErrorCode::DirectRoomFixed,
            "a direct room always has exactly its two members",
        ));
    }
    Ok(())
}

/// The actor's membership, which must be `joined`; otherwise the refusal `can_read_timeline` gives.
fn require_joined(
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

fn joined_target(
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

fn message(tx: &mut dyn Tx, app: AppId, room: RoomNumber, seq: Seq) -> StoreResult<Item> {
    match tx.item(app, room, seq)? {
        Some(i) if i.kind == ItemKind::Message => Ok(i),
        Some(_) => {
            Err(DomainError::new(ErrorCode::NotAMessage, "that item is an announcement").into())
        }
        None => Err(DomainError::new(ErrorCode::MessageNotFound, "message not found").into()),
    }
}

#[allow(clippy::too_many_arguments)]
fn membership(
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
fn announce_member(
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

fn create_direct(tx: &mut dyn Tx, app: AppId, actor: UserId, with: UserId) -> StoreResult<Outcome> {
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

#[allow(clippy::too_many_arguments)]
fn create_group(
    tx: &mut dyn Tx,
    app: AppId,
    actor: Option<UserId>,
    name: Option<String>,
    image_url: Option<String>,
    visibility: Visibility,
    alias: Option<String>,
    members: Vec<UserId>,
) -> StoreResult<Outcome> {
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

fn join(tx: &mut dyn Tx, app: AppId, actor: UserId, room: RoomNumber) -> StoreResult<Outcome> {
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

fn leave(tx: &mut dyn Tx, app: AppId, actor: UserId, room: RoomNumber) -> StoreResult<Outcome> {
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

fn invite(
    tx: &mut dyn Tx,
    app: AppId,
    actor: UserId,
    room: RoomNumber,
    target: UserId,
) -> StoreResult<Outcome> {
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

fn decide(
    tx: &mut dyn Tx,
    app: AppId,
    actor: UserId,
    room: RoomNumber,
    target: UserId,
    decision: Decision,
) -> StoreResult<Outcome> {
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

fn send(
    tx: &mut dyn Tx,
    app: AppId,
    actor: Option<UserId>,
    room: RoomNumber,
    text: String,
    reply_to: Option<Seq>,
    client_id: Option<String>,
) -> StoreResult<Outcome> {
    let rs = load_room(tx, app, room)?;
    if let Some(a) = &actor {
        require_joined(tx, app, &rs, a)?;
    }
    if let Some(cid) = &client_id
        && let Some(item) = tx.item_by_client_id(app, room, actor.as_ref(), cid)?
    {
        if item.text.as_deref() == Some(text.as_str()) && item.reply_to == reply_to {
            return Ok(Outcome::Item {
                item,
                created: false,
            });
        }
        return Err(DomainError::new(
            ErrorCode::ClientIdReused,
            "this client_id was already used for a different message",
        )
        .into());
    }
    if let Some(parent) = reply_to {
        match tx.item(app, room, parent)? {
            None => {
                return Err(DomainError::new(
                    ErrorCode::ReplyTargetNotFound,
                    "reply_to does not name a message of this room",
                )
                .into());
            }
            Some(p) if p.kind != ItemKind::Message => {
                return Err(DomainError::new(
                    ErrorCode::NotAMessage,
                    "replies must point to a message",
                )
                .into());
            }
            Some(p) if p.deleted => {
                return Err(DomainError::new(
                    ErrorCode::MessageDeleted,
                    "the message replied to was deleted",
                )
                .into());
            }
            Some(_) => {}
        }
    }
    let (seq, pos) = next(&rs);
    let event = tx.append(
        app,
        EventBody::MessagePosted {
            room,
            seq,
            pos,
            sender: actor.clone(),
            text: text.clone(),
            reply_to,
            client_id: client_id.clone(),
            redacted: false,
        },
    )?;
    // A new message is exactly what its event says; no need to read it back.
    let item = Item {
        seq,
        pos,
        kind: ItemKind::Message,
        sender: actor,
        text: Some(text),
        reply_to,
        reply_count: 0,
        created_at: event.at,
        edited_at: None,
        deleted: false,
        announcement: None,
        client_id,
    };
    Ok(Outcome::Item {
        item,
        created: true,
    })
}
