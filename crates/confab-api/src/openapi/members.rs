//! The OpenAPI rows and schemas of membership: the members list, joining, leaving, invitations,
//! roles and the admins' actions; [`super::routes`] gathers them.

use super::{Route, r};
use crate::dto::{InviteReq, MemberDto, MemberListDto, SetRoleReq};
use utoipa::openapi::ComponentsBuilder;

pub(super) fn routes() -> Vec<Route> {
    use super::Caller::*;
    use utoipa::openapi::path::HttpMethod::{Get as G, Patch as PA, Post as P};
    vec![
        r(
            G,
            "/v1/rooms/{number}/members",
            "Members",
            User,
            Option::None,
            "200",
            Some("MemberListDto"),
            &["state", "cursor", "limit"],
        ),
        r(
            P,
            "/v1/rooms/{number}/join",
            "Join, accept an invitation, or apply",
            User,
            Option::None,
            "200",
            Some("MemberDto"),
            &[],
        ),
        r(
            P,
            "/v1/rooms/{number}/leave",
            "Leave, decline or withdraw",
            User,
            Option::None,
            "200",
            Some("MemberDto"),
            &[],
        ),
        r(
            P,
            "/v1/rooms/{number}/invites",
            "Invite a user",
            User,
            Some("InviteReq"),
            "200",
            Some("MemberDto"),
            &[],
        ),
        r(
            PA,
            "/v1/rooms/{number}/members/{user_id}",
            "Set a member's role (owner)",
            User,
            Some("SetRoleReq"),
            "200",
            Some("MemberDto"),
            &[],
        ),
        r(
            P,
            "/v1/rooms/{number}/members/{user_id}/{action}",
            "approve, reject, kick, ban or unban (admins)",
            User,
            Option::None,
            "200",
            Some("MemberDto"),
            &[],
        ),
    ]
}

/// The schemas these rows name.
pub(super) fn schemas(components: ComponentsBuilder) -> ComponentsBuilder {
    components
        .schema_from::<MemberDto>()
        .schema_from::<MemberListDto>()
        .schema_from::<InviteReq>()
        .schema_from::<SetRoleReq>()
}
