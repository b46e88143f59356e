//! Message search: in one room, or across every room the caller has joined.

use super::readable;
use crate::AppState;
use crate::cursor;
use crate::dto::{SearchHitDto, SearchPageDto};
use crate::error::ApiResult;
use crate::extract::{Path, Query, UserCaller};
use crate::limit;
use axum::extract::State;
use confab_core::ids::{AppId, RoomNumber, Seq, Timestamp};
use confab_core::search::{self, Scope};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

fn encode_cursor(c: &search::Cursor) -> String {
    cursor::encode(
        "search",
        &[
            &c.created_at.0.to_string(),
            &c.room.0.to_string(),
            &c.seq.0.to_string(),
        ],
    )
}

fn decode_cursor(raw: &str) -> ApiResult<search::Cursor> {
    let v = cursor::decode_i64s("search", raw, 3)?;
    Ok(search::Cursor {
        created_at: Timestamp(v[0]),
        room: RoomNumber(v[1]),
        seq: Seq(v[2]),
    })
}

/// Runs a search for the routes here and for the compatible API.
pub async fn run(
    state: &AppState,
    app: AppId,
    scope: Scope,
    q: &str,
    before: Option<search::Cursor>,
    limit: usize,
) -> ApiResult<confab_core::model::Page<search::Hit>> {
    let query = search::Query::parse(q)?;
    Ok(state.store.search(app, scope, query, before, limit).await?)
}

async fn page(
    state: &AppState,
    app: AppId,
    scope: Scope,
    p: SearchParams,
) -> ApiResult<SearchPageDto> {
    let limit = cursor::limit(p.limit, cursor::SEARCH)?;
    let before = p.cursor.as_deref().map(decode_cursor).transpose()?;
    let q = p.q.unwrap_or_default();
    let found = run(state, app, scope, &q, before, limit).await?;
    let next_cursor = found
        .rows
        .last()
        .filter(|_| found.has_more)
        .map(|h| encode_cursor(&h.cursor()));
    Ok(SearchPageDto {
        hits: found.rows.iter().map(SearchHitDto::new).collect(),
        next_cursor,
    })
}

pub async fn search_room(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
    Query(p): Query<SearchParams>,
) -> ApiResult<axum::Json<SearchPageDto>> {
    let cost = limit::search_cost(p.q.as_deref().unwrap_or(""));
    state
        .limits
        .user_read(me.app, &me.user, cost)
        .map_err(limit::refused)?;
    readable(&state, me.app, number, &me.user).await?;
    let scope = Scope::Room(RoomNumber(number));
    Ok(axum::Json(page(&state, me.app, scope, p).await?))
}

pub async fn search_mine(
    State(state): State<AppState>,
    me: UserCaller,
    Query(p): Query<SearchParams>,
) -> ApiResult<axum::Json<SearchPageDto>> {
    let cost = limit::search_cost(p.q.as_deref().unwrap_or(""));
    state
        .limits
        .user_read(me.app, &me.user, cost)
        .map_err(limit::refused)?;
    let scope = Scope::Joined(me.user);
    Ok(axum::Json(page(&state, me.app, scope, p).await?))
}
