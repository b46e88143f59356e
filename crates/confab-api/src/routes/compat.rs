//! The applications API of seed 004, served beside Confab's own under `/api/v1/apps`.
//!
//! Devices there know only an app's public `token`: an application is a Confab app, a chat is a
//! room of it (created by the app itself, so it has no members and no announcements), and a
//! message is a timeline item sent by the app. Chats and messages are numbered by the same
//! writer as everything else, so numbers stay unique and gapless under any concurrency, and the
//! counts are the live projections (exact at all times).

use super::search::run as run_search;
use crate::AppState;
use crate::dto::{
    CompatAppDto, CompatAutocompleteDto, CompatChatDto, CompatMessageDto, CompatMessageReq,
    CreateAppReq as NameReq,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, Json, Path, Query};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use confab_core::command::{CreateGroup, SendMessage};
use confab_core::ids::{AppId, RoomNumber, Seq};
use confab_core::model::{Item, ItemKind, Visibility};
use confab_core::search::Scope;
use confab_core::{Command, Outcome};
use serde::Deserialize;

/// Longest token we look up; anything longer cannot be one of ours.
const MAX_TOKEN_CHARS: usize = 64;
/// Deepest result reachable by `page`: `page * limit` may not exceed this.
const AUTOCOMPLETE_MAX_DEPTH: usize = 1000;

fn app_not_found() -> ApiError {
    ApiError::not_found("app_not_found", "no application with this token")
}

fn chat_not_found() -> ApiError {
    ApiError::not_found("chat_not_found", "no chat with this number")
}

fn message_not_found() -> ApiError {
    ApiError::not_found("message_not_found", "no message with this number")
}

async fn app_id(state: &AppState, token: &str) -> ApiResult<AppId> {
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Err(app_not_found());
    }
    let keys = state
        .keys
        .by_token(&state.store, token)
        .await?
        .ok_or_else(app_not_found)?;
    Ok(keys.id)
}

async fn app_dto(state: &AppState, token: &str) -> ApiResult<CompatAppDto> {
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Err(app_not_found());
    }
    let app = state
        .store
        .app_by_token(token)
        .await?
        .ok_or_else(app_not_found)?;
    let stats = state.store.app_stats(app.id).await?;
    Ok(CompatAppDto {
        token: app.token,
        name: app.name,
        chats_count: stats.rooms_count,
        created_at: app.created_at.to_rfc3339(),
        updated_at: app.updated_at.to_rfc3339(),
        secret: None,
    })
}

pub async fn create_app(
    State(state): State<AppState>,
    _metered: crate::limit::AppCreation,
    headers: HeaderMap,
    Json(req): Json<NameReq>,
) -> ApiResult<(StatusCode, axum::Json<CompatAppDto>)> {
    if !state.config.open_app_creation {
        Admin::check(&headers, &state)?;
    }
    let created = super::apps::create(&state, req.name).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CompatAppDto {
            secret: created.secret,
            ..app_dto(&state, &created.token).await?
        }),
    ))
}

pub async fn rename_app(
    State(state): State<AppState>,
    _metered: crate::limit::Anonymous,
    Path(token): Path<String>,
    Json(req): Json<NameReq>,
) -> ApiResult<axum::Json<CompatAppDto>> {
    let app = app_id(&state, &token).await?;
    state
        .execute(Command::RenameApp {
            app,
            name: req.name,
        })
        .await?;
    Ok(axum::Json(app_dto(&state, &token).await?))
}

pub async fn get_app(
    State(state): State<AppState>,
    _metered: crate::limit::Anonymous,
    Path(token): Path<String>,
) -> ApiResult<axum::Json<CompatAppDto>> {
    Ok(axum::Json(app_dto(&state, &token).await?))
}

fn chat_dto(room: &confab_core::model::Room) -> CompatChatDto {
    CompatChatDto {
        number: room.number.0,
        messages_count: room.messages_count,
        created_at: room.created_at.to_rfc3339(),
        updated_at: room.updated_at.to_rfc3339(),
    }
}

pub async fn create_chat(
    State(state): State<AppState>,
    _metered: crate::limit::Anonymous,
    Path(token): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<CompatChatDto>)> {
    let app = app_id(&state, &token).await?;
    let cmd = Command::CreateGroup(CreateGroup {
        app,
        actor: None,
        name: None,
        image_url: None,
        visibility: Visibility::Private,
        alias: None,
        members: Vec::new(),
    });
    match state.execute(cmd).await? {
        Outcome::Room { room, .. } => Ok((StatusCode::CREATED, axum::Json(chat_dto(&room)))),
        _ => Err(ApiError::internal()),
    }
}

