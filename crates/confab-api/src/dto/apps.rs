//! Apps, users and tokens on the wire.

use confab_core::model::{App, AppStats, User};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct AppDto {
    pub token: String,
    /// The app's public id: what a client names the app by in `POST /v1/auth/oidc`. It is the
    /// key id (`kid`) every user token of the app carries, and grants nothing by itself.
    pub public_id: String,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
    /// Only in the answer to creation: store it, it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages_count: Option<i64>,
}

impl AppDto {
    pub fn new(app: &App) -> Self {
        AppDto {
            token: app.token.clone(),
            public_id: app.key_id.clone(),
            name: app.name.clone(),
            created_at: app.created_at.to_rfc3339(),
            updated_at: app.updated_at.to_rfc3339(),
            secret: None,
            rooms_count: None,
            users_count: None,
            messages_count: None,
        }
    }
    pub fn with_stats(mut self, s: AppStats) -> Self {
        self.rooms_count = Some(s.rooms_count);
        self.users_count = Some(s.users_count);
        self.messages_count = Some(s.messages_count);
        self
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: String,
    pub name: Option<String>,
    pub image_url: Option<String>,
    /// Shown to the app and to the user themself only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_login_at: Option<String>,
    pub last_seen_at: Option<String>,
}

impl UserDto {
    pub fn new(u: &User, show_email: bool) -> Self {
        UserDto {
            id: u.id.0.clone(),
            name: u.name.clone(),
            image_url: u.image_url.clone(),
            email: if show_email { u.email.clone() } else { None },
            created_at: u.created_at.to_rfc3339(),
            updated_at: u.updated_at.to_rfc3339(),
            last_login_at: u.last_login_at.map(|t| t.to_rfc3339()),
            last_seen_at: u.last_seen_at.map(|t| t.to_rfc3339()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDto {
    pub token: String,
    pub user_id: String,
    pub expires_at: String,
}
