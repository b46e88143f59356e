//! The timeline: send, page, read one, edit, delete, threads, read markers, the change feed.

use super::{SizedJson, readable};
use crate::AppState;
use crate::cursor;
use crate::dto::{
    ChangeDto, ChangePageDto, EditReq, ItemDto, ItemPageDto, ReadMarkerDto, ReadReq, SendReq,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query, UserCaller};
use crate::limit::{self, READ_COST};
use axum::extract::State;
use axum::http::StatusCode;
use confab_core::command::{DeleteMessage, EditMessage, MarkRead, SendMessage};
use confab_core::ids::{Pos, RoomNumber, Seq};
use confab_core::model::{HistoryQuery, Item, ItemKind};
use confab_core::{Command, DomainError, ErrorCode, Outcome};
use serde::Deserialize;

fn item_outcome(o: Outcome) -> ApiResult<(bool, ItemDto)> {
    match o {
        Outcome::Item { item, created } => Ok((created, ItemDto::from(item))),
        _ => Err(ApiError::internal()),
    }
}

pub async fn send_message(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
    Json(req): Json<SendReq>,
) -> ApiResult<(StatusCode, axum::Json<ItemDto>)> {
    // The same budget as sends over the WebSocket.
    state
        .limits
        .write(me.app, &me.user)
        .map_err(limit::refused)?;
    let cmd = Command::Send(SendMessage {
        app: me.app,
        actor: Some(me.user),
        room: RoomNumber(number),
        text: req.text,
        reply_to: req.reply_to.map(Seq),
        client_id: req.client_id,
    });
    let (created, item) = item_outcome(state.execute(cmd).await?)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(item)))
}

/// Paging parameters shared by the timeline and threads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    before: Option<i64>,
    after: Option<i64>,
    around: Option<i64>,
    from: Option<i64>,
    to: Option<i64>,
    cursor: Option<String>,
    limit: Option<i64>,
}

impl HistoryParams {
    fn query(&self) -> ApiResult<HistoryQuery> {
        let given = [
            self.before.is_some(),
            self.after.is_some(),
            self.around.is_some(),
            self.from.is_some() || self.to.is_some(),
            self.cursor.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(ApiError::bad_request(
                "invalid_query",
                "use only one of before, after, around, from/to, cursor",
            ));
        }
        let q = if let Some(c) = &self.cursor {
            let v = cursor::decode_i64s("items", c, 2)?;
            match v[0] {
                0 => HistoryQuery::Before(Seq(v[1])),
                1 => HistoryQuery::After(Seq(v[1])),
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_cursor",
                        "the cursor is not valid here",
                    ));
                }
            }
        } else if let Some(b) = self.before {
            HistoryQuery::Before(Seq(b))
        } else if let Some(a) = self.after {
            HistoryQuery::After(Seq(a))
        } else if let Some(a) = self.around {
            HistoryQuery::Around(Seq(a))
        } else if self.from.is_some() || self.to.is_some() {
            match (self.from, self.to) {
                (Some(f), Some(t)) if f <= t => HistoryQuery::Range(Seq(f), Seq(t)),
                (Some(_), Some(_)) => {
                    return Err(ApiError::unprocessable(
                        "invalid_range",
                        "from must not exceed to",
                    ));
                }
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_query",
                        "from and to go together",
                    ));
                }
            }
        } else {
            HistoryQuery::Latest
        };
        let negative = match q {
            HistoryQuery::Before(s) | HistoryQuery::After(s) | HistoryQuery::Around(s) => s.0 < 0,
            HistoryQuery::Range(a, b) => a.0 < 0 || b.0 < 0,
            HistoryQuery::Latest => false,
        };
        if negative {
            return Err(ApiError::unprocessable(
                "invalid_query",
                "sequence numbers are 0 or more",
            ));
        }
        Ok(q)
    }
}

fn item_page(items: Vec<Item>, more_before: bool, more_after: bool) -> SizedJson<ItemPageDto> {
    // Under 256 bytes of JSON per item besides its text.
    let size = 128
        + items
            .iter()
            .map(|i| 256 + i.text.as_ref().map_or(0, String::len))
            .sum::<usize>();
    let prev_cursor = items
        .first()
        .filter(|_| more_before)
        .map(|i| cursor::encode("items", &["0", &i.seq.0.to_string()]));
    let next_cursor = items
        .last()
        .filter(|_| more_after)
        .map(|i| cursor::encode("items", &["1", &i.seq.0.to_string()]));
    let page = ItemPageDto {
        items: items.into_iter().map(ItemDto::from).collect(),
        prev_cursor,
        next_cursor,
    };
    SizedJson(page, size)
}

