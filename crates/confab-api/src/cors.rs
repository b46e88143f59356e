//! CORS for browser clients. Off unless origins are configured; then a request from an
//! allowed origin gets `Access-Control-Allow-Origin` and preflights are answered here, before
//! routing, with the methods and headers the API uses. Other origins get no allow headers, so
//! the browser keeps their scripts out.
//!
//! Credentials are bearer tokens in `Authorization` (the WebSocket takes its token in its
//! first frame), never cookies or URL parameters, so `Access-Control-Allow-Credentials` is
//! never sent and `*` is a safe choice for a public API.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";
const METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
const HEADERS: &str = "authorization, content-type";
/// Response headers scripts may read besides the simple ones: rate-limited clients need it.
const EXPOSED: &str = "retry-after";

/// The allowed origins.
#[derive(Debug)]
pub struct Cors {
    any: bool,
    origins: Vec<HeaderValue>,
}

impl Cors {
    /// `None` when no origin is configured: no CORS at all.
    pub fn new(origins: &[String]) -> Option<Arc<Cors>> {
        if origins.is_empty() {
            return None;
        }
        let any = origins.iter().any(|o| o == "*");
        let origins = origins
            .iter()
            .filter(|o| *o != "*")
            .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
            .collect();
        Some(Arc::new(Cors { any, origins }))
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, if it is allowed.
    fn allow(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        // Browsers send the origin serialized (lower-case scheme and host); compare as such.
        let o = origin.as_bytes();
        self.origins
            .iter()
            .any(|a| a.as_bytes().eq_ignore_ascii_case(o))
            .then(|| origin.clone())
    }
}

/// Middleware: answers preflights and marks the answers of allowed origins.
pub async fn apply(State(cors): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    let allowed = cors.allow(req.headers());
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        match &allowed {
            Some(_) => {
                let mut r = StatusCode::NO_CONTENT.into_response();
                let h = r.headers_mut();
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static(METHODS),
                );
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(HEADERS),
                );
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static(MAX_AGE),
                );
                r
            }
            None => ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin may not call the API from a browser",
            )
            .into_response(),
        }
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    // The answer depends on the origin: shared caches must not hand one origin's to another.
    if !cors.any {
        h.append(header::VARY, HeaderValue::from_static("origin"));
    }
    if let Some(origin) = allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if !preflight {
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED),
            );
        }
    }
    response
}
