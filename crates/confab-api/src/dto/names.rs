//! The words some request fields accept, as schemas of the OpenAPI document only: the fields
//! themselves are strings that the handlers parse, so a wrong word gets the API's own error
//! rather than a deserializer's.

use serde::Serialize;
use utoipa::ToSchema;

/// Who may find a group room: anyone in the app, or only those invited.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisibilityName {
    Public,
    Private,
}

/// A role an admin can give (the owner's role is not given, it is the creator's).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Admin,
    Member,
}

/// An answer to a meetup: `yes`, `no`, `maybe`, or `none` to withdraw one.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RsvpName {
    Yes,
    No,
    Maybe,
    None,
}

/// What a poll decides: `generic`, `reschedule` (its choices are RFC 3339 times) or `relocate`
/// (its choices are places).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PollKindName {
    Generic,
    Reschedule,
    Relocate,
}

/// When a poll's tallies are visible.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PollResultsName {
    Disclosed,
    Undisclosed,
}

/// Declares a schema-only string type: a field names it (`value_type = X, inline`) to show the
/// pattern (and length) its handler enforces.
macro_rules! text_schema {
    ($(#[$doc:meta])* $name:ident, $pattern:expr, $max:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some($pattern))
                    .max_length($max)
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

/// No character of Unicode's control category, and one that is not white space.
const NAME_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*\
    [^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// The user ids an app chooses.
pub const USER_ID_PATTERN: &str = "^[A-Za-z0-9_.@+:-]{1,128}$";

text_schema!(
    /// A name, a place or a question: not blank, no control characters (`validate::name`).
    NameText,
    NAME_PATTERN,
    None
);
text_schema!(
    /// A user id an app chose (`validate::user_id`).
    UserIdText,
    USER_ID_PATTERN,
    None
);
text_schema!(
    /// A URL or an e-mail address: at most 2048 characters, no control characters
    /// (`validate::short_field`).
    ShortText,
    "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
    Some(2048)
);
