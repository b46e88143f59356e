//! The OpenAPI rows and schemas of the service's health and of apps: creating and listing them
//! (admin key), the calling app and its event log; [`super::routes`] gathers them.

use super::{Route, r};
use crate::dto::{AppDto, CreateAppReq, EventDto, EventPageDto};
use utoipa::openapi::ComponentsBuilder;

pub(super) fn routes() -> Vec<Route> {
    use super::Caller::*;
    use utoipa::openapi::path::HttpMethod::{Get as G, Post as P};
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
    ]
}

/// The schemas these rows name.
pub(super) fn schemas(components: ComponentsBuilder) -> ComponentsBuilder {
    components
        .schema_from::<AppDto>()
        .schema_from::<EventDto>()
        .schema_from::<EventPageDto>()
        .schema_from::<CreateAppReq>()
}
