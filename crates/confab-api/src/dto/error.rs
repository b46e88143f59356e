//! The shape of every refusal.

use serde::Serialize;
use utoipa::ToSchema;

/// The shape of every refusal.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDto {
    pub error: ErrorBodyDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBodyDto {
    /// A stable snake_case code, e.g. `room_not_found`.
    pub code: String,
    pub message: String,
}
