//! The seed-004 compatible API's wire types.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    #[schema(pattern = "\\S")]
    pub content: String,
}
