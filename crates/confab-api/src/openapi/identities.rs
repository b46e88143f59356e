//! The OpenAPI rows of identity providers, identity links and the OpenID Connect sign-in
//! (issue 14); [`super::routes`] appends them.

use super::Caller::{App, None as NoCredential};
use super::{Route, r};
use crate::dto::{
    IdentityLinkDto, IdentityProviderDto, IdentityProviderListDto, IdentityProviderReq,
    LinkIdentityReq, OidcSignInReq,
};
use utoipa::openapi::ComponentsBuilder;
use utoipa::openapi::path::HttpMethod::{Delete as D, Get as G, Post as P, Put as PU};

pub(super) fn routes() -> Vec<Route> {
    vec![
        r(
            G,
            "/v1/app/identity-providers",
            "The app's identity providers",
            App,
            None,
            "200",
            Some("IdentityProviderListDto"),
            &[],
        ),
        r(
            PU,
            "/v1/app/identity-providers/{id}",
            "Create (201) or replace (200) an identity provider: a preset (`google`) or the \
             settings in full; 422 `invalid_identity_provider` names the bad field (an HMAC \
             algorithm, a URL that is not https or on a loopback or private address), 409 \
             `identity_provider_issuer_changed`",
            App,
            Some("IdentityProviderReq"),
            "201 200",
            Some("IdentityProviderDto"),
            &[],
        ),
        r(
            G,
            "/v1/app/identity-providers/{id}",
            "One identity provider",
            App,
            None,
            "200",
            Some("IdentityProviderDto"),
            &[],
        ),
        r(
            D,
            "/v1/app/identity-providers/{id}",
            "Delete an identity provider and every identity linked through it (204)",
            App,
            None,
            "204",
            None,
            &[],
        ),
        r(
            PU,
            "/v1/app/users/{user_id}/identities/{provider}",
            "Link a person at a provider (the `sub` of their ID tokens) to an existing user; \
             409 `identity_already_linked` when linked to another user",
            App,
            Some("LinkIdentityReq"),
            "200",
            Some("IdentityLinkDto"),
            &[],
        ),
        r(
            D,
            "/v1/app/users/{user_id}/identities/{provider}",
            "Unlink the user's identity `subject` at a provider (204)",
            App,
            None,
            "204",
            None,
            &["subject"],
        ),
        r(
            P,
            "/v1/auth/oidc",
            "Exchange an ID token from one of the app's identity providers for a user token \
             (the same as minting one through the app's backend). 401 with a distinct \
             `oidc_*` code for each refusal (`oidc_unknown_provider` for an unknown app or \
             provider alike, `oidc_token_expired`, `oidc_wrong_audience` ...); 503 \
             `oidc_provider_unavailable` when the provider's keys cannot be fetched and none \
             are cached. Body at most 32 KiB; metered per client address",
            NoCredential,
            Some("OidcSignInReq"),
            "200",
            Some("TokenDto"),
            &[],
        ),
    ]
}

/// The schemas these rows name.
pub(super) fn schemas(components: ComponentsBuilder) -> ComponentsBuilder {
    components
        .schema_from::<IdentityProviderDto>()
        .schema_from::<IdentityProviderListDto>()
        .schema_from::<IdentityProviderReq>()
        .schema_from::<LinkIdentityReq>()
        .schema_from::<IdentityLinkDto>()
        .schema_from::<OidcSignInReq>()
}
