//! The OpenAPI rows and schemas of rooms: creation, my rooms, the public rooms, aliases, details,
//! updates and deletion; [`super::routes`] gathers them.

use super::{Route, r};
use crate::dto::{
    CreateRoomReq, PublicRoomListDto, RoomDto, RoomListDto, RoomSummaryDto, UpdateRoomReq,
};
use utoipa::openapi::ComponentsBuilder;

pub(super) fn routes() -> Vec<Route> {
    use super::Caller::*;
    use utoipa::openapi::path::HttpMethod::{Delete as D, Get as G, Patch as PA, Post as P};
    vec![
        r(
            P,
            "/v1/rooms",
            "Create a direct (200 if it exists) or group room",
            User,
            Some("CreateRoomReq"),
            "201 200",
            Some("RoomDto"),
            &[],
        ),
        r(
            G,
            "/v1/rooms",
            "My rooms, newest activity first",
            User,
            Option::None,
            "200",
            Some("RoomListDto"),
            &["state", "cursor", "limit"],
        ),
        r(
            G,
            "/v1/rooms/public",
            "Public rooms of the app",
            User,
            Option::None,
            "200",
            Some("PublicRoomListDto"),
            &["cursor", "limit"],
        ),
        r(
            G,
            "/v1/rooms/alias/{alias}",
            "Resolve an alias",
            User,
            Option::None,
            "200",
            Some("RoomDto"),
            &[],
        ),
        r(
            G,
            "/v1/rooms/{number}",
            "Room details",
            User,
            Option::None,
            "200",
            Some("RoomDto"),
            &[],
        ),
        r(
            PA,
            "/v1/rooms/{number}",
            "Rename, change image or visibility (admins)",
            User,
            Some("UpdateRoomReq"),
            "200",
            Some("RoomDto"),
            &[],
        ),
        r(
            D,
            "/v1/rooms/{number}",
            "Delete the room (owner)",
            User,
            Option::None,
            "204",
            Option::None,
            &[],
        ),
    ]
}

/// The schemas these rows name.
pub(super) fn schemas(components: ComponentsBuilder) -> ComponentsBuilder {
    components
        .schema_from::<RoomDto>()
        .schema_from::<RoomSummaryDto>()
        .schema_from::<RoomListDto>()
        .schema_from::<PublicRoomListDto>()
        .schema_from::<CreateRoomReq>()
        .schema_from::<UpdateRoomReq>()
}