/// A chat of this API: a room the app made itself. Rooms made by users (groups, direct rooms)
/// do not exist here, whatever their number.
async fn chat(state: &AppState, app: AppId, number: i64) -> ApiResult<confab_core::model::Room> {
    let access = state
        .store
        .access(app, RoomNumber(number), None)
        .await?
        .filter(|a| a.room.is_app_chat())
        .ok_or_else(chat_not_found)?;
    Ok(access.room)
}

pub async fn get_chat(
    State(state): State<AppState>,
    _metered: crate::limit::Anonymous,
    Path((token, number)): Path<(String, i64)>,
) -> ApiResult<axum::Json<CompatChatDto>> {
    let app = app_id(&state, &token).await?;
    Ok(axum::Json(chat_dto(&chat(&state, app, number).await?)))
}

fn message_dto(item: &Item) -> CompatMessageDto {
    CompatMessageDto {
        number: item.seq.0,
        content: item.text.clone(),
        deleted: item.deleted,
        created_at: item.created_at.to_rfc3339(),
        updated_at: item.edited_at.unwrap_or(item.created_at).to_rfc3339(),
    }
}

pub async fn create_message(
    State(state): State<AppState>,
    _metered: crate::limit::Anonymous,
    Path((token, number)): Path<(String, i64)>,
    Json(req): Json<CompatMessageReq>,
) -> ApiResult<(StatusCode, axum::Json<CompatMessageDto>)> {
    let app = app_id(&state, &token).await?;
    // Who made a room never changes, so checking before the send cannot race with it.
    chat(&state, app, number).await?;
    let cmd = Command::Send(SendMessage {
        app,
        actor: None,
        room: RoomNumber(number),
        text: req.content,
        reply_to: None,
        client_id: None,
    });
    match state.execute(cmd).await {
        Ok(Outcome::Item { item, .. }) => Ok((StatusCode::CREATED, axum::Json(message_dto(&item)))),
        Ok(_) => Err(ApiError::internal()),
        Err(confab_core::StoreError::Domain(e))
            if e.code == confab_core::ErrorCode::RoomNotFound =>
        {
            Err(chat_not_found())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn get_message(
    State(state): State<AppState>,
    _metered: crate::limit::Anonymous,
    Path((token, number, seq)): Path<(String, i64, i64)>,
) -> ApiResult<axum::Json<CompatMessageDto>> {
    let app = app_id(&state, &token).await?;
    chat(&state, app, number).await?;
    let item = state
        .store
        .item(app, RoomNumber(number), Seq(seq))
        .await?
        .filter(|i| i.kind == ItemKind::Message)
        .ok_or_else(message_not_found)?;
    Ok(axum::Json(message_dto(&item)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutocompleteParams {
    keyword: Option<String>,
    limit: Option<i64>,
    page: Option<i64>,
}

pub async fn autocomplete(
    State(state): State<AppState>,
    anon: crate::limit::Anonymous,
    Path((token, number)): Path<(String, i64)>,
    Query(p): Query<AutocompleteParams>,
) -> ApiResult<axum::Json<CompatAutocompleteDto>> {
    let app = app_id(&state, &token).await?;
    chat(&state, app, number).await?;
    let limit = crate::cursor::limit(p.limit, crate::cursor::AUTOCOMPLETE)?;
    let page = match p.page {
        None => 1,
        Some(n) if n >= 1 && (n as usize).saturating_mul(limit) <= AUTOCOMPLETE_MAX_DEPTH => {
            n as usize
        }
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_page",
                format!(
                    "page must be 1 or more, and page × limit at most {AUTOCOMPLETE_MAX_DEPTH}"
                ),
            ));
        }
    };
    let keyword = p.keyword.unwrap_or_default();
    anon.search(&state, &keyword)?;
    let skip = (page - 1) * limit;
    let found = run_search(
        &state,
        app,
        Scope::Room(RoomNumber(number)),
        &keyword,
        None,
        skip + limit,
    )
    .await?;
    let messages = found
        .rows
        .iter()
        .skip(skip)
        .map(|h| message_dto(&h.item))
        .collect();
    Ok(axum::Json(CompatAutocompleteDto {
        messages,
        page: page as i64,
        limit: limit as i64,
        has_more: found.has_more,
    }))
}
