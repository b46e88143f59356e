//! Timeline items, changes and the app event log on the wire.

use confab_core::bus::{ChangeData, RoomChange};
use confab_core::event::EventBody;
use confab_core::model::{Change, Item, ItemKind};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemDto {
    pub seq: i64,
    pub pos: i64,
    #[schema(value_type = String, example = "message")]
    pub kind: ItemKind,
    pub sender: Option<String>,
    pub text: Option<String>,
    pub reply_to: Option<i64>,
    pub reply_count: i64,
    pub created_at: String,
    pub edited_at: Option<String>,
    pub deleted: bool,
    /// For announcements: what happened, e.g. `{"type":"member_joined","user":"bob","by":"bob"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub announcement: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl From<Item> for ItemDto {
    /// Moves the strings over (a page of 50 items would otherwise copy each one).
    fn from(i: Item) -> Self {
        ItemDto {
            seq: i.seq.0,
            pos: i.pos.0,
            kind: i.kind,
            sender: i.sender.map(|s| s.0),
            text: i.text,
            reply_to: i.reply_to.map(|s| s.0),
            reply_count: i.reply_count,
            created_at: i.created_at.to_rfc3339(),
            edited_at: i.edited_at.map(|t| t.to_rfc3339()),
            deleted: i.deleted,
            announcement: i.announcement,
            client_id: i.client_id,
        }
    }
}

impl ItemDto {
    pub fn new(i: &Item) -> Self {
        ItemDto {
            seq: i.seq.0,
            pos: i.pos.0,
            kind: i.kind,
            sender: i.sender.as_ref().map(|s| s.0.clone()),
            text: i.text.clone(),
            reply_to: i.reply_to.map(|s| s.0),
            reply_count: i.reply_count,
            created_at: i.created_at.to_rfc3339(),
            edited_at: i.edited_at.map(|t| t.to_rfc3339()),
            deleted: i.deleted,
            announcement: i.announcement.clone(),
            client_id: i.client_id.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemPageDto {
    /// Ascending by seq.
    pub items: Vec<ItemDto>,
    /// Pass as `cursor` for the page before this one; null at the start.
    pub prev_cursor: Option<String>,
    /// Pass as `cursor` for the page after this one; null at the end.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadMarkerDto {
    pub read_seq: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeDto {
    pub pos: i64,
    pub at: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// What changed (for membership: user, action, state, role, by; for rooms: the new fields).
    #[schema(value_type = Object)]
    pub data: Value,
    /// The current state of the item the change touched.
    pub item: Option<ItemDto>,
}

impl ChangeDto {
    pub fn new(c: &Change) -> Self {
        ChangeDto {
            pos: c.pos.0,
            at: c.at.to_rfc3339(),
            kind: c.body.type_name().to_owned(),
            data: change_data(&c.body),
            item: c.item.as_ref().map(ItemDto::new),
        }
    }

    /// The same change as it came over the bus (built by the node that committed it).
    pub fn from_wire(c: &RoomChange) -> Self {
        ChangeDto {
            pos: c.pos.0,
            at: c.at.to_rfc3339(),
            kind: c.change.type_name().to_owned(),
            data: c.change.client_json(),
            item: c.item.clone().map(|i| ItemDto::from(Item::from(i))),
        }
    }
}

/// What clients see of an event: the fields the bus's [`ChangeData`] copies from it, less
/// what the change already says elsewhere (type, room, position) and message texts (the item
/// carries the current text, so a deleted text is not repeated).
fn change_data(body: &EventBody) -> Value {
    ChangeData::from_body(body).map_or(Value::Null, |d| d.client_json())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePageDto {
    pub changes: Vec<ChangeDto>,
    /// Pass as `since` to continue.
    pub next_since: i64,
    pub has_more: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventDto {
    pub offset: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub at: String,
    pub room: Option<i64>,
    #[schema(value_type = Object)]
    pub data: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPageDto {
    pub events: Vec<EventDto>,
    /// Pass as `after` to continue.
    pub next_after: i64,
    pub has_more: bool,
}
