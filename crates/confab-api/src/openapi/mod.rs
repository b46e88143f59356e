//! The OpenAPI document served at `/openapi.json`, built from one table of the routes the
//! router serves (kept beside it in `routes/mod.rs`) and the wire types' schemas.

mod gatherings;
mod identities;

use crate::AppState;
use crate::dto::*;
use axum::Router;
use axum::routing::get;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, Content, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, Required,
    ResponseBuilder,
};

/// Who may call a route.
#[derive(Clone, Copy)]
enum Caller {
    None,
    Admin,
    App,
    User,
    AppOrUser,
}

impl Caller {
    fn text(self) -> &'static str {
        match self {
            Caller::None => "No credential.",
            Caller::Admin => "Credential: the admin key (`Authorization: Bearer <admin key>`).",
            Caller::App => "Credential: the app secret (`Authorization: Bearer <secret>`).",
            Caller::User => "Credential: a user token (`Authorization: Bearer <JWT>`).",
            Caller::AppOrUser => "Credential: the app secret or a user token.",
        }
    }
}

struct Route {
    method: HttpMethod,
    path: &'static str,
    summary: &'static str,
    caller: Caller,
    body: Option<&'static str>,
    status: &'static str,
    response: Option<&'static str>,
    query: &'static [&'static str],
}

#[allow(clippy::too_many_arguments)]
const fn r(
    method: HttpMethod,
    path: &'static str,
    summary: &'static str,
    caller: Caller,
    body: Option<&'static str>,
    status: &'static str,
    response: Option<&'static str>,
    query: &'static [&'static str],
) -> Route {
    Route {
        method,
        path,
        summary,
        caller,
        body,
        status,
        response,
        query,
    }
}

const HISTORY: &[&str] = &["before", "after", "around", "from", "to", "cursor", "limit"];

