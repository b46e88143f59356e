//! Liveness and readiness.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "store not ready");
        ApiError {
            retry_after: Some(std::time::Duration::from_secs(1)),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the store cannot read or write now",
            )
        }
    })?;
    Ok(Json(json!({"status": "ready"})))
}
