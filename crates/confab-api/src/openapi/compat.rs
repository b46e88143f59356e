//! The OpenAPI rows and schemas of the seed-004 compatibility API (`/api/v1/...`);
//! [`super::routes`] gathers them.

use super::{Route, r};
use crate::dto::{
    CompatAppDto, CompatAutocompleteDto, CompatChatDto, CompatMessageDto, CompatMessageReq,
};
use utoipa::openapi::ComponentsBuilder;

pub(super) fn routes() -> Vec<Route> {
    use super::Caller::*;
    use utoipa::openapi::path::HttpMethod::{Get as G, Post as P, Put as PU};
    vec![
        r(
            P,
            "/api/v1/apps",
            "Seed-004 API: create an application (admin key only if open_app_creation is off)",
            None,
            Some("CreateAppReq"),
            "201",
            Some("CompatAppDto"),
            &[],
        ),
        r(
            PU,
            "/api/v1/apps/{token}",
            "Seed-004 API: rename an application",
            None,
            Some("CreateAppReq"),
            "200",
            Some("CompatAppDto"),
            &[],
        ),
        r(
            G,
            "/api/v1/apps/{token}",
            "Seed-004 API: an application with its chats_count",
            None,
            Option::None,
            "200",
            Some("CompatAppDto"),
            &[],
        ),
        r(
            P,
            "/api/v1/apps/{token}/chats",
            "Seed-004 API: create a chat (no body); returns its number",
            None,
            Option::None,
            "201",
            Some("CompatChatDto"),
            &[],
        ),
        r(
            G,
            "/api/v1/apps/{token}/chats/{number}",
            "Seed-004 API: a chat with its messages_count",
            None,
            Option::None,
            "200",
            Some("CompatChatDto"),
            &[],
        ),
        r(
            P,
            "/api/v1/apps/{token}/chats/{number}/messages",
            "Seed-004 API: create a message; returns its number",
            None,
            Some("CompatMessageReq"),
            "201",
            Some("CompatMessageDto"),
            &[],
        ),
        r(
            G,
            "/api/v1/apps/{token}/chats/{number}/messages/autocomplete",
            "Seed-004 API: messages of the chat partially matching a keyword",
            None,
            Option::None,
            "200",
            Some("CompatAutocompleteDto"),
            &["keyword", "limit", "page"],
        ),
        r(
            G,
            "/api/v1/apps/{token}/chats/{number}/messages/{seq}",
            "Seed-004 API: one message by its number",
            None,
            Option::None,
            "200",
            Some("CompatMessageDto"),
            &[],
        ),
    ]
}

/// The schemas these rows name.
pub(super) fn schemas(components: ComponentsBuilder) -> ComponentsBuilder {
    components
        .schema_from::<CompatAppDto>()
        .schema_from::<CompatChatDto>()
        .schema_from::<CompatMessageDto>()
        .schema_from::<CompatMessageReq>()
        .schema_from::<CompatAutocompleteDto>()
}
