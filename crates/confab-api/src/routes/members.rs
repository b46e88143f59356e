//! Membership: list, join, leave, invite, decisions by admins, roles by the owner.

use super::{readable, user_id};
use crate::AppState;
use crate::cursor;
use crate::dto::{InviteReq, MemberDto, MemberListDto, SetRoleReq};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, UserCaller};
use axum::extract::State;
use confab_core::command::Decision;
use confab_core::command::{Decide, Invite, SetRole};
use confab_core::ids::RoomNumber;
use confab_core::model::{MemberState, Role};
use confab_core::{Command, Outcome};
use serde::Deserialize;

fn member_outcome(o: Outcome) -> ApiResult<axum::Json<MemberDto>> {
    match o {
        Outcome::Member(m) => Ok(axum::Json(MemberDto::new(&m))),
        _ => Err(ApiError::internal()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

pub async fn list_members(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
    Query(q): Query<MembersQuery>,
) -> ApiResult<axum::Json<MemberListDto>> {
    let limit = cursor::limit(q.limit, cursor::PAGE)?;
    let filter = match q.state.as_deref() {
        None => None,
        Some(s) => Some(MemberState::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                "state must be a membership state, e.g. joined",
            )
        })?),
    };
    let after = match &q.cursor {
        // A cursor is client input like any other: what it names must be a user id.
        Some(c) => Some(
            confab_core::validate::user_id(&cursor::decode("members", c, 1)?.remove(0)).map_err(
                |_| ApiError::bad_request("invalid_cursor", "this cursor names no member"),
            )?,
        ),
        None => None,
    };
    readable(&state, me.app, number, &me.user).await?;
    let page = state
        .store
        .members(me.app, RoomNumber(number), filter, after.as_ref(), limit)
        .await?;
    let next_cursor = match (page.has_more, page.rows.last()) {
        (true, Some(last)) => Some(cursor::encode("members", &[last.user.as_str()])),
        _ => None,
    };
    Ok(axum::Json(MemberListDto {
        members: page.rows.iter().map(MemberDto::new).collect(),
        next_cursor,
    }))
}

pub async fn join_room(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
) -> ApiResult<axum::Json<MemberDto>> {
    member_outcome(
        state
            .execute(Command::Join {
                app: me.app,
                actor: me.user,
                room: RoomNumber(number),
            })
            .await?,
    )
}

pub async fn leave_room(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
) -> ApiResult<axum::Json<MemberDto>> {
    member_outcome(
        state
            .execute(Command::Leave {
                app: me.app,
                actor: me.user,
                room: RoomNumber(number),
            })
            .await?,
    )
}

pub async fn invite_member(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
    Json(req): Json<InviteReq>,
) -> ApiResult<axum::Json<MemberDto>> {
    let target = user_id(&req.user_id)?;
    let cmd = Command::Invite(Invite {
        app: me.app,
        actor: me.user,
        room: RoomNumber(number),
        target,
    });
    member_outcome(state.execute(cmd).await?)
}

pub async fn decide_member(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, target, action)): Path<(i64, String, String)>,
) -> ApiResult<axum::Json<MemberDto>> {
    let decision = match action.as_str() {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        "kick" => Decision::Kick,
        "ban" => Decision::Ban,
        "unban" => Decision::Unban,
        _ => return Err(ApiError::not_found("not_found", "no such route")),
    };
    let target = user_id(&target)?;
    let cmd = Command::Decide(Decide {
        app: me.app,
        actor: me.user,
        room: RoomNumber(number),
        target,
        decision,
    });
    member_outcome(state.execute(cmd).await?)
}

pub async fn set_role(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, target)): Path<(i64, String)>,
    Json(req): Json<SetRoleReq>,
) -> ApiResult<axum::Json<MemberDto>> {
    let role = match Role::parse(&req.role) {
        Some(r @ (Role::Admin | Role::Member)) => r,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_input",
                "role must be admin or member",
            ));
        }
    };
    let target = user_id(&target)?;
    let cmd = Command::SetRole(SetRole {
        app: me.app,
        actor: me.user,
        room: RoomNumber(number),
        target,
        role,
    });
    member_outcome(state.execute(cmd).await?)
}
