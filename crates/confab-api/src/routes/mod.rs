//! Routes, one module per resource. Handlers are thin: extract, call the store, map to a DTO.

mod apps;
mod compat;
mod events;
mod health;
mod identities;
mod meetups;
mod members;
mod messages;
mod oidc;
mod polls;
mod rooms;
mod search;
mod users;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post, put};

use confab_core::ids::{AppId, RoomNumber, UserId};
use confab_core::model::Access;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/v1/apps", post(apps::create_app).get(apps::list_apps))
        .route("/v1/app", get(apps::get_app))
        .route(
            "/v1/app/identity-providers",
            get(identities::list_identity_providers),
        )
        .route(
            "/v1/app/identity-providers/{id}",
            put(identities::put_identity_provider)
                .get(identities::get_identity_provider)
                .delete(identities::delete_identity_provider),
        )
        .route(
            "/v1/app/users/{user_id}/identities/{provider}",
            put(identities::link_identity).delete(identities::unlink_identity),
        )
        .route(
            "/v1/auth/oidc",
            post(oidc::sign_in).layer(axum::extract::DefaultBodyLimit::max(oidc::MAX_BODY_BYTES)),
        )
        .route("/v1/events", get(events::list_events))
        .route(
            "/v1/users/{user_id}",
            put(users::upsert_user).get(users::get_user),
        )
        .route("/v1/users/{user_id}/tokens", post(users::mint_token))
        .route("/v1/me", get(users::get_me).patch(users::update_me))
        .route("/v1/me/meetups", get(users::list_my_meetups))
        .route("/v1/me/alerts", get(users::list_my_alerts))
        .route("/v1/rooms", post(rooms::create_room).get(rooms::list_rooms))
        .route("/v1/rooms/public", get(rooms::list_public_rooms))
        .route("/v1/rooms/alias/{alias}", get(rooms::get_room_by_alias))
        .route(
            "/v1/rooms/{number}",
            get(rooms::get_room)
                .patch(rooms::update_room)
                .delete(rooms::delete_room),
        )
        .route("/v1/rooms/{number}/members", get(members::list_members))
        .route("/v1/rooms/{number}/join", post(members::join_room))
        .route("/v1/rooms/{number}/leave", post(members::leave_room))
        .route("/v1/rooms/{number}/invites", post(members::invite_member))
        .route(
            "/v1/rooms/{number}/members/{user_id}",
            axum::routing::patch(members::set_role),
        )
        .route(
            "/v1/rooms/{number}/members/{user_id}/{action}",
            post(members::decide_member),
        )
        .route(
            "/v1/rooms/{number}/messages",
            post(messages::send_message).get(messages::list_messages),
        )
        .route(
            "/v1/rooms/{number}/messages/{seq}",
            get(messages::get_message)
                .patch(messages::edit_message)
                .delete(messages::delete_message),
        )
        .route(
            "/v1/rooms/{number}/messages/{seq}/replies",
            get(messages::list_replies),
        )
        .route("/v1/rooms/{number}/read", put(messages::mark_read))
        .route("/v1/rooms/{number}/changes", get(messages::list_changes))
        .route("/v1/rooms/{number}/search", get(search::search_room))
        .route("/v1/search", get(search::search_mine))
        .route(
            "/v1/rooms/{number}/meetups",
            post(meetups::create_meetup).get(meetups::list_meetups),
        )
        .route(
            "/v1/rooms/{number}/meetups/{meetup}",
            get(meetups::get_meetup)
                .patch(meetups::update_meetup)
                .delete(meetups::cancel_meetup),
        )
        .route(
            "/v1/rooms/{number}/meetups/{meetup}/rsvp",
            put(meetups::set_rsvp),
        )
        .route(
            "/v1/rooms/{number}/polls",
            post(polls::create_poll).get(polls::list_polls),
        )
        .route("/v1/rooms/{number}/polls/{poll}", get(polls::get_poll))
        .route("/v1/rooms/{number}/polls/{poll}/vote", put(polls::vote))
        .route(
            "/v1/rooms/{number}/polls/{poll}/close",
            post(polls::close_poll),
        )
        .route("/api/v1/apps", post(compat::create_app))
        .route(
            "/api/v1/apps/{token}",
            put(compat::rename_app).get(compat::get_app),
        )
        .route("/api/v1/apps/{token}/chats", post(compat::create_chat))
        .route("/api/v1/apps/{token}/chats/{number}", get(compat::get_chat))
        .route(
            "/api/v1/apps/{token}/chats/{number}/messages",
            post(compat::create_message),
        )
        .route(
            "/api/v1/apps/{token}/chats/{number}/messages/autocomplete",
            get(compat::autocomplete),
        )
        .route(
            "/api/v1/apps/{token}/chats/{number}/messages/{seq}",
            get(compat::get_message),
        )
        .route("/v1/ws", get(crate::ws::ws_upgrade))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// The room and the caller's membership; 404 when it does not exist.
pub async fn access(state: &AppState, app: AppId, room: i64, user: &UserId) -> ApiResult<Access> {
    state
        .store
        .access(app, RoomNumber(room), Some(user))
        .await?
        .ok_or_else(|| confab_core::DomainError::room_not_found().into())
}

/// Access for reading the timeline, members or changes: joined members only.
pub async fn readable(state: &AppState, app: AppId, room: i64, user: &UserId) -> ApiResult<Access> {
    let a = access(state, app, room, user).await?;
    confab_core::rules::can_read_timeline(&a)?;
    Ok(a)
}

pub fn user_id(raw: &str) -> ApiResult<UserId> {
    Ok(confab_core::validate::user_id(raw)?)
}

/// A JSON answer written into a buffer sized up front. axum's `Json` starts at 128 bytes and
/// doubles, so a page of 50 items (~12 KiB) was reallocated and copied seven times.
pub struct SizedJson<T>(pub T, pub usize);

impl<T: serde::Serialize> axum::response::IntoResponse for SizedJson<T> {
    fn into_response(self) -> axum::response::Response {
        let mut buf = Vec::with_capacity(self.1);
        match serde_json::to_writer(&mut buf, &self.0) {
            Ok(()) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                )],
                buf,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize an answer");
                ApiError::internal().into_response()
            }
        }
    }
}
