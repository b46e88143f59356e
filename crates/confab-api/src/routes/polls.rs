//! Polls of a room: create, list (open first), read with the caller's vote, vote, close. Every
//! rule (eligibility, ranges, closing) is core's; a poll is read back as the caller sees it at
//! the time of the request.

use super::meetups::time;
use super::readable;
use crate::AppState;
use crate::cursor;
use crate::dto::{CreatePollReq, PollDto, PollListDto, VoteReq};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, UserCaller};
use crate::limit::{self, READ_COST};
use axum::extract::State;
use axum::http::StatusCode;
use confab_core::command::{ClosePoll, CreatePoll, Vote};
use confab_core::ids::{MeetupNumber, PollNumber, RoomNumber, Timestamp};
use confab_core::meetups::{PollKind, Results};
use confab_core::{Command, DomainError, ErrorCode, Outcome};
use serde::Deserialize;

fn invalid(message: &str) -> ApiError {
    DomainError::new(ErrorCode::InvalidInput, message).into()
}

fn poll_not_found() -> ApiError {
    DomainError::new(ErrorCode::PollNotFound, "poll not found").into()
}

/// The caller's view of the poll a command created, voted on or closed.
async fn view(
    state: &AppState,
    me: &UserCaller,
    room: i64,
    outcome: Outcome,
) -> ApiResult<PollDto> {
    let Outcome::Poll(number) = outcome else {
        return Err(ApiError::internal());
    };
    let v = state
        .store
        .poll(me.app, RoomNumber(room), number, &me.user)
        .await?
        .ok_or_else(poll_not_found)?;
    Ok(PollDto::new(&v, Timestamp::now(), true))
}

pub async fn create_poll(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
    Json(req): Json<CreatePollReq>,
) -> ApiResult<(StatusCode, axum::Json<PollDto>)> {
    state
        .limits
        .write(me.app, &me.user)
        .map_err(limit::refused)?;
    let kind = PollKind::parse(&req.kind)
        .ok_or_else(|| invalid("kind must be generic, reschedule or relocate"))?;
    let results = match req.results.as_deref() {
        None => Results::default(),
        Some(r) => {
            Results::parse(r).ok_or_else(|| invalid("results must be disclosed or undisclosed"))?
        }
    };
    let closes_at = match &req.closes_at {
        Some(t) => Some(time("closes_at", t)?),
        None => None,
    };
    // Out of range either way: core refuses 0 and anything above the number of choices.
    let max_selections = req
        .max_selections
        .unwrap_or(1)
        .clamp(0, i64::from(u32::MAX)) as u32;
    let cmd = Command::CreatePoll(CreatePoll {
        app: me.app,
        actor: me.user.clone(),
        room: RoomNumber(number),
        question: req.question,
        kind,
        choices: req.choices,
        max_selections,
        results,
        closes_at,
        meetup: req.meetup.map(MeetupNumber),
    });
    let outcome = state.execute(cmd).await?;
    let dto = view(&state, &me, number, outcome).await?;
    Ok((StatusCode::CREATED, axum::Json(dto)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollListQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

pub async fn list_polls(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
    Query(q): Query<PollListQuery>,
) -> ApiResult<axum::Json<PollListDto>> {
    let limit = cursor::limit(q.limit, cursor::PAGE)?;
    let after = match &q.cursor {
        Some(c) => {
            let v = cursor::decode_i64s("polls", c, 2)?;
            Some((v[0] != 0, PollNumber(v[1])))
        }
        None => None,
    };
    state
        .limits
        .user_read(me.app, &me.user, READ_COST)
        .map_err(limit::refused)?;
    readable(&state, me.app, number, &me.user).await?;
    let page = state
        .store
        .polls(me.app, RoomNumber(number), &me.user, after, limit)
        .await?;
    // The cursor follows the store's order (by the closing event), whatever the page shows.
    let next_cursor = match (page.has_more, page.rows.last()) {
        (true, Some(last)) => Some(cursor::encode(
            "polls",
            &[
                if last.poll.closed.is_some() { "1" } else { "0" },
                &last.poll.number.0.to_string(),
            ],
        )),
        _ => None,
    };
    let now = Timestamp::now();
    Ok(axum::Json(PollListDto {
        polls: page
            .rows
            .iter()
            .map(|v| PollDto::new(v, now, false))
            .collect(),
        next_cursor,
    }))
}

pub async fn get_poll(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, poll)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<PollDto>> {
    // One poll carries its list of eligible voters (up to the room's size): metered like a
    // listing.
    state
        .limits
        .user_read(me.app, &me.user, READ_COST)
        .map_err(limit::refused)?;
    readable(&state, me.app, number, &me.user).await?;
    let v = state
        .store
        .poll(me.app, RoomNumber(number), PollNumber(poll), &me.user)
        .await?
        .ok_or_else(poll_not_found)?;
    Ok(axum::Json(PollDto::new(&v, Timestamp::now(), true)))
}

pub async fn vote(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, poll)): Path<(i64, i64)>,
    Json(req): Json<VoteReq>,
) -> ApiResult<axum::Json<PollDto>> {
    state
        .limits
        .write(me.app, &me.user)
        .map_err(limit::refused)?;
    let choices = req
        .choices
        .iter()
        .map(|c| {
            u32::try_from(*c).map_err(|_| {
                DomainError::new(
                    ErrorCode::ChoiceOutOfRange,
                    format!("choice {c} does not exist: choices count from 0"),
                )
            })
        })
        .collect::<Result<Vec<u32>, DomainError>>()?;
    let cmd = Command::Vote(Vote {
        app: me.app,
        actor: me.user.clone(),
        room: RoomNumber(number),
        poll: PollNumber(poll),
        choices,
    });
    let outcome = state.execute(cmd).await?;
    Ok(axum::Json(view(&state, &me, number, outcome).await?))
}

pub async fn close_poll(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, poll)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<PollDto>> {
    state
        .limits
        .write(me.app, &me.user)
        .map_err(limit::refused)?;
    let cmd = Command::ClosePoll(ClosePoll {
        app: me.app,
        actor: Some(me.user.clone()),
        room: RoomNumber(number),
        poll: PollNumber(poll),
    });
    let outcome = state.execute(cmd).await?;
    Ok(axum::Json(view(&state, &me, number, outcome).await?))
}
