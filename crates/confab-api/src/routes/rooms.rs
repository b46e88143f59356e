//! Rooms: create (direct or group), list mine and the public ones, resolve aliases, read,
//! update and delete.

use super::{access, user_id};
use crate::AppState;
use crate::cursor;
use crate::dto::{
    CreateRoomReq, PublicRoomListDto, RoomDto, RoomListDto, RoomSummaryDto, UpdateRoomReq,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, UserCaller};
use axum::extract::State;
use axum::http::StatusCode;
use confab_core::command::{CreateGroup, UpdateRoom};
use confab_core::ids::RoomNumber;
use confab_core::model::{MemberState, Visibility};
use confab_core::{Command, DomainError, Outcome};
use serde::Deserialize;

pub async fn create_room(
    State(state): State<AppState>,
    me: UserCaller,
    Json(req): Json<CreateRoomReq>,
) -> ApiResult<(StatusCode, axum::Json<RoomDto>)> {
    let cmd = match req {
        CreateRoomReq::Direct { with } => Command::CreateDirect {
            app: me.app,
            actor: me.user.clone(),
            with: user_id(&with)?,
        },
        CreateRoomReq::Group {
            name,
            image_url,
            visibility,
            members,
            alias,
        } => {
            let members = members
                .iter()
                .map(|m| user_id(m))
                .collect::<ApiResult<Vec<_>>>()?;
            Command::CreateGroup(CreateGroup {
                app: me.app,
                actor: Some(me.user.clone()),
                name,
                image_url,
                visibility: visibility.unwrap_or(Visibility::Private),
                alias,
                members,
            })
        }
    };
    match state.execute(cmd).await? {
        Outcome::Room { room, created } => {
            let a = access(&state, me.app, room.number.0, &me.user).await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, axum::Json(RoomDto::new(&a.room, a.member.as_ref()))))
        }
        _ => Err(ApiError::internal()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

pub async fn list_rooms(
    State(state): State<AppState>,
    me: UserCaller,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<RoomListDto>> {
    let limit = cursor::limit(q.limit, cursor::PAGE)?;
    // Only states whose rooms the caller may still see: a room one left, was kicked, banned or
    // rejected from is not theirs to list (a private one is "not found" to them).
    let member_state = match q.state.as_deref() {
        None => MemberState::Joined,
        Some(s) => MemberState::parse(s)
            .filter(|st| {
                matches!(
                    st,
                    MemberState::Joined | MemberState::Invited | MemberState::Applied
                )
            })
            .ok_or_else(|| {
                ApiError::bad_request("invalid_query", "state must be joined, invited or applied")
            })?,
    };
    let after = match &q.cursor {
        Some(c) => {
            let v = cursor::decode_i64s("rooms", c, 2)?;
            Some((v[0], RoomNumber(v[1])))
        }
        None => None,
    };
    let page = state
        .store
        .rooms_of_user(me.app, &me.user, member_state, after, limit)
        .await?;
    let next_cursor = match (page.has_more, page.rows.last()) {
        (true, Some(last)) => Some(cursor::encode(
            "rooms",
            &[&last.activity.to_string(), &last.room.number.0.to_string()],
        )),
        _ => None,
    };
    let mut rooms: Vec<RoomSummaryDto> = page.rows.iter().map(RoomSummaryDto::new).collect();
    if member_state != MemberState::Joined {
        // Invited and applying users see the room's details, never its timeline.
        for r in &mut rooms {
            r.last_item = None;
            r.unread_count = 0;
            r.alerts_count = 0;
        }
    }
    Ok(axum::Json(RoomListDto { rooms, next_cursor }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

pub async fn list_public_rooms(
    State(state): State<AppState>,
    me: UserCaller,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<PublicRoomListDto>> {
    let limit = cursor::limit(q.limit, cursor::PAGE)?;
    let after = match &q.cursor {
        Some(c) => Some(RoomNumber(cursor::decode_i64s("public", c, 1)?[0])),
        None => None,
    };
    let page = state.store.public_rooms(me.app, after, limit).await?;
    let next_cursor = match (page.has_more, page.rows.last()) {
        (true, Some(last)) => Some(cursor::encode("public", &[&last.number.0.to_string()])),
        _ => None,
    };
    Ok(axum::Json(PublicRoomListDto {
        rooms: page.rows.iter().map(|r| RoomDto::new(r, None)).collect(),
        next_cursor,
    }))
}

async fn show(state: &AppState, me: &UserCaller, number: i64) -> ApiResult<axum::Json<RoomDto>> {
    let a = access(state, me.app, number, &me.user).await?;
    confab_core::rules::can_view_room(&a)?;
    Ok(axum::Json(RoomDto::new(&a.room, a.member.as_ref())))
}

pub async fn get_room(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
) -> ApiResult<axum::Json<RoomDto>> {
    show(&state, &me, number).await
}

pub async fn get_room_by_alias(
    State(state): State<AppState>,
    me: UserCaller,
    Path(alias): Path<String>,
) -> ApiResult<axum::Json<RoomDto>> {
    let number = state
        .store
        .room_by_alias(me.app, &alias)
        .await?
        .ok_or_else(DomainError::room_not_found)?;
    show(&state, &me, number.0).await
}

pub async fn update_room(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
    Json(req): Json<UpdateRoomReq>,
) -> ApiResult<axum::Json<RoomDto>> {
    let cmd = Command::UpdateRoom(UpdateRoom {
        app: me.app,
        actor: me.user.clone(),
        room: RoomNumber(number),
        name: req.name,
        image_url: req.image_url,
        visibility: req.visibility,
    });
    state.execute(cmd).await?;
    show(&state, &me, number).await
}

pub async fn delete_room(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
) -> ApiResult<StatusCode> {
    let cmd = Command::DeleteRoom {
        app: me.app,
        actor: me.user,
        room: RoomNumber(number),
    };
    state.execute(cmd).await?;
    Ok(StatusCode::NO_CONTENT)
}
