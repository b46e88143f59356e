//! The verifier: one per server, shared by every app and request. It owns the HTTP client
//! and the caches of discovery documents and key sets; `verify` runs every check of an ID
//! token in a fixed order (header, key, signature, then claims), so nothing in the claims of
//! a forged token is ever looked at.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::cache::Cache;
use crate::config::{FetchPolicy, ProviderConfig, SigningAlgorithm};
use crate::error::OidcError;
use crate::fetch::Http;
use crate::identity::VerifiedIdentity;
use crate::keys::{Discovery, KeySet};

/// The longest ID token looked at; real ones are 1–2 KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The verifier's tunables; [`Default`] gives the documented production values. Tests
/// shorten the cache bounds and the cool-down to reach the refetch paths without waiting.
#[derive(Debug, Clone)]
pub struct VerifierOptions {
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Bounds on how long a fetched document is kept, whatever `Cache-Control` says.
    pub min_cache_ttl: Duration,
    pub max_cache_ttl: Duration,
    /// How long a document without `Cache-Control: max-age` is kept (then clamped).
    pub default_cache_ttl: Duration,
    /// At most one fetch attempt per URL within this time.
    pub refetch_cooldown: Duration,
    /// Deadline of one whole fetch (resolve, connect, TLS, request, body).
    pub http_timeout: Duration,
    /// The largest discovery document or key set accepted.
    pub max_response_bytes: usize,
    /// Certificates (DER) trusted besides the system's roots: a provider behind a private
    /// certificate authority (an in-house Keycloak), or the tests' own.
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// Which addresses may be fetched from; by default none on loopback or private networks,
    /// and no plain http at all.
    pub fetch_policy: FetchPolicy,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        VerifierOptions {
            leeway: Duration::from_secs(60),
            min_cache_ttl: Duration::from_secs(5 * 60),
            max_cache_ttl: Duration::from_secs(24 * 3600),
            default_cache_ttl: Duration::from_secs(3600),
            refetch_cooldown: Duration::from_secs(60),
            http_timeout: Duration::from_secs(5),
            max_response_bytes: 256 * 1024,
            extra_root_certificates: Vec::new(),
            fetch_policy: FetchPolicy::default(),
        }
    }
}

/// Verifies ID tokens against providers' settings. Cheap to share (`Arc<Verifier>`): its
/// caches are keyed by URL, so two apps using Google share Google's keys.
pub struct Verifier {
    opts: VerifierOptions,
    http: Arc<Http>,
    discovery: Cache<Discovery>,
    keys: Cache<KeySet>,
}

