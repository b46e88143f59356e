//! OpenID Connect ID-token verification for Confab's "sign in with Google (or any OpenID
//! Connect provider)" (issue 14). This crate owns the engine only: an app's provider
//! settings ([`ProviderConfig`]), fetching and caching the providers' keys, and every check
//! of a token ([`Verifier::verify`]), ending in a [`VerifiedIdentity`]. Storing settings and
//! identity links, and the `POST /v1/auth/oidc` route, live elsewhere; they share one
//! `Arc<Verifier>` per server.
//!
//! # Checks, in order, and their error codes
//! A signature is checked before any claim is read. Every refusal is a 401 with the code of
//! [`OidcError::code`], except `oidc_provider_unavailable` (503, see below).
//!
//! | check | code |
//! |---|---|
//! | provider `enabled` | `oidc_provider_disabled` |
//! | three base64url parts, JSON header and payload, ≤ 16 KiB, no `crit` header, `typ` not an access token's (`at+jwt`) | `oidc_malformed_token` |
//! | header `alg` in the provider's list (`none` and HMAC can never be in it) | `oidc_algorithm_not_allowed` |
//! | a key of the set with the token's `kid` that fits `alg` (kty, curve, the key's own `alg`); without `kid`, the only fitting key | `oidc_unknown_key` |
//! | signature | `oidc_bad_signature` |
//! | `iss` exactly the issuer (or one of its listed aliases) | `oidc_wrong_issuer` |
//! | `aud` contains one of the client ids | `oidc_wrong_audience` |
//! | when `aud` has several values: `azp` present and one of the client ids | `oidc_azp_mismatch` |
//! | `exp` present and now ≤ exp + leeway | `oidc_token_expired` |
//! | `nbf` absent or ≤ now + leeway | `oidc_token_not_yet_valid` |
//! | `iat` present and ≤ now + leeway | `oidc_issued_in_future` |
//! | `sub` present, 1–255 bytes | `oidc_malformed_token` |
//! | when a nonce is given: the token's `nonce` equals it | `oidc_nonce_mismatch` |
//! | when `hosted_domains` is set: `hd` is one of them | `oidc_hosted_domain_not_allowed` |
//! | when `allowed_emails` is set: a usable e-mail that is listed | `oidc_email_not_verified` / `oidc_email_not_allowed` |
//!
//! The leeway is 60 seconds ([`VerifierOptions::leeway`]). A nonce is checked only when the
//! caller gives one (a client that asked the provider for a nonce must pass it); a token with
//! a nonce the caller did not give is accepted.
//!
//! # E-mail
//! An e-mail counts only when `email_verified` is `true` (boolean, or the string "true"),
//! unless the provider is set with `require_email_verified: false`. An unverified e-mail is
//! *dropped*: the person still signs in, with no e-mail in the identity. It refuses the
//! sign-in (`oidc_email_not_verified`) only when the provider has an e-mail allow-list, which
//! can only be satisfied by a usable address. People are never matched by e-mail.
//!
//! # Keys
//! * The key set URL is the provider's `jwks_uri`, or the one its discovery document
//!   (`{issuer}/.well-known/openid-configuration`) names; that document must state the same
//!   issuer. Only https is fetched, plain http only from loopback addresses, and only when
//!   the [`FetchPolicy`] allows loopback (tests); loopback, private and link-local
//!   addresses are refused unless that policy allows them, checked on the literal host
//!   when settings are written and on every resolved address at fetch time; no
//!   redirects, no proxy, a 5 s deadline for the whole exchange, at most 256 KiB.
//! * Discovery documents and key sets are cached per URL for `Cache-Control: max-age`
//!   (1 hour without it), clamped to 5 minutes .. 24 hours.
//! * A fetch happens when nothing is cached, when the cached copy expired, or when a token
//!   names a `kid` the cached set lacks — but **at most one attempt per URL per cool-down**
//!   (60 s), and callers arriving while an attempt is in flight wait for it and share its
//!   result. A flood of tokens with random `kid`s therefore costs the provider at most one
//!   request a minute, and each such token is refused with `oidc_unknown_key`.
//! * When a refresh fails, the keys already cached keep working (stale, until a later
//!   attempt succeeds). When nothing was ever fetched and the provider cannot be reached,
//!   the answer is `oidc_provider_unavailable`, **HTTP 503**: the token may be fine, so the
//!   client may retry; the cause is in [`OidcError::ProviderUnavailable`] for the log only.
//! * Only RSA (RS*/PS*) and EC P-256/P-384 signing keys are kept from a set; `oct` (HMAC),
//!   encryption and unknown keys are dropped, so a public key can never become an HMAC
//!   secret even if a provider published one.
//! * TLS is rustls with the `ring` provider and the system's root certificates (plus
//!   [`VerifierOptions::extra_root_certificates`], for a provider behind a private
//!   authority), passed to this crate's own client: no process-wide crypto provider is
//!   installed. The client is hyper, not reqwest: turning on reqwest's rustls support here
//!   would turn it on for every crate of the workspace (Cargo unifies features), where
//!   `reqwest::Client::new()` then panics for want of an installed provider.
//!
//! # User ids
//! A person is `(provider, sub)`. A new person's Confab user id is [`user_id_for`]:
//! `{provider id}:{32 hex}` — the first 128 bits of SHA-256 over a version tag, the issuer
//! and the subject, each length-prefixed. Deterministic, within the user-id charset, at most
//! 65 characters, and revealing neither issuer nor subject.

mod cache;
mod config;
mod error;
mod fetch;
mod identity;
mod keys;
mod verify;

/// A fake provider on loopback and the tests' signing keys, for this crate's tests and the
/// server's.
#[cfg(feature = "test-util")]
pub mod test_util;

pub use config::{
    ConfigError, FetchPolicy, GOOGLE_ISSUER, GOOGLE_JWKS_URI, ProviderConfig, SigningAlgorithm,
};
pub use error::OidcError;
pub use identity::{VerifiedIdentity, user_id_for};
pub use verify::{MAX_TOKEN_BYTES, SetupError, Verifier, VerifierOptions};
