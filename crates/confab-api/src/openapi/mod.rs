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
    for route in routes() {
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
}
