//! `POST /v1/auth/oidc`: a client exchanges an ID token from one of the app's identity
//! providers for a Confab user token (issue 14). No other credential: the request is metered
//! per client address, its body is small, and the token is never logged.

use super::identities::parse_stored;
use crate::AppState;
use crate::auth;
use crate::dto::{OidcSignInReq, TokenDto};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::limit::Anonymous;
use axum::extract::State;
use axum::http::StatusCode;
use confab_core::command::UpsertUser;
use confab_core::ids::{Timestamp, UserId};
use confab_core::{Command, validate};
use confab_oidc::{OidcError, VerifiedIdentity};

/// The largest sign-in body: an ID token (at most 16 KiB) and a few short fields.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// One answer for an unknown app and an unknown provider, so the route tells nobody which
/// apps or providers exist.
fn unknown() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "oidc_unknown_provider",
        "unknown app or identity provider",
    )
}

fn refused(e: OidcError) -> ApiError {
    if let OidcError::ProviderUnavailable { cause } = &e {
        tracing::warn!(%cause, "an identity provider's keys cannot be fetched");
    }
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    ApiError::new(status, e.code(), e.to_string())
}

pub async fn sign_in(
    State(state): State<AppState>,
    _metered: Anonymous,
    Json(req): Json<OidcSignInReq>,
) -> ApiResult<axum::Json<TokenDto>> {
    let verifier = state.oidc.clone().ok_or_else(unknown)?;
    let keys = state
        .keys
        .by_key_id(&state.store, &req.app)
        .await?
        .ok_or_else(unknown)?;
    state.limits.app(keys.id).map_err(crate::limit::refused)?;
    let stored = state
        .store
        .identity_provider(keys.id, &req.provider)
        .await?
        .ok_or_else(unknown)?;
    let provider = parse_stored(&stored.config)?;
    let identity = verifier
        .verify(&provider, &req.id_token, req.nonce.as_deref())
        .await
        .map_err(refused)?;
    if identity.subject.contains('\0') {
        return Err(refused(OidcError::MalformedToken("sub holds NUL")));
    }
    let app = keys.id;
    let user = match state
        .store
        .identity(app, &provider.id, &identity.subject)
        .await?
    {
        Some(user) => user,
        None => {
            let derived = UserId(confab_oidc::user_id_for(&provider, &identity.subject));
            state
                .store
                .link_identity(app, &provider.id, &identity.subject, &derived)
                .await?
        }
    };
    upsert_from_claims(&state, app, &user, &identity).await?;
    state
        .execute(Command::RecordLogin {
            app,
            user: user.clone(),
        })
        .await?;
    let ttl = state
        .config
        .default_token_ttl
        .min(state.config.max_token_ttl);
    let (token, exp) = auth::mint(&keys, &user, ttl)?;
    Ok(axum::Json(TokenDto {
        token,
        user_id: user.0,
        expires_at: Timestamp(exp * 1000).to_rfc3339(),
    }))
}

/// Creates the user, or updates what the token says, keeping every field it does not carry
/// (a provider that sends no name this time erases nothing). Nothing is written when nothing
/// changes. Claims Confab would refuse (a name too long, control characters) are left out.
async fn upsert_from_claims(
    state: &AppState,
    app: confab_core::ids::AppId,
    user: &UserId,
    identity: &VerifiedIdentity,
) -> ApiResult<()> {
    let limits = &state.config.limits;
    let name = identity.name.as_ref().map(|n| {
        let n = n.trim();
        n.chars().take(limits.max_name_chars).collect::<String>()
    });
    let name = name.filter(|n| validate::name("name", n, limits).is_ok());
    let short = |field: &str, v: &Option<String>| {
        v.clone()
            .filter(|v| !v.contains('\0') && validate::short_field(field, v).is_ok())
    };
    let image_url = short("image_url", &identity.picture);
    let email = short("email", &identity.email);
    let existing = state.store.user(app, user).await?;
    let (old_name, old_image, old_email) = match &existing {
        Some(u) => (u.name.clone(), u.image_url.clone(), u.email.clone()),
        None => (None, None, None),
    };
    let merged = (
        name.or(old_name.clone()),
        image_url.or(old_image.clone()),
        email.or(old_email.clone()),
    );
    if existing.is_some() && merged == (old_name, old_image, old_email) {
        return Ok(());
    }
    state
        .execute(Command::UpsertUser(UpsertUser {
            app,
            user: user.clone(),
            name: merged.0,
            image_url: merged.1,
            email: merged.2,
        }))
        .await?;
    Ok(())
}
