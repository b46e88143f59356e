//! The OpenAPI document served at `/openapi.json`, built from one table of the routes the
//! router serves (kept beside it in `routes/mod.rs`) and the wire types' schemas.

mod apps;
mod compat;
mod gatherings;
mod identities;
mod members;
mod messages;
mod rooms;
mod users;

use crate::AppState;
use crate::dto::*;
use axum::Router;
use axum::routing::get;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
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
    /// The success status; a second one after a space for a repeat that finds what exists.
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

/// Every route of the document, area by area, in the order the document lists them.
fn routes() -> Vec<Route> {
    [
        apps::routes(),
        users::routes(),
        rooms::routes(),
        members::routes(),
        messages::routes(),
        compat::routes(),
        vec![websocket()],
        gatherings::routes(),
        identities::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The WebSocket upgrade: the one route outside the REST areas.
fn websocket() -> Route {
    use Caller::*;
    use HttpMethod::Get as G;
    r(
        G,
        "/v1/ws",
        "WebSocket upgrade (real time); the first frame authenticates, see docs/protocol.md",
        None,
        Option::None,
        "101",
        Option::None,
        &[],
    )
}

/// A parameter of `path`'s route with the bounds its handler enforces, so that what the
/// document allows is what the server accepts (page sizes from `cursor`'s bounds).
fn param(path: &str, name: &str, place: ParameterIn) -> utoipa::openapi::path::Parameter {
    let int = |min: i64| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(min))
    };
    let one_of = |values: &[&str]| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.iter().copied()))
    };
    let in_path = matches!(place, ParameterIn::Path);
    let (schema, description) = match (in_path, name) {
        // Room numbers, seqs, meetups and polls count from 1.
        (true, "number" | "seq" | "meetup" | "poll") => (int(1), None),
        (true, "user_id") => (
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(crate::dto::USER_ID_PATTERN)),
            None,
        ),
        (true, "action") => (one_of(&["approve", "reject", "kick", "ban", "unban"]), None),
        (_, "limit") => {
            let (default, max) = page_bounds(path);
            let schema = int(1).maximum(Some(max as f64));
            (schema, Some(format!("1 to {max}; {default} when left out")))
        }
        (_, "page") => (int(1), None),
        (_, "before" | "after" | "around" | "from" | "to" | "since") => (int(0), None),
        (_, "state") if path == "/v1/rooms" => (one_of(&["joined", "invited", "applied"]), None),
        (_, "state") => (
            one_of(&[
                "invited", "applied", "joined", "left", "rejected", "kicked", "banned",
            ]),
            None,
        ),
        (_, "scope") => (one_of(&["upcoming", "all"]), None),
        (_, "q") => (
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("\\S")),
            None,
        ),
        (_, "subject") => (
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[^\\u0000]{1,255}$")),
            None,
        ),
        _ => (ObjectBuilder::new().schema_type(Type::String), None),
    };
    let required = if in_path || matches!(name, "q" | "subject") {
        Required::True
    } else {
        Required::False
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(place)
        .required(required)
        .description(description)
        .schema(Some(schema))
        .build()
}

/// The page size bounds (default, most) of a route's `limit`.
fn page_bounds(path: &str) -> (usize, usize) {
    match path {
        "/v1/events" | "/v1/rooms/{number}/changes" => crate::cursor::FEED,
        "/v1/search" | "/v1/rooms/{number}/search" => crate::cursor::SEARCH,
        p if p.starts_with("/api/") => crate::cursor::AUTOCOMPLETE,
        _ => crate::cursor::PAGE,
    }
}

