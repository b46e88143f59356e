//! The OpenAPI rows and schemas of users: created and updated by their app, their tokens, and
//! `/v1/me`; [`super::routes`] gathers them.

use super::{Route, r};
use crate::dto::{MintTokenReq, TokenDto, UpdateMeReq, UpsertUserReq, UserDto};
use utoipa::openapi::ComponentsBuilder;

pub(super) fn routes() -> Vec<Route> {
    use super::Caller::*;
    use utoipa::openapi::path::HttpMethod::{Get as G, Patch as PA, Post as P, Put as PU};
    vec![
        r(
            PU,
            "/v1/users/{user_id}",
            "Create or update a user",
            App,
            Some("UpsertUserReq"),
            "200",
            Some("UserDto"),
            &[],
        ),
        r(
            G,
            "/v1/users/{user_id}",
            "A user's profile",
            AppOrUser,
            Option::None,
            "200",
            Some("UserDto"),
            &[],
        ),
        r(
            P,
            "/v1/users/{user_id}/tokens",
            "Mint a user token",
            App,
            Some("MintTokenReq"),
            "200",
            Some("TokenDto"),
            &[],
        ),
        r(
            G,
            "/v1/me",
            "My profile",
            User,
            Option::None,
            "200",
            Some("UserDto"),
            &[],
        ),
        r(
            PA,
            "/v1/me",
            "Update my name or image",
            User,
            Some("UpdateMeReq"),
            "200",
            Some("UserDto"),
            &[],
        ),
    ]
}

/// The schemas these rows name.
pub(super) fn schemas(components: ComponentsBuilder) -> ComponentsBuilder {
    components
        .schema_from::<UserDto>()
        .schema_from::<TokenDto>()
        .schema_from::<UpsertUserReq>()
        .schema_from::<MintTokenReq>()
        .schema_from::<UpdateMeReq>()
}
