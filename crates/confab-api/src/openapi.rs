//! The OpenAPI document served at `/openapi.json`.

use crate::AppState;
use axum::Router;
use axum::routing::get;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/openapi.json",
        get(|| async { axum::Json(serde_json::json!({"openapi": "3.1.0"})) }),
    )
}