/// The document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for route in routes() {
        let mut op = OperationBuilder::new()
            .summary(Some(route.summary))
            .description(Some(route.caller.text()));
        if !matches!(route.caller, Caller::None) {
            op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        for segment in route.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                op = op.parameter(param(route.path, name, ParameterIn::Path));
            }
        }
        for q in route.query {
            op = op.parameter(param(route.path, q, ParameterIn::Query));
        }
        if let Some(body) = route.body {
            let content = Content::new(Some(Ref::from_schema_name(body)));
            // A token's settings may be left out altogether (`{}` is implied).
            let required = if body == "MintTokenReq" {
                Required::False
            } else {
                Required::True
            };
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", content)
                    .required(Some(required))
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
        // "201 200": created, or found as it was (an idempotent repeat).
        let ok = ok.build();
        for status in route.status.split(' ') {
            op = op.response(status, ok.clone());
        }
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
        .schema_from::<ErrorBodyDto>();
    let areas = [
        apps::schemas,
        users::schemas,
        rooms::schemas,
        members::schemas,
        messages::schemas,
        compat::schemas,
        gatherings::schemas,
        identities::schemas,
    ];
    let components = areas
        .into_iter()
        .fold(components, |components, area| area(components))
        .build();
    let mut components = components;
    closed_variants(&mut components, "CreateRoomReq");
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

/// Marks each variant of a tagged request body closed (`additionalProperties: false`), as the
/// server refuses unknown fields; the derive does so for structs, not for an enum's variants.
fn closed_variants(components: &mut utoipa::openapi::Components, name: &str) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut(name) else {
        return;
    };
    for item in &mut one_of.items {
        if let RefOr::T(Schema::Object(object)) = item {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    }
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
         poll and vote changes, or expensive reads such as history, changes, events, search, \
         the meetup, poll and alert listings and one poll with its voters; per app; per \
         client address for routes without a credential)",
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

    /// The document bounds what the handlers bound: a client generated from it, or a fuzzer
    /// reading it, does not send values the server is sure to refuse.
    #[test]
    fn parameters_and_bodies_carry_the_handlers_bounds() {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        let param = |path: &str, method: &str, name: &str| {
            doc["paths"][path][method]["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == name).cloned())
                .unwrap_or_default()["schema"]
                .clone()
        };
        for (path, max) in [
            ("/v1/rooms/{number}/messages", crate::cursor::PAGE.1),
            ("/v1/rooms/{number}/changes", crate::cursor::FEED.1),
            ("/v1/events", crate::cursor::FEED.1),
            ("/v1/search", crate::cursor::SEARCH.1),
            ("/v1/rooms/{number}/members", crate::cursor::PAGE.1),
        ] {
            let limit = param(path, "get", "limit");
            assert_eq!(limit["minimum"], 1, "{path}: {limit}");
            assert_eq!(
                limit["maximum"].as_f64(),
                Some(max as f64),
                "{path}: {limit}"
            );
        }
        let number = param("/v1/rooms/{number}/messages", "get", "number");
        assert_eq!(number["minimum"], 1, "{number}");
        assert_eq!(number["format"], "int64", "{number}");
        assert_eq!(
            param("/v1/rooms/{number}/messages", "get", "after")["minimum"],
            0
        );
        let states = param("/v1/rooms", "get", "state").to_string();
        assert!(
            states.contains("invited") && !states.contains("banned"),
            "{states}"
        );
        let action = param(
            "/v1/rooms/{number}/members/{user_id}/{action}",
            "post",
            "action",
        );
        assert!(action.to_string().contains("unban"), "{action}");
        let schemas = &doc["components"]["schemas"];
        let rsvp = schemas["RsvpReq"].to_string();
        assert!(rsvp.contains("maybe"), "{rsvp}");
        let room = schemas["UpdateRoomReq"].to_string();
        assert!(room.contains("private"), "{room}");
        let poll = schemas["CreatePollReq"].to_string();
        for word in ["reschedule", "undisclosed", "date-time", "minItems"] {
            assert!(poll.contains(word), "{word}: {poll}");
        }
        let send = schemas["SendReq"].to_string();
        assert!(send.contains("pattern"), "{send}");
        let create = schemas["CreateRoomReq"]["oneOf"].as_array().cloned();
        assert_eq!(create.as_ref().map(Vec::len), Some(2), "{create:?}");
        for variant in create.into_iter().flatten() {
            assert_eq!(variant["additionalProperties"], false, "{variant}");
        }
        let mint = &doc["paths"]["/v1/users/{user_id}/tokens"]["post"]["requestBody"];
        assert_eq!(mint["required"], false, "{mint}");
        for (path, method) in [
            ("/v1/rooms", "post"),
            ("/v1/rooms/{number}/messages", "post"),
            ("/v1/app/identity-providers/{id}", "put"),
        ] {
            let answers = &doc["paths"][path][method]["responses"];
            assert!(
                answers["201"].is_object() && answers["200"].is_object(),
                "{path}"
            );
        }
        let q = param("/v1/search", "get", "q");
        assert!(q.to_string().contains("pattern"), "{q}");
    }
}