fn routes() -> Vec<Route> {
    use Caller::*;
    use HttpMethod::{Delete as D, Get as G, Patch as PA, Post as P, Put as PU};
    vec![
        r(
            G,
            "/healthz",
            "The server is up",
            None,
            Option::None,
            "200",
            Option::None,
            &[],
        ),
        r(
            G,
            "/readyz",
            "The store is reachable",
            None,
            Option::None,
            "200",
            Option::None,
            &[],
        ),
        r(
            P,
            "/v1/apps",
            "Create an app; the secret is shown once",
            Admin,
            Some("CreateAppReq"),
            "201",
            Some("AppDto"),
            &[],
        ),
        r(
            G,
            "/v1/apps",
            "List apps",
            Admin,
            Option::None,
            "200",
            Option::None,
            &[],
        ),
        r(
            G,
            "/v1/app",
            "The calling app with its counts",
            App,
            Option::None,
            "200",
            Some("AppDto"),
            &[],
        ),
        r(
            G,
            "/v1/events",
            "The app's event log after an offset (a page stops at `limit` events or ~1 MiB)",
            App,
            Option::None,
            "200",
            Some("EventPageDto"),
            &["after", "limit"],
        ),
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
        r(
            P,
            "/v1/rooms",
            "Create a direct (200 if it exists) or group room",
            User,
            Some("CreateRoomReq"),
            "201",
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
        r(
            P,
            "/v1/rooms/{number}/messages",
            "Send (201; a repeated client_id gives 200 and the same item)",
            User,
            Some("SendReq"),
            "201",
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
        r(
            G,
            "/v1/ws",
            "WebSocket upgrade (real time); the first frame authenticates, see docs/protocol.md",
            None,
            Option::None,
            "101",
            Option::None,
            &[],
        ),
    ]
}

fn param(name: &str, place: ParameterIn) -> utoipa::openapi::path::Parameter {
    let ty = match name {
        "number" | "seq" | "before" | "after" | "around" | "from" | "to" | "limit" | "since"
        | "page" | "meetup" | "poll" => Type::Integer,
        _ => Type::String,
    };
    let required = if matches!(place, ParameterIn::Path) {
        Required::True
    } else {
        Required::False
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(required)
        .schema(Some(ObjectBuilder::new().schema_type(ty)))
        .build()
}

/// The document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for route in routes()
        .into_iter()
        .chain(gatherings::routes())
        .chain(identities::routes())
    {
        let mut op = OperationBuilder::new()
            .summary(Some(route.summary))
            .description(Some(route.caller.text()));
        if !matches!(route.caller, Caller::None) {
            op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        for segment in route.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                op = op.parameter(param(name, ParameterIn::Path));
            }
        }
        for q in route.query {
            op = op.parameter(param(q, ParameterIn::Query));
        }
        if let Some(body) = route.body {
            let content = Content::new(Some(Ref::from_schema_name(body)));
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", content)
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        let mut ok = ResponseBuilder::new().description("success");
        if let Some(resp) = route.response {
            ok = ok.content(
                "application/json",
                Content::new(Some(Ref::from_schema_name(resp))),
            );
        }
        op = op.response(route.status, ok.build());
        let error = ResponseBuilder::new()
            .description("refused: `{\"error\":{\"code\":..,\"message\":..}}` with 400/401/403/404/409/413/422")
            .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorDto"))))
            .build();
        if metered(&route) {
            op = op.response("429", rate_limited());
        }
        if route.path != "/healthz" {
            op = op.response("503", unavailable());
        }
        op = op.response("default", error);
        if route.body.is_some() {
            let late = ResponseBuilder::new()
                .description("`request_timeout`: the body did not arrive within `http_body_timeout_ms`; the connection is closed")
                .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorDto"))))
                .build();
            op = op.response("408", late);
        }
        paths = paths.path(route.path, PathItem::new(route.method, op.build()));
    }
    let components = ComponentsBuilder::new()
        .security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        )
        .schema_from::<ErrorDto>()
        .schema_from::<ErrorBodyDto>()
        .schema_from::<AppDto>()
        .schema_from::<SpanDto>()
        .schema_from::<SearchHitDto>()
        .schema_from::<SearchPageDto>()
        .schema_from::<CompatAppDto>()
        .schema_from::<CompatChatDto>()
        .schema_from::<CompatMessageDto>()
        .schema_from::<CompatMessageReq>()
        .schema_from::<CompatAutocompleteDto>()
        .schema_from::<UserDto>()
        .schema_from::<TokenDto>()
        .schema_from::<RoomDto>()
        .schema_from::<RoomSummaryDto>()
        .schema_from::<RoomListDto>()
        .schema_from::<PublicRoomListDto>()
        .schema_from::<MemberDto>()
        .schema_from::<MemberListDto>()
        .schema_from::<ItemDto>()
        .schema_from::<ItemPageDto>()
        .schema_from::<ReadMarkerDto>()
        .schema_from::<ChangeDto>()
        .schema_from::<ChangePageDto>()
        .schema_from::<EventDto>()
        .schema_from::<EventPageDto>()
        .schema_from::<CreateMeetupReq>()
        .schema_from::<UpdateMeetupReq>()
        .schema_from::<RsvpReq>()
        .schema_from::<RsvpCountsDto>()
        .schema_from::<MeetupDto>()
        .schema_from::<MeetupListDto>()
        .schema_from::<CreatePollReq>()
        .schema_from::<VoteReq>()
        .schema_from::<PollDto>()
        .schema_from::<PollListDto>()
        .schema_from::<AlertDto>()
        .schema_from::<AlertListDto>()
        .schema_from::<CreateAppReq>()
        .schema_from::<UpsertUserReq>()
        .schema_from::<MintTokenReq>()
        .schema_from::<UpdateMeReq>()
        .schema_from::<CreateRoomReq>()
        .schema_from::<UpdateRoomReq>()
        .schema_from::<InviteReq>()
        .schema_from::<SetRoleReq>()
        .schema_from::<SendReq>()
        .schema_from::<EditReq>()
        .schema_from::<ReadReq>()
        .schema_from::<IdentityProviderDto>()
        .schema_from::<IdentityProviderListDto>()
        .schema_from::<IdentityProviderReq>()
        .schema_from::<LinkIdentityReq>()
        .schema_from::<IdentityLinkDto>()
        .schema_from::<OidcSignInReq>()
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Confab")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Multi-tenant chat server"))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .build()
}

/// Whether a route can answer 429: every route of an app or its users (the per-app budget,
/// and for some the per-user write or read budget) and the seed-004 routes (per address).
fn metered(route: &Route) -> bool {
    !matches!(route.caller, Caller::Admin) && !matches!(route.path, "/healthz" | "/readyz")
}

