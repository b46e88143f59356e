//! Rooms, room lists and members on the wire.

use super::ItemDto;
use confab_core::model::{Member, Room, RoomSummary};
use serde::Serialize;
use utoipa::ToSchema;

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
    /// My alerts in this room: open polls I may vote on and have not.
    pub alerts_count: i64,
}

impl RoomSummaryDto {
    pub fn new(s: &RoomSummary) -> Self {
        RoomSummaryDto {
            room: RoomDto::new(&s.room, Some(&s.member)),
            unread_count: s.unread_count,
            read_seq: s.member.read_seq.0,
            last_item: s.last_item.as_ref().map(ItemDto::new),
            alerts_count: s.alerts_count,
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
