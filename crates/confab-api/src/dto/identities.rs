//! Identity providers, identity links and the OpenID Connect sign-in on the wire (issue 14).

use confab_core::model::IdentityProvider;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An app's settings for one identity provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityProviderDto {
    pub id: String,
    /// Every setting, defaults filled in (`issuer`, `client_ids`, `algorithms`, `jwks_uri`,
    /// `hosted_domains`, `allowed_emails`, `require_email_verified`, `enabled` ...).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

impl IdentityProviderDto {
    pub fn new(p: &IdentityProvider) -> Self {
        IdentityProviderDto {
            id: p.id.clone(),
            settings: serde_json::from_str(&p.config).unwrap_or(serde_json::Value::Null),
            created_at: p.created_at.to_rfc3339(),
            updated_at: p.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityProviderListDto {
    pub identity_providers: Vec<IdentityProviderDto>,
}

/// The settings of a provider: `{"preset": "google", "client_ids": [...]}`, or in full
/// (`issuer`, `client_ids`, and optionally `algorithms` (RS256 and ES256 by default; never an
/// HMAC algorithm), `jwks_uri` (else discovery), `issuer_aliases`, `hosted_domains`,
/// `allowed_emails`, `require_email_verified` (default true), `enabled` (default true)).
/// With a preset, any other field overrides the preset's.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IdentityProviderReq {
    /// `google`: Google's issuer (both spellings), key set URL and RS256.
    pub preset: Option<String>,
    pub issuer: Option<String>,
    pub client_ids: Vec<String>,
    pub algorithms: Option<Vec<String>>,
    pub jwks_uri: Option<String>,
    pub issuer_aliases: Option<Vec<String>>,
    pub hosted_domains: Option<Vec<String>>,
    pub allowed_emails: Option<Vec<String>>,
    pub require_email_verified: Option<bool>,
    pub enabled: Option<bool>,
}

/// Links a person at a provider to an existing user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkIdentityReq {
    /// The provider's id of the person: the `sub` of their ID tokens.
    pub subject: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityLinkDto {
    pub provider: String,
    pub subject: String,
    pub user_id: String,
}

/// A client's exchange of an ID token for a Confab user token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcSignInReq {
    /// The app's public id (`public_id` of the app object).
    pub app: String,
    /// The provider's id in the app's settings (`google`).
    pub provider: String,
    /// The ID token the provider gave the client (a JWT, at most 16 KiB).
    pub id_token: String,
    /// The nonce the client sent the provider, if it sent one: the token must carry it.
    pub nonce: Option<String>,
}