/// The verifier could not be built (a TLS setting or an extra root certificate refused by
/// rustls).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS for identity providers: {0}")]
pub struct SetupError(#[from] rustls::Error);

impl Verifier {
    pub fn new(opts: VerifierOptions) -> Result<Verifier, SetupError> {
        Ok(Verifier {
            http: Arc::new(Http::new(
                opts.http_timeout,
                opts.max_response_bytes,
                &opts.extra_root_certificates,
                opts.fetch_policy,
            )?),
            discovery: Cache::new(opts.refetch_cooldown),
            keys: Cache::new(opts.refetch_cooldown),
            opts,
        })
    }

    /// The policy this verifier fetches under, for checking settings when they are written
    /// ([`ProviderConfig::check_fetch_policy`]).
    pub fn fetch_policy(&self) -> FetchPolicy {
        self.opts.fetch_policy
    }

    /// Verifies `id_token` for `provider`. When `nonce` is given, the token must carry
    /// exactly that nonce. See the crate documentation for every rule and error code.
    pub async fn verify(
        &self,
        provider: &ProviderConfig,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<VerifiedIdentity, OidcError> {
        if !provider.enabled {
            return Err(OidcError::ProviderDisabled);
        }
        let token = Compact::split(id_token)?;
        let header: JoseHeader = Compact::decode_part(token.header, Part::Header)?;
        if header.crit.is_some() {
            return Err(OidcError::MalformedToken("critical header extensions"));
        }
        // An access token of the same issuer (RFC 9068) must not pass for an ID token.
        if header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        }) {
            return Err(OidcError::MalformedToken(
                "an access token, not an ID token",
            ));
        }
        let alg = SigningAlgorithm::from_name(&header.alg)
            .filter(|a| provider.algorithms.contains(a))
            .ok_or(OidcError::AlgorithmNotAllowed)?;

        let jwks_uri = self.jwks_uri(provider).await?;
        let kid = header.kid.as_deref();
        let set = self
            .keys
            .get(
                &jwks_uri,
                |set| kid.is_some_and(|k| !set.has_kid(k)),
                || fetch_keys(self.http.clone(), jwks_uri.clone(), self.ttl_bounds()),
            )
            .await
            .map_err(|cause| OidcError::ProviderUnavailable { cause })?;
        let key = set.find(kid, alg).ok_or(OidcError::UnknownKey)?;
        let signed = jsonwebtoken::crypto::verify(
            token.signature,
            token.signing_input.as_bytes(),
            &key.decoding,
            alg.to_jwt(),
        )
        // An undecodable or wrongly sized signature is as bad as a wrong one.
        .unwrap_or(false);
        if !signed {
            return Err(OidcError::BadSignature);
        }

        let claims: Claims = Compact::decode_part(token.payload, Part::Payload)?;
        check_claims(provider, claims, nonce, now_secs(), self.opts.leeway)
    }

    async fn jwks_uri(&self, provider: &ProviderConfig) -> Result<String, OidcError> {
        if let Some(uri) = &provider.jwks_uri {
            return Ok(uri.clone());
        }
        let issuer = provider.issuer.as_str();
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        // Keyed by issuer: the document is checked against the issuer it was read for.
        let (http, bounds, owned_issuer) =
            (self.http.clone(), self.ttl_bounds(), issuer.to_owned());
        let doc = self
            .discovery
            .get(
                issuer,
                |_| false,
                || async move {
                    let fetched = http.get(&url).await.map_err(|e| e.to_string())?;
                    let doc = Discovery::parse(&fetched.body, &owned_issuer)?;
                    Ok((doc, bounds.ttl(fetched.max_age)))
                },
            )
            .await
            .map_err(|cause| OidcError::ProviderUnavailable { cause })?;
        Ok(doc.jwks_uri.clone())
    }

    fn ttl_bounds(&self) -> TtlBounds {
        let o = &self.opts;
        TtlBounds {
            min: o.min_cache_ttl,
            max: o.max_cache_ttl.max(o.min_cache_ttl),
            default: o.default_cache_ttl,
        }
    }
}

/// How long a fetched document is kept: its `max-age` (or the default), clamped.
#[derive(Clone, Copy)]
struct TtlBounds {
    min: Duration,
    max: Duration,
    default: Duration,
}

impl TtlBounds {
    fn ttl(self, max_age: Option<Duration>) -> Duration {
        max_age.unwrap_or(self.default).clamp(self.min, self.max)
    }
}

async fn fetch_keys(
    http: Arc<Http>,
    url: String,
    bounds: TtlBounds,
) -> Result<(KeySet, Duration), String> {
    let fetched = http.get(&url).await.map_err(|e| e.to_string())?;
    let set = KeySet::parse(&fetched.body)?;
    Ok((set, bounds.ttl(fetched.max_age)))
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A token in JWS compact form, split but not yet trusted.
struct Compact<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    signing_input: &'a str,
}

