//! Wire types: what clients send and receive. Kept apart from the domain's read models and
//! converted with plain functions, so the wire format is chosen here and nowhere else.

use confab_core::bus::{ChangeData, RoomChange};
use confab_core::event::EventBody;
use confab_core::model::{App, AppStats, Change, Item, ItemKind, Member, Room, RoomSummary, User};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct AppDto {
    pub token: String,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
    /// Only in the answer to creation: store it, it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages_count: Option<i64>,
}

impl AppDto {
    pub fn new(app: &App) -> Self {
        AppDto {
            token: app.token.clone(),
            name: app.name.clone(),
            created_at: app.created_at.to_rfc3339(),
            updated_at: app.updated_at.to_rfc3339(),
            secret: None,
            rooms_count: None,
            users_count: None,
            messages_count: None,
        }
    }
    pub fn with_stats(mut self, s: AppStats) -> Self {
        self.rooms_count = Some(s.rooms_count);
        self.users_count = Some(s.users_count);
        self.messages_count = Some(s.messages_count);
        self
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: String,
    pub name: Option<String>,
    pub image_url: Option<String>,
    /// Shown to the app and to the user themself only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_login_at: Option<String>,
    pub last_seen_at: Option<String>,
}

impl UserDto {
    pub fn new(u: &User, show_email: bool) -> Self {
        UserDto {
            id: u.id.0.clone(),
            name: u.name.clone(),
            image_url: u.image_url.clone(),
            email: if show_email { u.email.clone() } else { None },
            created_at: u.created_at.to_rfc3339(),
            updated_at: u.updated_at.to_rfc3339(),
            last_login_at: u.last_login_at.map(|t| t.to_rfc3339()),
            last_seen_at: u.last_seen_at.map(|t| t.to_rfc3339()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDto {
    pub token: String,
    pub user_id: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomDto {
    pub number: i64,
    #[schema(value_type = String, example = "group")]
    pub kind: confab_core::model::RoomKind,
    pub name: Option<String>,
    pub image_url: Option<String>,
    #[schema(value_type = String, example = "public")]
    pub visibility: confab_core::model::Visibility,
    pub alias: Option<String>,
    pub creator: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub member_count: i64,
    pub messages_count: i64,
    pub last_seq: i64,
    pub last_pos: i64,
    /// The caller's role, when they are a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The caller's membership state, when they have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership: Option<String>,
}

impl RoomDto {
    pub fn new(r: &Room, me: Option<&Member>) -> Self {
        RoomDto {
            number: r.number.0,
            kind: r.kind,
            name: r.name.clone(),
            image_url: r.image_url.clone(),
            visibility: r.visibility,
            alias: r.alias.clone(),
            creator: r.creator.as_ref().map(|c| c.0.clone()),
            created_at: r.created_at.to_rfc3339(),
            updated_at: r.updated_at.to_rfc3339(),
            member_count: r.member_count,
            messages_count: r.messages_count,
            last_seq: r.last_seq.0,
            last_pos: r.last_pos.0,
            role: me
                .filter(|m| m.state == confab_core::model::MemberState::Joined)
                .map(|m| m.role.as_str().to_owned()),
            membership: me.map(|m| m.state.as_str().to_owned()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomSummaryDto {
    #[serde(flatten)]
    pub room: RoomDto,
    pub unread_count: i64,
    pub read_seq: i64,
    pub last_item: Option<ItemDto>,
}

impl RoomSummaryDto {
    pub fn new(s: &RoomSummary) -> Self {
        RoomSummaryDto {
            room: RoomDto::new(&s.room, Some(&s.member)),
            unread_count: s.unread_count,
            read_seq: s.member.read_seq.0,
            last_item: s.last_item.as_ref().map(ItemDto::new),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomListDto {
    pub rooms: Vec<RoomSummaryDto>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicRoomListDto {
    pub rooms: Vec<RoomDto>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberDto {
    pub user_id: String,
    pub role: String,
    pub state: String,
    pub read_seq: i64,
    pub updated_at: String,
}

impl MemberDto {
    pub fn new(m: &Member) -> Self {
        MemberDto {
            user_id: m.user.0.clone(),
            role: m.role.as_str().to_owned(),
            state: m.state.as_str().to_owned(),
            read_seq: m.read_seq.0,
            updated_at: m.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberListDto {
    pub members: Vec<MemberDto>,
    pub next_cursor: Option<String>,
}

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

// ---- request bodies ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAppReq {
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertUserReq {
    pub name: Option<String>,
    pub image_url: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct MintTokenReq {
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeReq {
    pub name: Option<String>,
    pub image_url: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CreateRoomReq {
    Direct {
        with: String,
    },
    Group {
        name: Option<String>,
        image_url: Option<String>,
        #[schema(value_type = Option<String>)]
        visibility: Option<confab_core::model::Visibility>,
        #[serde(default)]
        members: Vec<String>,
        alias: Option<String>,
    },
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoomReq {
    pub name: Option<String>,
    pub image_url: Option<String>,
    #[schema(value_type = Option<String>)]
    pub visibility: Option<confab_core::model::Visibility>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteReq {
    pub user_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoleReq {
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendReq {
    pub text: String,
    pub reply_to: Option<i64>,
    pub client_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditReq {
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadReq {
    pub seq: i64,
}

/// The shape of every refusal.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDto {
    pub error: ErrorBodyDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBodyDto {
    /// A stable snake_case code, e.g. `room_not_found`.
    pub code: String,
    pub message: String,
}

/// Where a search term matched: characters `start..end` (Unicode scalar values) of `text`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpanDto {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitDto {
    pub room: i64,
    pub seq: i64,
    pub text: String,
    pub sender: Option<String>,
    pub created_at: String,
    pub edited_at: Option<String>,
    /// The matched ranges, in order, overlapping matches merged.
    pub spans: Vec<SpanDto>,
}

impl SearchHitDto {
    pub fn new(h: &confab_core::search::Hit) -> Self {
        SearchHitDto {
            room: h.room.0,
            seq: h.item.seq.0,
            text: h.item.text.clone().unwrap_or_default(),
            sender: h.item.sender.as_ref().map(|s| s.0.clone()),
            created_at: h.item.created_at.to_rfc3339(),
            edited_at: h.item.edited_at.map(|t| t.to_rfc3339()),
            spans: h
                .spans
                .iter()
                .map(|s| SpanDto {
                    start: s.start,
                    end: s.end,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchPageDto {
    /// Newest first.
    pub hits: Vec<SearchHitDto>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// An application as the seed-004 compatible API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompatAppDto {
    pub token: String,
    pub name: String,
    /// Chats (rooms) of the app; exact at all times.
    pub chats_count: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Only in the answer to creation: the app secret for Confab's own API (`/v1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompatChatDto {
    pub number: i64,
    /// Messages in the chat; exact at all times.
    pub messages_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompatMessageDto {
    pub number: i64,
    /// `null` once the message was deleted (through `/v1`).
    pub content: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompatAutocompleteDto {
    /// Matching messages of the chat, newest first.
    pub messages: Vec<CompatMessageDto>,
    pub page: i64,
    pub limit: i64,
    /// Whether a further page has results.
    pub has_more: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompatMessageReq {
    pub content: String,
}