/// The 503 answer: the store cannot take the request now; nothing was done.
fn unavailable() -> utoipa::openapi::Response {
    with_retry_after(
        "`unavailable` (or `not_ready` from /readyz): the database cannot be reached or written \
         (a full disk, say); the request had no effect",
    )
}

/// The 429 answer, with its `Retry-After` header.
fn rate_limited() -> utoipa::openapi::Response {
    with_retry_after(
        "`rate_limited`: over a budget (per user: sends, edits and deletes, meetup, RSVP, \
         poll and vote changes, or expensive reads such as history, changes, events, search \
         and the meetup, poll and alert listings; per app; per client address for \
         routes without a credential)",
    )
}

/// An error answer with a `Retry-After` header.
fn with_retry_after(description: &str) -> utoipa::openapi::Response {
    let seconds = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1));
    let retry_after = utoipa::openapi::header::HeaderBuilder::new()
        .schema(Some(seconds))
        .description(Some(
            "whole seconds to wait before trying again (at least 1)",
        ))
        .build();
    ResponseBuilder::new()
        .description(description)
        .header("Retry-After", retry_after)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorDto"))),
        )
        .build()
}

pub fn router() -> Router<AppState> {
    let doc = std::sync::Arc::new(document());
    Router::new().route(
        "/openapi.json",
        get(move || async move { axum::Json(doc.as_ref().clone()) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route in the document is served by the router, and every schema it names exists.
    #[test]
    fn document_references_only_defined_schemas() {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        let schemas = doc["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let text = doc.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(
                schemas.contains_key(&name),
                "schema {name} is referenced but not defined"
            );
        }
        assert!(doc["paths"]["/v1/rooms/{number}/messages"]["post"].is_object());
        assert!(doc["paths"]["/v1/rooms/{number}/messages"]["get"].is_object());
        let limited = &doc["paths"]["/v1/rooms/{number}/messages"]["post"]["responses"]["429"];
        assert!(limited["headers"]["Retry-After"].is_object(), "{limited}");
        assert!(doc["paths"]["/healthz"]["get"]["responses"]["429"].is_null());
        for (path, method, body, answer) in [
            (
                "/v1/rooms/{number}/meetups",
                "post",
                "CreateMeetupReq",
                "MeetupDto",
            ),
            (
                "/v1/rooms/{number}/meetups/{meetup}",
                "patch",
                "UpdateMeetupReq",
                "MeetupDto",
            ),
            (
                "/v1/rooms/{number}/meetups/{meetup}/rsvp",
                "put",
                "RsvpReq",
                "MeetupDto",
            ),
            (
                "/v1/rooms/{number}/polls",
                "post",
                "CreatePollReq",
                "PollDto",
            ),
            (
                "/v1/rooms/{number}/polls/{poll}/vote",
                "put",
                "VoteReq",
                "PollDto",
            ),
        ] {
            let op = &doc["paths"][path][method];
            assert!(op.to_string().contains(body), "{method} {path}: {op}");
            assert!(op.to_string().contains(answer), "{method} {path}: {op}");
        }
        for (path, methods) in [
            ("/v1/rooms/{number}/meetups", &["get", "post"][..]),
            (
                "/v1/rooms/{number}/meetups/{meetup}",
                &["get", "patch", "delete"],
            ),
            ("/v1/rooms/{number}/polls", &["get", "post"]),
            ("/v1/rooms/{number}/polls/{poll}", &["get"]),
            ("/v1/rooms/{number}/polls/{poll}/close", &["post"]),
            ("/v1/me/meetups", &["get"]),
            ("/v1/me/alerts", &["get"]),
        ] {
            for m in methods {
                assert!(doc["paths"][path][m].is_object(), "{m} {path}");
            }
        }
        for (path, methods) in [
            ("/v1/app/identity-providers", &["get"][..]),
            ("/v1/app/identity-providers/{id}", &["put", "get", "delete"]),
            (
                "/v1/app/users/{user_id}/identities/{provider}",
                &["put", "delete"],
            ),
            ("/v1/auth/oidc", &["post"]),
        ] {
            for m in methods {
                assert!(doc["paths"][path][m].is_object(), "{m} {path}");
            }
        }
        let app = doc["components"]["schemas"]["AppDto"].to_string();
        assert!(app.contains("public_id"), "{app}");
        let summary = &doc["components"]["schemas"]["RoomSummaryDto"].to_string();
        assert!(summary.contains("alerts_count"), "{summary}");
    }
}
