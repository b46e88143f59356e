//! The app's event log, read from an offset by integrations.

use crate::AppState;
use crate::cursor;
use crate::dto::{EventDto, EventPageDto};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppCaller, Query};
use crate::limit;
use axum::extract::State;
use confab_core::ids::Offset;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

pub async fn list_events(
    State(state): State<AppState>,
    caller: AppCaller,
    Query(q): Query<EventsQuery>,
) -> ApiResult<axum::Json<EventPageDto>> {
    state
        .limits
        .app_read(caller.keys.id, limit::READ_COST)
        .map_err(limit::refused)?;
    let limit = cursor::limit(q.limit, cursor::FEED)?;
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::unprocessable(
            "invalid_offset",
            "after must be 0 or more",
        ));
    }
    let page = state
        .store
        .events(caller.keys.id, Offset(after), limit)
        .await?;
    let mut events: Vec<EventDto> = page
        .rows
        .iter()
        .map(|e| EventDto {
            offset: e.offset.0,
            kind: e.body.type_name().to_owned(),
            at: e.at.to_rfc3339(),
            room: e.body.room().map(|r| r.0),
            data: e.body.public_json(),
        })
        .collect();
    let cut = crate::page::fit(&mut events);
    let next_after = events.last().map_or(after, |e| e.offset);
    Ok(axum::Json(EventPageDto {
        events,
        next_after,
        has_more: page.has_more || cut,
    }))
}