pub async fn list_messages(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
    Query(p): Query<HistoryParams>,
) -> ApiResult<SizedJson<ItemPageDto>> {
    let limit = cursor::limit(p.limit, cursor::PAGE)?;
    let query = p.query()?;
    state
        .limits
        .user_read(me.app, &me.user, READ_COST)
        .map_err(limit::refused)?;
    let (access, items, before, after) = state
        .store
        .timeline(me.app, RoomNumber(number), &me.user, query, limit)
        .await?
        .ok_or_else(DomainError::room_not_found)?;
    confab_core::rules::can_read_timeline(&access)?;
    Ok(item_page(items, before, after))
}

async fn one_item(state: &AppState, me: &UserCaller, number: i64, seq: i64) -> ApiResult<Item> {
    readable(state, me.app, number, &me.user).await?;
    state
        .store
        .item(me.app, RoomNumber(number), Seq(seq))
        .await?
        .ok_or_else(|| DomainError::new(ErrorCode::MessageNotFound, "message not found").into())
}

pub async fn get_message(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, seq)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<ItemDto>> {
    Ok(axum::Json(ItemDto::new(
        &one_item(&state, &me, number, seq).await?,
    )))
}

pub async fn edit_message(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, seq)): Path<(i64, i64)>,
    Json(req): Json<EditReq>,
) -> ApiResult<axum::Json<ItemDto>> {
    state
        .limits
        .write(me.app, &me.user)
        .map_err(limit::refused)?;
    let cmd = Command::Edit(EditMessage {
        app: me.app,
        actor: me.user,
        room: RoomNumber(number),
        seq: Seq(seq),
        text: req.text,
    });
    Ok(axum::Json(item_outcome(state.execute(cmd).await?)?.1))
}

pub async fn delete_message(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, seq)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<ItemDto>> {
    state
        .limits
        .write(me.app, &me.user)
        .map_err(limit::refused)?;
    let cmd = Command::Delete(DeleteMessage {
        app: me.app,
        actor: me.user,
        room: RoomNumber(number),
        seq: Seq(seq),
    });
    Ok(axum::Json(item_outcome(state.execute(cmd).await?)?.1))
}

pub async fn list_replies(
    State(state): State<AppState>,
    me: UserCaller,
    Path((number, seq)): Path<(i64, i64)>,
    Query(p): Query<HistoryParams>,
) -> ApiResult<SizedJson<ItemPageDto>> {
    let limit = cursor::limit(p.limit, cursor::PAGE)?;
    let query = p.query()?;
    state
        .limits
        .user_read(me.app, &me.user, READ_COST)
        .map_err(limit::refused)?;
    let parent = one_item(&state, &me, number, seq).await?;
    if parent.kind != ItemKind::Message {
        return Err(
            DomainError::new(ErrorCode::NotAMessage, "announcements have no replies").into(),
        );
    }
    let (items, before, after) = state
        .store
        .replies(me.app, RoomNumber(number), Seq(seq), query, limit)
        .await?;
    Ok(item_page(items, before, after))
}

pub async fn mark_read(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
    Json(req): Json<ReadReq>,
) -> ApiResult<axum::Json<ReadMarkerDto>> {
    let cmd = Command::MarkRead(MarkRead {
        app: me.app,
        actor: me.user,
        room: RoomNumber(number),
        seq: Seq(req.seq),
    });
    match state.execute(cmd).await? {
        Outcome::ReadMarker(s) => Ok(axum::Json(ReadMarkerDto { read_seq: s.0 })),
        _ => Err(ApiError::internal()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    since: Option<i64>,
    limit: Option<i64>,
}

pub async fn list_changes(
    State(state): State<AppState>,
    me: UserCaller,
    Path(number): Path<i64>,
    Query(q): Query<ChangesQuery>,
) -> ApiResult<axum::Json<ChangePageDto>> {
    let limit = cursor::limit(q.limit, cursor::FEED)?;
    let since = q.since.unwrap_or(0);
    if since < 0 {
        return Err(ApiError::unprocessable(
            "invalid_query",
            "since must be 0 or more",
        ));
    }
    state
        .limits
        .user_read(me.app, &me.user, READ_COST)
        .map_err(limit::refused)?;
    readable(&state, me.app, number, &me.user).await?;
    let page = state
        .store
        .changes(me.app, RoomNumber(number), Pos(since), limit)
        .await?;
    let mut changes: Vec<ChangeDto> = page.rows.iter().map(ChangeDto::new).collect();
    let cut = crate::page::fit(&mut changes);
    let next_since = changes.last().map_or(since, |c| c.pos);
    Ok(axum::Json(ChangePageDto {
        changes,
        next_since,
        has_more: page.has_more || cut,
    }))
}
