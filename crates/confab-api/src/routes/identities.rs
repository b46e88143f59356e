//! An app's identity providers and the identities linked to its users (issue 14), through
//! its secret. Settings are operational state: stored beside the log, never in it.

use super::user_id;
use crate::AppState;
use crate::dto::{IdentityLinkDto, IdentityProviderDto, IdentityProviderListDto, LinkIdentityReq};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppCaller, Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use confab_core::DomainError;
use confab_oidc::ProviderConfig;
use serde::Deserialize;

fn provider_not_found() -> ApiError {
    ApiError::not_found("identity_provider_not_found", "no such identity provider")
}

/// The settings as the verifier reads them; stored settings were validated when written.
pub(crate) fn parse_stored(config: &str) -> ApiResult<ProviderConfig> {
    serde_json::from_str(config).map_err(|e| {
        tracing::error!(error = %e, "stored identity provider settings do not parse");
        ApiError::internal()
    })
}

fn verifier(state: &AppState) -> ApiResult<&confab_oidc::Verifier> {
    state.oidc.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "oidc_not_configured",
            "sign-in with identity providers is not set up on this server",
        )
    })
}

/// Validates an app's settings for provider `id`: the crate's rules, then the operator's
/// fetch policy (no loopback, private-network or plain-http URLs unless allowed).
pub(crate) fn settings(
    id: &str,
    body: serde_json::Value,
    policy: confab_oidc::FetchPolicy,
) -> ApiResult<ProviderConfig> {
    let invalid = |e: confab_oidc::ConfigError| {
        ApiError::unprocessable("invalid_identity_provider", e.to_string())
    };
    let config = ProviderConfig::from_settings(id, body).map_err(invalid)?;
    config.check_fetch_policy(policy).map_err(invalid)?;
    Ok(config)
}

pub async fn put_identity_provider(
    State(state): State<AppState>,
    caller: AppCaller,
    Path(id): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<(StatusCode, axum::Json<IdentityProviderDto>)> {
    let app = caller.keys.id;
    let config = settings(&id, body, verifier(&state)?.fetch_policy())?;
    if let Some(old) = state.store.identity_provider(app, &id).await?
        && parse_stored(&old.config)?.issuer != config.issuer
    {
        // The links of the provider name subjects of the old issuer: another issuer's
        // subjects must not sign in as those users.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "identity_provider_issuer_changed",
            "a provider's issuer cannot change: delete the provider (which removes its \
             identity links) and create it again",
        ));
    }
    let json = serde_json::to_string(&config).map_err(|_| ApiError::internal())?;
    let created = state.store.put_identity_provider(app, &id, &json).await?;
    let stored = state
        .store
        .identity_provider(app, &id)
        .await?
        .ok_or_else(provider_not_found)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(IdentityProviderDto::new(&stored))))
}

pub async fn get_identity_provider(
    State(state): State<AppState>,
    caller: AppCaller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<IdentityProviderDto>> {
    let found = state
        .store
        .identity_provider(caller.keys.id, &id)
        .await?
        .ok_or_else(provider_not_found)?;
    Ok(axum::Json(IdentityProviderDto::new(&found)))
}

pub async fn list_identity_providers(
    State(state): State<AppState>,
    caller: AppCaller,
) -> ApiResult<axum::Json<IdentityProviderListDto>> {
    let all = state.store.identity_providers(caller.keys.id).await?;
    Ok(axum::Json(IdentityProviderListDto {
        identity_providers: all.iter().map(IdentityProviderDto::new).collect(),
    }))
}

pub async fn delete_identity_provider(
    State(state): State<AppState>,
    caller: AppCaller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state
        .store
        .delete_identity_provider(caller.keys.id, &id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(provider_not_found())
    }
}

/// A subject as providers send it: 1 to 255 bytes, no NUL (PostgreSQL text cannot hold it).
fn subject(raw: &str) -> ApiResult<&str> {
    if raw.is_empty() || raw.len() > 255 || raw.contains('\0') {
        return Err(ApiError::unprocessable(
            "invalid_subject",
            "subject must be 1 to 255 bytes, without NUL",
        ));
    }
    Ok(raw)
}

/// Links a person at a provider to an existing user: from then on they sign in as that user.
pub async fn link_identity(
    State(state): State<AppState>,
    caller: AppCaller,
    Path((raw_user, provider)): Path<(String, String)>,
    Json(req): Json<LinkIdentityReq>,
) -> ApiResult<axum::Json<IdentityLinkDto>> {
    let app = caller.keys.id;
    let user = user_id(&raw_user)?;
    let subject = subject(&req.subject)?;
    if state
        .store
        .identity_provider(app, &provider)
        .await?
        .is_none()
    {
        return Err(provider_not_found());
    }
    if state.store.user(app, &user).await?.is_none() {
        return Err(DomainError::user_not_found(&user).into());
    }
    let linked = state
        .store
        .link_identity(app, &provider, subject, &user)
        .await?;
    if linked != user {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "identity_already_linked",
            "this identity is linked to another user: unlink it there first",
        ));
    }
    Ok(axum::Json(IdentityLinkDto {
        provider,
        subject: subject.to_owned(),
        user_id: user.0,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlinkQuery {
    subject: String,
}

pub async fn unlink_identity(
    State(state): State<AppState>,
    caller: AppCaller,
    Path((raw_user, provider)): Path<(String, String)>,
    Query(q): Query<UnlinkQuery>,
) -> ApiResult<StatusCode> {
    let app = caller.keys.id;
    let user = user_id(&raw_user)?;
    let subject = subject(&q.subject)?;
    let not_linked = || ApiError::not_found("identity_not_found", "no such identity of this user");
    if state.store.identity(app, &provider, subject).await? != Some(user) {
        return Err(not_linked());
    }
    if state.store.unlink_identity(app, &provider, subject).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_linked())
    }
}
