//! Request bodies of the REST API. Unknown fields are refused.

use super::{NameText, RoleName, ShortText, UserIdText, VisibilityName};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAppReq {
    #[schema(value_type = NameText, inline)]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertUserReq {
    #[schema(value_type = Option<NameText>, inline)]
    pub name: Option<String>,
    #[schema(value_type = Option<ShortText>, inline)]
    pub image_url: Option<String>,
    #[schema(value_type = Option<ShortText>, inline)]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct MintTokenReq {
    /// The token's lifetime: at most the server's `max_token_ttl` (30 days unless configured);
    /// the server's `default_token_ttl` when left out.
    #[schema(minimum = 1)]
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeReq {
    #[schema(value_type = Option<NameText>, inline)]
    pub name: Option<String>,
    #[schema(value_type = Option<ShortText>, inline)]
    pub image_url: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CreateRoomReq {
    Direct {
        #[schema(value_type = UserIdText, inline)]
        with: String,
    },
    Group {
        #[schema(value_type = Option<NameText>, inline)]
        name: Option<String>,
        #[schema(value_type = Option<ShortText>, inline)]
        image_url: Option<String>,
        #[schema(value_type = Option<VisibilityName>, inline)]
        visibility: Option<confab_core::model::Visibility>,
        #[serde(default)]
        #[schema(value_type = Vec<UserIdText>, inline)]
        members: Vec<String>,
        /// Lower-case letters, digits and `_ . -`, not only dots.
        #[schema(pattern = "^(?!\\.+$)[a-z0-9_.-]{1,64}$")]
        alias: Option<String>,
    },
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoomReq {
    #[schema(value_type = Option<NameText>, inline)]
    pub name: Option<String>,
    #[schema(value_type = Option<ShortText>, inline)]
    pub image_url: Option<String>,
    #[schema(value_type = Option<VisibilityName>, inline)]
    pub visibility: Option<confab_core::model::Visibility>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteReq {
    #[schema(value_type = UserIdText, inline)]
    pub user_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoleReq {
    #[schema(value_type = RoleName, inline)]
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendReq {
    /// Not blank; at most the server's `max_text_chars` characters; no NUL.
    #[schema(pattern = "\\S")]
    pub text: String,
    /// The seq of the message this one replies to (a thread).
    #[schema(minimum = 1)]
    pub reply_to: Option<i64>,
    /// The sender's own id for this message: a retry with it returns the same item.
    #[schema(pattern = "^[!-~]{1,128}$")]
    pub client_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditReq {
    #[schema(pattern = "\\S")]
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadReq {
    #[schema(minimum = 0)]
    pub seq: i64,
}