impl<'a> Compact<'a> {
    fn split(token: &'a str) -> Result<Compact<'a>, OidcError> {
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(OidcError::MalformedToken("empty or too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OidcError::MalformedToken("not three dot-separated parts"));
        };
        Ok(Compact {
            header,
            payload,
            signature,
            signing_input: &token[..header.len() + 1 + payload.len()],
        })
    }

    /// Decodes the header or the payload (`what`) as base64url JSON.
    fn decode_part<T: DeserializeOwned>(part: &str, what: Part) -> Result<T, OidcError> {
        let (not_base64, not_json) = match what {
            Part::Header => ("header is not base64url", "header is not a JOSE header"),
            Part::Payload => ("payload is not base64url", "payload is not a claims object"),
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| OidcError::MalformedToken(not_base64))?;
        serde_json::from_slice(&bytes).map_err(|_| OidcError::MalformedToken(not_json))
    }
}

enum Part {
    Header,
    Payload,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// `email_verified` is a boolean, but some providers send the string "true".
#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    azp: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<Flag>,
    hd: Option<String>,
    name: Option<String>,
    picture: Option<String>,
}

/// The checks on the claims of a token whose signature is good.
fn check_claims(
    p: &ProviderConfig,
    c: Claims,
    nonce: Option<&str>,
    now: f64,
    leeway: Duration,
) -> Result<VerifiedIdentity, OidcError> {
    let leeway = leeway.as_secs_f64();
    if !c.iss.as_deref().is_some_and(|iss| p.issuer_matches(iss)) {
        return Err(OidcError::WrongIssuer);
    }
    let audiences: Vec<String> = match c.aud {
        Some(Audience::One(a)) => vec![a],
        Some(Audience::Many(list)) => list,
        None => Vec::new(),
    };
    if !audiences.iter().any(|a| p.client_ids.contains(a)) {
        return Err(OidcError::WrongAudience);
    }
    // OpenID Connect Core 3.1.3.7: with several audiences the authorized party must be
    // present and be this app. With one audience it is not checked: Google puts the Android
    // client id there while `aud` is the server's.
    if audiences.len() > 1 && !c.azp.as_ref().is_some_and(|azp| p.client_ids.contains(azp)) {
        return Err(OidcError::AzpMismatch);
    }
    let exp = c.exp.ok_or(OidcError::MalformedToken("no exp"))?;
    if now > exp + leeway {
        return Err(OidcError::TokenExpired);
    }
    if c.nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err(OidcError::TokenNotYetValid);
    }
    let iat = c.iat.ok_or(OidcError::MalformedToken("no iat"))?;
    if iat > now + leeway {
        return Err(OidcError::IssuedInFuture);
    }
    let subject = c
        .sub
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or(OidcError::MalformedToken("no usable sub"))?;
    if let Some(expected) = nonce
        && c.nonce.as_deref() != Some(expected)
    {
        return Err(OidcError::NonceMismatch);
    }
    if !p.hosted_domains.is_empty() {
        let hd = c.hd.as_deref().unwrap_or("");
        if !p.hosted_domains.iter().any(|d| d.eq_ignore_ascii_case(hd)) {
            return Err(OidcError::HostedDomainNotAllowed);
        }
    }
    let verified = match c.email_verified {
        Some(Flag::Bool(b)) => b,
        Some(Flag::Text(t)) => t.eq_ignore_ascii_case("true"),
        None => false,
    };
    let given = c.email.filter(|e| !e.is_empty() && e.contains('@'));
    let unverified = given.is_some() && p.require_email_verified && !verified;
    // An unverified address is dropped, never used; it refuses the sign-in only when an
    // allow-list needs the address.
    let email = if unverified { None } else { given };
    if !p.allowed_emails.is_empty() {
        match &email {
            None if unverified => return Err(OidcError::EmailNotVerified),
            Some(e) if email_allowed(&p.allowed_emails, e) => {}
            _ => return Err(OidcError::EmailNotAllowed),
        }
    }
    let picture = c
        .picture
        .filter(|u| u.starts_with("https://") && u.len() <= 2048);
    Ok(VerifiedIdentity {
        provider: p.id.clone(),
        issuer: p.issuer.clone(),
        subject,
        email,
        name: c.name.filter(|n| !n.trim().is_empty()),
        picture,
    })
}

fn email_allowed(list: &[String], email: &str) -> bool {
    let Some((_, domain)) = email.rsplit_once('@') else {
        return false;
    };
    list.iter().any(|entry| match entry.strip_prefix('@') {
        Some(d) => d.eq_ignore_ascii_case(domain),
        None => entry.eq_ignore_ascii_case(email),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(extra: serde_json::Value) -> Claims {
        let mut base = serde_json::json!({
            "iss": "https://id.example", "aud": "app", "sub": "42",
            "exp": 2000.0, "iat": 1000.0,
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).expect("claims parse")
    }

    fn provider() -> ProviderConfig {
        serde_json::from_value(serde_json::json!({
            "id": "p", "issuer": "https://id.example", "client_ids": ["app", "app-android"],
        }))
        .expect("provider parses")
    }

    fn check(
        p: &ProviderConfig,
        extra: serde_json::Value,
        now: f64,
    ) -> Result<VerifiedIdentity, OidcError> {
        check_claims(p, claims(extra), None, now, Duration::from_secs(60))
    }

    #[test]
    fn the_leeway_is_sixty_seconds_each_way() {
        let p = provider();
        assert!(check(&p, json!({}), 2059.0).is_ok());
        assert_eq!(check(&p, json!({}), 2061.0), Err(OidcError::TokenExpired));
        assert!(check(&p, json!({"nbf": 1559.0}), 1500.0).is_ok());
        assert_eq!(
            check(&p, json!({"nbf": 1561.0}), 1500.0),
            Err(OidcError::TokenNotYetValid)
        );
        assert!(check(&p, json!({"iat": 1559.0}), 1500.0).is_ok());
        assert_eq!(
            check(&p, json!({"iat": 1561.0}), 1500.0),
            Err(OidcError::IssuedInFuture)
        );
    }

    #[test]
    fn emails_are_used_only_when_verified_and_allow_lists_match_addresses_or_domains() {
        let mut p = provider();
        let id = check(
            &p,
            json!({"email": "a@x.example", "email_verified": "true"}),
            1500.0,
        );
        assert_eq!(id.map(|i| i.email), Ok(Some("a@x.example".into())));
        let id = check(&p, json!({"email": "a@x.example"}), 1500.0);
        assert_eq!(id.map(|i| i.email), Ok(None));
        p.allowed_emails = vec!["@X.example".into(), "boss@y.example".into()];
        let ok = json!({"email": "a@x.example", "email_verified": true});
        assert!(check(&p, ok, 1500.0).is_ok());
        let ok = json!({"email": "Boss@y.example", "email_verified": true});
        assert!(check(&p, ok, 1500.0).is_ok());
        let other = json!({"email": "a@y.example", "email_verified": true});
        assert_eq!(check(&p, other, 1500.0), Err(OidcError::EmailNotAllowed));
        let lookalike = json!({"email": "a@evilx.example", "email_verified": true});
        assert_eq!(
            check(&p, lookalike, 1500.0),
            Err(OidcError::EmailNotAllowed)
        );
        assert_eq!(
            check(&p, json!({}), 1500.0),
            Err(OidcError::EmailNotAllowed)
        );
        p.require_email_verified = false;
        let id = check(&p, json!({"email": "a@x.example"}), 1500.0);
        assert_eq!(id.map(|i| i.email), Ok(Some("a@x.example".into())));
    }

    #[test]
    fn hosted_domain_and_azp() {
        let mut p = provider();
        let two = json!({"aud": ["app", "other"]});
        assert_eq!(check(&p, two, 1500.0), Err(OidcError::AzpMismatch));
        let two = json!({"aud": ["app", "other"], "azp": "app-android"});
        assert!(check(&p, two, 1500.0).is_ok());
        let one = json!({"azp": "someone-else"});
        assert!(
            check(&p, one, 1500.0).is_ok(),
            "azp is not checked with one audience"
        );
        p.hosted_domains = vec!["corp.example".into()];
        assert_eq!(
            check(&p, json!({}), 1500.0),
            Err(OidcError::HostedDomainNotAllowed)
        );
        assert!(check(&p, json!({"hd": "Corp.example"}), 1500.0).is_ok());
    }
}
