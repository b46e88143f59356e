//! Users: upserted and given tokens by their app's backend; seen by other users of the app;
//! what waits for me across my rooms (upcoming meetups, alerts).

use super::user_id;
use crate::AppState;
use crate::auth;
use crate::cursor;
use crate::dto::{
    AlertDto, AlertListDto, MeetupDto, MeetupListDto, MintTokenReq, TokenDto, UpdateMeReq,
    UpsertUserReq, UserDto,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppCaller, AppOrUser, Body, Json, Path, Query, UserCaller};
use crate::limit::{self, READ_COST};
use axum::extract::State;
use confab_core::command::{UpdateProfile, UpsertUser};
use confab_core::ids::{MeetupNumber, PollNumber, RoomNumber, Timestamp};
use confab_core::{Command, DomainError, Outcome};
use serde::Deserialize;

fn user_outcome(o: Outcome, show_email: bool) -> ApiResult<axum::Json<UserDto>> {
    match o {
        Outcome::User(u) => Ok(axum::Json(UserDto::new(&u, show_email))),
        _ => Err(ApiError::internal()),
    }
}

pub async fn upsert_user(
    State(state): State<AppState>,
    caller: AppCaller,
    Path(raw): Path<String>,
    Json(req): Json<UpsertUserReq>,
) -> ApiResult<axum::Json<UserDto>> {
    let user = user_id(&raw)?;
    let cmd = Command::UpsertUser(UpsertUser {
        app: caller.keys.id,
        user,
        name: req.name,
        image_url: req.image_url,
        email: req.email,
    });
    user_outcome(state.execute(cmd).await?, true)
}

pub async fn mint_token(
    State(state): State<AppState>,
    caller: AppCaller,
    Path(raw): Path<String>,
    Body(body): Body,
) -> ApiResult<axum::Json<TokenDto>> {
    let user = user_id(&raw)?;
    let req: MintTokenReq = crate::extract::optional_json(&body)?;
    let max = state.config.max_token_ttl;
    let ttl = req
        .ttl_seconds
        .unwrap_or(state.config.default_token_ttl.min(max));
    if ttl < 1 || ttl > max {
        return Err(ApiError::unprocessable(
            "invalid_ttl",
            format!("ttl_seconds must be between 1 and {max}"),
        ));
    }
    state
        .execute(Command::RecordLogin {
            app: caller.keys.id,
            user: user.clone(),
        })
        .await?;
    let (token, exp) = auth::mint(&caller.keys, &user, ttl)?;
    Ok(axum::Json(TokenDto {
        token,
        user_id: user.0,
        expires_at: Timestamp(exp * 1000).to_rfc3339(),
    }))
}

pub async fn get_user(
    State(state): State<AppState>,
    caller: AppOrUser,
    Path(raw): Path<String>,
) -> ApiResult<axum::Json<UserDto>> {
    let user = user_id(&raw)?;
    let (app, show_email) = match &caller {
        AppOrUser::App(keys) => (keys.id, true),
        AppOrUser::User(u) => (u.app, u.user == user),
    };
    let found = state
        .store
        .user(app, &user)
        .await?
        .ok_or_else(|| DomainError::user_not_found(&user))?;
    Ok(axum::Json(UserDto::new(&found, show_email)))
}

pub async fn get_me(
    State(state): State<AppState>,
    me: UserCaller,
) -> ApiResult<axum::Json<UserDto>> {
    let found = state
        .store
        .user(me.app, &me.user)
        .await?
        .ok_or_else(|| DomainError::user_not_found(&me.user))?;
    Ok(axum::Json(UserDto::new(&found, true)))
}

pub async fn update_me(
    State(state): State<AppState>,
    me: UserCaller,
    Json(req): Json<UpdateMeReq>,
) -> ApiResult<axum::Json<UserDto>> {
    let cmd = Command::UpdateProfile(UpdateProfile {
        app: me.app,
        user: me.user,
        name: req.name,
        image_url: req.image_url,
    });
    user_outcome(state.execute(cmd).await?, true)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinePageQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// My upcoming meetups across the rooms I have joined, soonest first.
pub async fn list_my_meetups(
    State(state): State<AppState>,
    me: UserCaller,
    Query(q): Query<MinePageQuery>,
) -> ApiResult<axum::Json<MeetupListDto>> {
    let limit = cursor::limit(q.limit, cursor::PAGE)?;
    let after = match &q.cursor {
        Some(c) => {
            let v = cursor::decode_i64s("my_meetups", c, 3)?;
            Some((Timestamp(v[0]), RoomNumber(v[1]), MeetupNumber(v[2])))
        }
        None => None,
    };
    state
        .limits
        .user_read(me.app, &me.user, READ_COST)
        .map_err(limit::refused)?;
    let page = state
        .store
        .my_meetups(me.app, &me.user, Timestamp::now(), after, limit)
        .await?;
    let next_cursor = match (page.has_more, page.rows.last()) {
        (true, Some(last)) => Some(cursor::encode(
            "my_meetups",
            &[
                &last.meetup.takes_place_on.0.to_string(),
                &last.room.0.to_string(),
                &last.meetup.number.0.to_string(),
            ],
        )),
        _ => None,
    };
    Ok(axum::Json(MeetupListDto {
        meetups: page.rows.iter().map(MeetupDto::from).collect(),
        next_cursor,
    }))
}

/// My alerts: open polls of my rooms that I may vote on and have not, by room and poll.
pub async fn list_my_alerts(
    State(state): State<AppState>,
    me: UserCaller,
    Query(q): Query<MinePageQuery>,
) -> ApiResult<axum::Json<AlertListDto>> {
    let limit = cursor::limit(q.limit, cursor::PAGE)?;
    let after = match &q.cursor {
        Some(c) => {
            let v = cursor::decode_i64s("alerts", c, 2)?;
            Some((RoomNumber(v[0]), PollNumber(v[1])))
        }
        None => None,
    };
    state
        .limits
        .user_read(me.app, &me.user, READ_COST)
        .map_err(limit::refused)?;
    let page = state
        .store
        .alerts(me.app, &me.user, Timestamp::now(), after, limit)
        .await?;
    let next_cursor = match (page.has_more, page.rows.last()) {
        (true, Some(last)) => Some(cursor::encode(
            "alerts",
            &[&last.room.0.to_string(), &last.poll.0.to_string()],
        )),
        _ => None,
    };
    Ok(axum::Json(AlertListDto {
        alerts: page.rows.iter().map(AlertDto::from).collect(),
        next_cursor,
    }))
}
