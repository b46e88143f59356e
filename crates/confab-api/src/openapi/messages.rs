//! The OpenAPI rows and schemas of messages: sends, the timeline, one item, edits, deletes,
//! threads, read markers, the change feed and search; [`super::routes`] gathers them.

use super::{Route, r};
use crate::dto::{
    ChangeDto, ChangePageDto, EditReq, ItemDto, ItemPageDto, ReadMarkerDto, ReadReq, SearchHitDto,
    SearchPageDto, SendReq, SpanDto,
};
use utoipa::openapi::ComponentsBuilder;

const HISTORY: &[&str] = &["before", "after", "around", "from", "to", "cursor", "limit"];

pub(super) fn routes() -> Vec<Route> {
    use super::Caller::*;
    use utoipa::openapi::path::HttpMethod::{
        Delete as D, Get as G, Patch as PA, Post as P, Put as PU,
    };
    vec![
        r(
            P,
            "/v1/rooms/{number}/messages",
            "Send (201; a repeated client_id gives 200 and the same item)",
            User,
            Some("SendReq"),
            "201 200",
            Some("ItemDto"),
            &[],
        ),
        r(
            G,
            "/v1/rooms/{number}/messages",
            "A page of the timeline, ascending",
            User,
            Option::None,
            "200",
            Some("ItemPageDto"),
            HISTORY,
        ),
        r(
            G,
            "/v1/rooms/{number}/messages/{seq}",
            "One item",
            User,
            Option::None,
            "200",
            Some("ItemDto"),
            &[],
        ),
        r(
            PA,
            "/v1/rooms/{number}/messages/{seq}",
            "Edit (sender)",
            User,
            Some("EditReq"),
            "200",
            Some("ItemDto"),
            &[],
        ),
        r(
            D,
            "/v1/rooms/{number}/messages/{seq}",
            "Delete (sender or admin); leaves a tombstone",
            User,
            Option::None,
            "200",
            Some("ItemDto"),
            &[],
        ),
        r(
            G,
            "/v1/rooms/{number}/messages/{seq}/replies",
            "The thread under a message",
            User,
            Option::None,
            "200",
            Some("ItemPageDto"),
            HISTORY,
        ),
        r(
            PU,
            "/v1/rooms/{number}/read",
            "Move my read marker forward",
            User,
            Some("ReadReq"),
            "200",
            Some("ReadMarkerDto"),
            &[],
        ),
        r(
            G,
            "/v1/rooms/{number}/changes",
            "Changes after a position (a page stops at `limit` changes or ~1 MiB)",
            User,
            Option::None,
            "200",
            Some("ChangePageDto"),
            &["since", "limit"],
        ),
        r(
            G,
            "/v1/rooms/{number}/search",
            "Search the room's messages (partial match, newest first)",
            User,
            Option::None,
            "200",
            Some("SearchPageDto"),
            &["q", "cursor", "limit"],
        ),
        r(
            G,
            "/v1/search",
            "Search the messages of every room I have joined (newest first)",
            User,
            Option::None,
            "200",
            Some("SearchPageDto"),
            &["q", "cursor", "limit"],
        ),
    ]
}

/// The schemas these rows name.
pub(super) fn schemas(components: ComponentsBuilder) -> ComponentsBuilder {
    components
        .schema_from::<SpanDto>()
        .schema_from::<SearchHitDto>()
        .schema_from::<SearchPageDto>()
        .schema_from::<ItemDto>()
        .schema_from::<ItemPageDto>()
        .schema_from::<ReadMarkerDto>()
        .schema_from::<ChangeDto>()
        .schema_from::<ChangePageDto>()
        .schema_from::<SendReq>()
        .schema_from::<EditReq>()
        .schema_from::<ReadReq>()
}
