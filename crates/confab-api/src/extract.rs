//! Extractors: JSON, query and path wrappers whose rejections use our error shape, and the
//! three kinds of caller: the admin, an app (by secret), a user (by token).

use crate::AppState;
use crate::auth;
use crate::error::ApiError;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use confab_core::ids::{AppId, UserId};
use confab_core::model::AppKeys;
use serde::de::DeserializeOwned;

/// A JSON object body; unknown fields, malformed bodies and anything but an object are 400,
/// oversize bodies 413.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::bad_request(
                "invalid_json",
                "expected Content-Type: application/json",
            ));
        }
        let Body(bytes) = Body::from_request(req, state).await?;
        object(&bytes).map(Json)
    }
}

/// `application/json`, or a `+json` type, parameters allowed.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json")
            || sub.len() > 5 && sub[sub.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// Decodes a body that must be a JSON object. serde would also read a struct from an array of
/// its fields in order (`["hi"]` as `{"text":"hi"}`); no client means that, so it is refused.
fn object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))
}

/// A raw body whose rejections (too large, unreadable) use our error shape.
pub struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => Ok(Body(b)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "request body is too large",
            )),
            Err(r) => Err(ApiError::bad_request("invalid_body", r.body_text())),
        }
    }
}

/// A JSON body that may be absent: an empty body gives `T::default()`.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    object(body)
}

/// Query parameters; a malformed query is 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// Path parameters; a malformed one (a room number that is not a number) is 400.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| ApiError::bad_request("invalid_path", path_refusal(&e)))
    }
}

/// What a client is told about a path segment that does not parse: in the API's words (the
/// numbers in paths are room numbers, seqs, meetups and polls), not the deserializer's.
fn path_refusal(e: &PathRejection) -> String {
    use axum::extract::path::ErrorKind;
    let PathRejection::FailedToDeserializePathParams(d) = e else {
        return e.body_text();
    };
    match d.kind() {
        ErrorKind::ParseErrorAtKey {
            value,
            expected_type,
            ..
        }
        | ErrorKind::ParseErrorAtIndex {
            value,
            expected_type,
            ..
        }
        | ErrorKind::ParseError {
            value,
            expected_type,
        } if *expected_type == "i64" => {
            let shown: String = value.chars().take(40).collect();
            let more = if shown.len() < value.len() { "…" } else { "" };
            format!(
                "`{shown}{more}` is not a number in this path: room numbers, seqs, meetups and \
                 polls are whole numbers from 1 to {}",
                i64::MAX
            )
        }
        _ => e.body_text(),
    }
}

fn bearer(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer credential"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    // The scheme name is case-insensitive (RFC 7235).
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    let credential = credential.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || credential.is_empty() {
        return Err(ApiError::unauthorized(
            "expected Authorization: Bearer <credential>",
        ));
    }
    Ok(credential)
}

/// The operator, holding the admin key.
pub struct Admin;

impl Admin {
    /// Checks the admin key in `headers`, for handlers that need it only sometimes.
    pub fn check(headers: &axum::http::HeaderMap, state: &AppState) -> Result<Admin, ApiError> {
        let key = bearer(headers)?;
        if auth::constant_time_eq(key, &state.config.admin_key) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized("invalid admin key"))
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Admin::check(&parts.headers, state)
    }
}

/// An app backend, holding the app's secret.
pub struct AppCaller {
    pub keys: AppKeys,
}

impl FromRequestParts<AppState> for AppCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let secret = bearer(&parts.headers)?;
        match state.keys.by_secret(&state.store, secret).await? {
            Some(keys) => {
                state.limits.app(keys.id).map_err(crate::limit::refused)?;
                Ok(AppCaller { keys })
            }
            None => Err(ApiError::unauthorized("invalid app secret")),
        }
    }
}

/// An end user, holding a token minted for them.
pub struct UserCaller {
    pub app: AppId,
    pub user: UserId,
}

impl FromRequestParts<AppState> for UserCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)?;
        let (app, user) = state.authenticate_user(token).await?;
        state.limits.app(app).map_err(crate::limit::refused)?;
        state.seen(app, &user);
        Ok(UserCaller { app, user })
    }
}

/// Either an app backend or one of its users.
pub enum AppOrUser {
    App(AppKeys),
    User(UserCaller),
}

impl FromRequestParts<AppState> for AppOrUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let credential = bearer(&parts.headers)?;
        if credential.matches('.').count() == 2 {
            UserCaller::from_request_parts(parts, state)
                .await
                .map(AppOrUser::User)
        } else {
            AppCaller::from_request_parts(parts, state)
                .await
                .map(|a| AppOrUser::App(a.keys))
        }
    }
}
