//! Why a token was refused: one variant, one stable code and one HTTP status per reason.

/// A refused ID token. Every variant but [`OidcError::ProviderUnavailable`] is the client's
/// problem (401); that one is the provider's (503), and its cause is for the log only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    #[error("this identity provider is disabled")]
    ProviderDisabled,
    #[error("the ID token is malformed: {0}")]
    MalformedToken(&'static str),
    #[error("the token's signing algorithm is not accepted for this provider")]
    AlgorithmNotAllowed,
    #[error("no key of the provider has the token's key id")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token was issued for another client")]
    WrongAudience,
    #[error("the token's authorized party (azp) is missing or not an accepted client")]
    AzpMismatch,
    #[error("the token has expired")]
    TokenExpired,
    #[error("the token is not valid yet (nbf)")]
    TokenNotYetValid,
    #[error("the token's issue time (iat) is in the future")]
    IssuedInFuture,
    #[error("the token's nonce does not match")]
    NonceMismatch,
    #[error("the e-mail address is not verified by the provider")]
    EmailNotVerified,
    #[error("this e-mail address may not sign in")]
    EmailNotAllowed,
    #[error("this hosted domain may not sign in")]
    HostedDomainNotAllowed,
    /// The provider's keys (or discovery document) could not be fetched and none are cached.
    #[error("the identity provider cannot be reached; retry later")]
    ProviderUnavailable {
        /// What went wrong, for the log; never sent to a client.
        cause: String,
    },
}

impl OidcError {
    /// The stable error code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ProviderDisabled => "oidc_provider_disabled",
            Self::MalformedToken(_) => "oidc_malformed_token",
            Self::AlgorithmNotAllowed => "oidc_algorithm_not_allowed",
            Self::UnknownKey => "oidc_unknown_key",
            Self::BadSignature => "oidc_bad_signature",
            Self::WrongIssuer => "oidc_wrong_issuer",
            Self::WrongAudience => "oidc_wrong_audience",
            Self::AzpMismatch => "oidc_azp_mismatch",
            Self::TokenExpired => "oidc_token_expired",
            Self::TokenNotYetValid => "oidc_token_not_yet_valid",
            Self::IssuedInFuture => "oidc_issued_in_future",
            Self::NonceMismatch => "oidc_nonce_mismatch",
            Self::EmailNotVerified => "oidc_email_not_verified",
            Self::EmailNotAllowed => "oidc_email_not_allowed",
            Self::HostedDomainNotAllowed => "oidc_hosted_domain_not_allowed",
            Self::ProviderUnavailable { .. } => "oidc_provider_unavailable",
        }
    }

    /// The HTTP status: 503 when the provider cannot be reached, else 401.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::ProviderUnavailable { .. } => 503,
            _ => 401,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_only_unavailability_is_a_503() {
        let all = [
            OidcError::ProviderDisabled,
            OidcError::MalformedToken("x"),
            OidcError::AlgorithmNotAllowed,
            OidcError::UnknownKey,
            OidcError::BadSignature,
            OidcError::WrongIssuer,
            OidcError::WrongAudience,
            OidcError::AzpMismatch,
            OidcError::TokenExpired,
            OidcError::TokenNotYetValid,
            OidcError::IssuedInFuture,
            OidcError::NonceMismatch,
            OidcError::EmailNotVerified,
            OidcError::EmailNotAllowed,
            OidcError::HostedDomainNotAllowed,
            OidcError::ProviderUnavailable { cause: "x".into() },
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(OidcError::code).collect();
        assert_eq!(codes.len(), all.len());
        for e in &all {
            let unavailable = matches!(e, OidcError::ProviderUnavailable { .. });
            assert_eq!(e.http_status(), if unavailable { 503 } else { 401 });
        }
        let shown = OidcError::ProviderUnavailable {
            cause: "connect 10.1.2.3 refused".into(),
        }
        .to_string();
        assert!(
            !shown.contains("10.1.2.3"),
            "the cause stays out of messages"
        );
    }
}
