//! Apps: created and listed by the operator; an app sees itself with its counts.

use crate::AppState;
use crate::auth;
use crate::dto::{AppDto, CreateAppReq};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, AppCaller, Json};
use axum::extract::State;
use axum::http::StatusCode;
use confab_core::command::CreateApp;
use confab_core::{Command, Outcome};

pub async fn create_app(
    State(state): State<AppState>,
    _admin: Admin,
    Json(req): Json<CreateAppReq>,
) -> ApiResult<(StatusCode, axum::Json<AppDto>)> {
    let dto = create(&state, req.name).await?;
    Ok((StatusCode::CREATED, axum::Json(dto)))
}

/// Creates an app; the answer carries its secret, shown this once.
pub async fn create(state: &AppState, name: String) -> ApiResult<AppDto> {
    let secret = auth::new_app_secret();
    let cmd = Command::CreateApp(CreateApp {
        name,
        token: auth::new_app_token(),
        secret_hash: auth::hash_secret(&secret),
        signing_key: auth::random_hex(32),
    });
    match state.execute(cmd).await? {
        Outcome::App(app) => Ok(AppDto {
            secret: Some(secret),
            ..AppDto::new(&app)
        }),
        _ => Err(ApiError::internal()),
    }
}

pub async fn list_apps(
    State(state): State<AppState>,
    _admin: Admin,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let apps = state.store.apps().await?;
    let apps: Vec<AppDto> = apps.iter().map(AppDto::new).collect();
    Ok(axum::Json(serde_json::json!({ "apps": apps })))
}

pub async fn get_app(
    State(state): State<AppState>,
    caller: AppCaller,
) -> ApiResult<axum::Json<AppDto>> {
    let app = state
        .store
        .app_by_token(&caller.keys.token)
        .await?
        .ok_or_else(|| ApiError::not_found("app_not_found", "app not found"))?;
    let stats = state.store.app_stats(app.id).await?;
    Ok(axum::Json(AppDto::new(&app).with_stats(stats)))
}
