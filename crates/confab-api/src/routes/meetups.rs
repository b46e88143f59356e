//! Meetups of a room: plan, list (upcoming first), read, edit, cancel, answer (RSVP). The rules
//! (who may do what) are core's; these handlers parse times and read the caller's view back.

use super::readable;
use crate::AppState;
use crate::cursor;
use crate::dto::{CreateMeetupReq, MeetupDto, MeetupListDto, RsvpReq, UpdateMeetupReq};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, UserCaller};
use crate::limit::{self, READ_COST};
use axum::extract::State;
use axum::http::StatusCode;
use confab_core::command::{CancelMeetup, CreateMeetup, SetRsvp, UpdateMeetup};
use confab_core::ids::{MeetupNumber, RoomNumber, Timestamp};
use confab_core::meetups::{MeetupQuery, Rsvp};
use confab_core::{Command, DomainError, ErrorCode, Outcome};
use serde::Deserialize;

/// An RFC 3339 time from the wire; anything else is 422 `invalid_input` naming the field.
pub(super) fn time(field: &str, raw: &str) -> ApiResult<Timestamp> {
    Timestamp::parse_rfc3339(raw).ok_or_else(|| {
        DomainError::new(
            ErrorCode::InvalidInput,
            format!("{field} must be an RFC 3339 time such as 2026-12-24T18:00:00+01:00"),
        )
        .into()
    })
}

pub(super) fn meetup_not_found() -> ApiError {
    DomainError::new(ErrorCode::MeetupNotFound, "meetup not found").into()
}

/// The caller's view of a meetup a command just created or changed.
async fn view(
    state: &AppState,
    me: &UserCaller,
    room: i64,
    outcome: Outcome,
) -> ApiResult<MeetupDto> {
    let Outcome::Meetup(number) = outcome else {
        return Err(ApiError::internal());
    };
    let v = state
        .store
        .meetup(me.app, RoomNumber(room), number, &me.user)
        .await?
        .ok_or_else(meetup_not_found)?;
    Ok(MeetupDto::from(&v))
}

pub async fn create_meetup(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
    Json(req): Json<CreateMeetupReq>,
) -> ApiResult<(StatusCode, axum::Json<MeetupDto>)> {
    state
        .limits
        .write(me.app, &me.user)
        .map_err(limit::refused)?;
    let cmd = Command::CreateMeetup(CreateMeetup {
        app: me.app,
        actor: me.user.clone(),
        room: RoomNumber(number),
        name: req.name,
        location: req.location,
        takes_place_on: time("takes_place_on", &req.takes_place_on)?,
        image_url: req.image_url,
    });
    let outcome = state.execute(cmd).await?;
    let dto = view(&state, &me, number, outcome).await?;
    Ok((StatusCode::CREATED, axum::Json(dto)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetupListQuery {
    /// `upcoming` (default: not cancelled, not past) or `all`.
    scope: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

pub async fn list_meetups(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
    Query(q): Query<MeetupListQuery>,
) -> ApiResult<axum::Json<MeetupListDto>> {
    let limit = cursor::limit(q.limit, cursor::PAGE)?;
    let upcoming = match q.scope.as_deref() {
        None | Some("upcoming") => true,
        Some("all") => false,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "scope must be upcoming or all",
            ));
        }
    };
    let after = match &q.cursor {
        Some(c) => {
            let v = cursor::decode_i64s("meetups", c, 2)?;
            Some((Timestamp(v[0]), MeetupNumber(v[1])))
        }
        None => None,
    };
    state
        .limits
        .user_read(me.app, &me.user, READ_COST)
        .map_err(limit::refused)?;
    readable(&state, me.app, number, &me.user).await?;
    let query = MeetupQuery {
        upcoming,
        now: Timestamp::now(),
        after,
    };
    let page = state
        .store
        .meetups(me.app, RoomNumber(number), &me.user, query, limit)
        .await?;
    let next_cursor = match (page.has_more, page.rows.last()) {
        (true, Some(last)) => Some(cursor::encode(
            "meetups",
            &[
                &last.meetup.takes_place_on.0.to_string(),
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

pub async fn get_meetup(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, meetup)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<MeetupDto>> {
    readable(&state, me.app, number, &me.user).await?;
    let v = state
        .store
        .meetup(me.app, RoomNumber(number), MeetupNumber(meetup), &me.user)
        .await?
        .ok_or_else(meetup_not_found)?;
    Ok(axum::Json(MeetupDto::from(&v)))
}

pub async fn update_meetup(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, meetup)): Path<(i64, i64)>,
    Json(req): Json<UpdateMeetupReq>,
) -> ApiResult<axum::Json<MeetupDto>> {
    state
        .limits
        .write(me.app, &me.user)
        .map_err(limit::refused)?;
    let takes_place_on = match &req.takes_place_on {
        Some(t) => Some(time("takes_place_on", t)?),
        None => None,
    };
    let cmd = Command::UpdateMeetup(UpdateMeetup {
        app: me.app,
        actor: me.user.clone(),
        room: RoomNumber(number),
        meetup: MeetupNumber(meetup),
        name: req.name,
        location: req.location,
        takes_place_on,
        image_url: req.image_url,
    });
    let outcome = state.execute(cmd).await?;
    Ok(axum::Json(view(&state, &me, number, outcome).await?))
}

/// Cancels the meetup (its open polls close) and answers it as it now stands.
pub async fn cancel_meetup(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, meetup)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<MeetupDto>> {
    state
        .limits
        .write(me.app, &me.user)
        .map_err(limit::refused)?;
    let cmd = Command::CancelMeetup(CancelMeetup {
        app: me.app,
        actor: me.user.clone(),
        room: RoomNumber(number),
        meetup: MeetupNumber(meetup),
    });
    let outcome = state.execute(cmd).await?;
    Ok(axum::Json(view(&state, &me, number, outcome).await?))
}

pub async fn set_rsvp(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, meetup)): Path<(i64, i64)>,
    Json(req): Json<RsvpReq>,
) -> ApiResult<axum::Json<MeetupDto>> {
    state
        .limits
        .write(me.app, &me.user)
        .map_err(limit::refused)?;
    let rsvp = Rsvp::parse(&req.rsvp).ok_or_else(|| {
        DomainError::new(
            ErrorCode::InvalidInput,
            "rsvp must be yes, no, maybe or none",
        )
    })?;
    let cmd = Command::SetRsvp(SetRsvp {
        app: me.app,
        actor: me.user.clone(),
        room: RoomNumber(number),
        meetup: MeetupNumber(meetup),
        rsvp,
    });
    let outcome = state.execute(cmd).await?;
    Ok(axum::Json(view(&state, &me, number, outcome).await?))
}
