//! Users: upserted and given tokens by their app's backend; seen by other users of the app.

use super::user_id;
use crate::AppState;
use crate::auth;
use crate::dto::{MintTokenReq, TokenDto, UpdateMeReq, UpsertUserReq, UserDto};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppCaller, AppOrUser, Body, Json, Path, UserCaller};
use axum::extract::State;
use confab_core::command::{UpdateProfile, UpsertUser};
use confab_core::ids::Timestamp;
use confab_core::{Command, DomainError, Outcome};

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
