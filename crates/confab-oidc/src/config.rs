//! One app's settings for one identity provider: what an ID token must look like to be
//! accepted, and where the provider's keys are. Validated when written, so a bad setting is
//! refused with the name of the field rather than failing every sign-in later.

use serde::{Deserialize, Serialize};
use url::Url;

/// Issuer of Google ID tokens, as Google's discovery document states it.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// Google's key set (JWKS) URL.
pub const GOOGLE_JWKS_URI: &str = "https://www.googleapis.com/oauth2/v3/certs";

const MAX_CLIENT_IDS: usize = 32;
const MAX_LIST: usize = 256;
const MAX_URL_LEN: usize = 2048;
const MAX_VALUE_LEN: usize = 512;

/// An asymmetric signing algorithm an ID token may use. HMAC algorithms and `none` have no
/// variant: they can never be configured, so a provider's public key can never be used as an
/// HMAC secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SigningAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 8] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
    ];

    /// The name used in a JOSE header (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
        }
    }

    /// The algorithm named `name` in a JOSE header, if it is one that may be configured.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Self::RS256 => A::RS256,
            Self::RS384 => A::RS384,
            Self::RS512 => A::RS512,
            Self::PS256 => A::PS256,
            Self::PS384 => A::PS384,
            Self::PS512 => A::PS512,
            Self::ES256 => A::ES256,
            Self::ES384 => A::ES384,
        }
    }
}

impl TryFrom<String> for SigningAlgorithm {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        Self::from_name(&name).ok_or_else(|| {
            format!(
                "signing algorithm {name:?} cannot be configured: only asymmetric ones are \
                 (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384), never HMAC or none"
            )
        })
    }
}

impl From<SigningAlgorithm> for String {
    fn from(a: SigningAlgorithm) -> String {
        a.as_str().to_owned()
    }
}

fn default_algorithms() -> Vec<SigningAlgorithm> {
    vec![SigningAlgorithm::RS256, SigningAlgorithm::ES256]
}

fn yes() -> bool {
    true
}

/// One identity provider of one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The app's name for the provider (`google`, `corp-sso`): 1 to 32 of `a-z 0-9 _ -`. It
    /// starts the user id of a person who signs in through it (see [`crate::user_id_for`]).
    pub id: String,
    /// The `iss` every token must carry, compared exactly (no trailing-slash tolerance).
    pub issuer: String,
    /// Other exact `iss` values of the same issuer. Google still signs some tokens with
    /// `accounts.google.com` (no scheme); its preset lists that here. Never used to fetch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuer_aliases: Vec<String>,
    /// The OAuth client ids of the app (web, Android, iOS ...): `aud` must contain one.
    pub client_ids: Vec<String>,
    /// Accepted `alg` values; RS256 and ES256 when not given.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<SigningAlgorithm>,
    /// The key set URL. Without it, `{issuer}/.well-known/openid-configuration` is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// When not empty, the token's `hd` (Google Workspace domain) must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosted_domains: Vec<String>,
    /// When not empty, the token's e-mail must be one of these: full addresses, or `@domain`
    /// for every address of a domain. Compared without regard to case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_emails: Vec<String>,
    /// Whether an e-mail counts only when `email_verified` is true (default yes).
    #[serde(default = "yes")]
    pub require_email_verified: bool,
    /// A disabled provider refuses every token (default enabled).
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl ProviderConfig {
    /// The `google` preset: Google's issuer (both spellings) and key set URL, for the app's
    /// client ids (one per platform: web, Android, iOS).
    pub fn google(client_ids: Vec<String>) -> ProviderConfig {
        ProviderConfig {
            id: "google".to_owned(),
            issuer: GOOGLE_ISSUER.to_owned(),
            issuer_aliases: vec!["accounts.google.com".to_owned()],
            client_ids,
            // Google signs ID tokens with RS256 only.
            algorithms: vec![SigningAlgorithm::RS256],
            jwks_uri: Some(GOOGLE_JWKS_URI.to_owned()),
            hosted_domains: Vec::new(),
            allowed_emails: Vec::new(),
            require_email_verified: true,
            enabled: true,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, message: String| Err(ConfigError { field, message });
        let id_ok = (1..=32).contains(&self.id.len())
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !id_ok {
            return bad("id", "1 to 32 characters of a-z, 0-9, _ and -".into());
        }
        if let Err(m) = check_issuer(&self.issuer) {
            return bad("issuer", m);
        }
        if self.issuer_aliases.len() > 4 {
            return bad("issuer_aliases", "at most 4".into());
        }
        if self
            .issuer_aliases
            .iter()
            .any(|a| a.is_empty() || a.len() > MAX_URL_LEN || a.chars().any(char::is_control))
        {
            return bad("issuer_aliases", "each must be a non-empty string".into());
        }
        if self.client_ids.is_empty() || self.client_ids.len() > MAX_CLIENT_IDS {
            return bad(
                "client_ids",
                format!("1 to {MAX_CLIENT_IDS} client ids are needed"),
            );
        }
        if self.client_ids.iter().any(|c| !plain_value(c)) {
            return bad(
                "client_ids",
                "each must be 1 to 512 printable characters".into(),
            );
        }
        if self.algorithms.is_empty() {
            return bad("algorithms", "at least one algorithm is needed".into());
        }
        if let Some(uri) = &self.jwks_uri
            && let Err(m) = check_fetch_url(uri)
        {
            return bad("jwks_uri", m);
        }
        if self.hosted_domains.len() > MAX_LIST || self.hosted_domains.iter().any(|d| !domain_ok(d))
        {
            return bad("hosted_domains", format!("at most {MAX_LIST} domain names"));
        }
        if self.allowed_emails.len() > MAX_LIST {
            return bad("allowed_emails", format!("at most {MAX_LIST} entries"));
        }
        for entry in &self.allowed_emails {
            let ok = match entry.split_once('@') {
                Some((local, domain)) => {
                    plain_value(entry) && !local.contains(char::is_whitespace) && domain_ok(domain)
                }
                None => false,
            };
            if !ok {
                return bad(
                    "allowed_emails",
                    format!("{entry:?} is neither an address nor @domain"),
                );
            }
        }
        Ok(())
    }

    /// Whether `iss` names this provider's issuer.
    pub(crate) fn issuer_matches(&self, iss: &str) -> bool {
        iss == self.issuer || self.issuer_aliases.iter().any(|a| a == iss)
    }
}

/// Where the server may fetch discovery documents and key sets from, beyond what
/// [`ProviderConfig::validate`] checks. An app holding its secret chooses these URLs, so by
/// default the server refuses to reach its own network for it: plain http is refused, and so
/// is any address (literal, or what a name resolves to at fetch time) that is loopback,
/// private (RFC 1918, IPv6 unique-local), link-local (cloud metadata services), CGNAT,
/// unspecified or otherwise not globally routable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Loopback addresses are allowed, over plain http too (tests, a provider on the same host).
    pub allow_loopback_http: bool,
    /// Private and link-local addresses are allowed over https (an in-house provider).
    pub allow_private_networks: bool,
}

impl FetchPolicy {
    /// Whether `ip` may be connected to.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        if !is_internal(ip) {
            return true;
        }
        (self.allow_loopback_http && is_loopback_ip(ip)) || self.allow_private_networks
    }
}

fn is_loopback_ip(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(a) => a
            .to_ipv4_mapped()
            .map_or(a.is_loopback(), |v4| v4.is_loopback()),
        std::net::IpAddr::V4(a) => a.is_loopback(),
    }
}

/// Addresses that are not on the public internet.
pub(crate) fn is_internal(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] >= 240
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => {
                let s0 = a.segments()[0];
                a.is_loopback()
                    || a.is_unspecified()
                    || (s0 & 0xfe00) == 0xfc00
                    || (s0 & 0xffc0) == 0xfe80
                    || a.is_multicast()
            }
        },
    }
}

impl ProviderConfig {
    /// A provider's settings as an app sends them: the fields of [`ProviderConfig`] without
    /// `id` (it is `id`), or `{"preset": "google", "client_ids": [...]}` with any other field
    /// overriding the preset's (`enabled`, `hosted_domains` ...). Validated.
    pub fn from_settings(id: &str, settings: serde_json::Value) -> Result<Self, ConfigError> {
        let bad = |field: &'static str, message: String| ConfigError { field, message };
        let serde_json::Value::Object(mut fields) = settings else {
            return Err(bad("settings", "must be a JSON object".into()));
        };
        match fields.remove("id") {
            Some(serde_json::Value::String(given)) if given == id => {}
            None => {}
            Some(_) => return Err(bad("id", "differs from the provider id of the path".into())),
        }
        let mut merged = match fields.remove("preset") {
            None => serde_json::Map::new(),
            Some(serde_json::Value::String(p)) if p == "google" => {
                match serde_json::to_value(ProviderConfig::google(Vec::new())) {
                    Ok(serde_json::Value::Object(m)) => m,
                    _ => return Err(bad("preset", "cannot be applied".into())),
                }
            }
            Some(other) => {
                return Err(bad(
                    "preset",
                    format!("unknown preset {other}: the only one is \"google\""),
                ));
            }
        };
        merged.extend(fields);
        merged.insert("id".into(), serde_json::Value::String(id.to_owned()));
        let config: ProviderConfig = serde_json::from_value(serde_json::Value::Object(merged))
            .map_err(|e| bad("settings", e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the URLs the server would fetch (the issuer's discovery document, the key set)
    /// against the operator's [`FetchPolicy`]. Host names are checked again, by address, at
    /// fetch time.
    pub fn check_fetch_policy(&self, policy: FetchPolicy) -> Result<(), ConfigError> {
        let urls = [
            ("issuer", Some(&self.issuer)),
            ("jwks_uri", self.jwks_uri.as_ref()),
        ];
        for (field, raw) in urls {
            let Some(raw) = raw else { continue };
            // Only fetched when there is no jwks_uri.
            if field == "issuer" && self.jwks_uri.is_some() {
                continue;
            }
            policy_allows_url(raw, policy).map_err(|message| ConfigError { field, message })?;
        }
        Ok(())
    }
}

/// The policy's verdict on a URL before any name is resolved.
pub(crate) fn policy_allows_url(raw: &str, policy: FetchPolicy) -> Result<(), String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    let refused = "this server does not fetch from loopback or private addresses (operator \
                   settings oidc_allow_loopback_http, oidc_allow_private_networks)";
    if url.scheme() == "http" && !(policy.allow_loopback_http && is_loopback_host(&url)) {
        return Err(format!(
            "plain http is refused: https is needed ({refused})"
        ));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(a)) => Some(std::net::IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Some(std::net::IpAddr::V6(a)),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
            Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        }
        _ => None,
    };
    if ip.is_some_and(|ip| !policy.allows(ip)) {
        return Err(refused.into());
    }
    Ok(())
}

/// A refused provider setting: `field` is the JSON name of the bad field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: &'static str,
    pub message: String,
}

fn plain_value(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_VALUE_LEN && !v.chars().any(|c| c.is_control() || c == ' ')
}

fn domain_ok(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// An issuer is an https URL without query or fragment (OpenID Connect Discovery), or plain
/// http on a loopback address (tests).
fn check_issuer(issuer: &str) -> Result<(), String> {
    check_fetch_url(issuer)?;
    let url = Url::parse(issuer).map_err(|e| e.to_string())?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("an issuer has no query or fragment".into());
    }
    Ok(())
}

/// Where the server may fetch from: https anywhere, plain http only on loopback (a literal
/// loopback address or `localhost`; the address it resolves to is checked again at fetch
/// time).
pub(crate) fn check_fetch_url(raw: &str) -> Result<(), String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("a URL has at most {MAX_URL_LEN} characters"));
    }
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a URL with credentials is refused".into());
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => return Err("plain http is only allowed to loopback addresses".into()),
        other => return Err(format!("scheme {other} is not allowed: https is needed")),
    }
    if url.host().is_none() {
        return Err("a URL needs a host".into());
    }
    Ok(())
}

pub(crate) fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ProviderConfig {
        serde_json::from_value(serde_json::json!({
            "id": "corp-sso",
            "issuer": "https://login.example.com",
            "client_ids": ["web-client"],
        }))
        .expect("a minimal config parses")
    }

    #[test]
    fn defaults_are_rs256_es256_verified_email_and_enabled() {
        let c = sample();
        assert_eq!(
            c.algorithms,
            vec![SigningAlgorithm::RS256, SigningAlgorithm::ES256]
        );
        assert!(c.require_email_verified);
        assert!(c.enabled);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn hmac_and_none_can_never_be_configured() {
        for alg in ["HS256", "HS384", "HS512", "none", "EdDSA", "rs256"] {
            let r: Result<ProviderConfig, _> = serde_json::from_value(serde_json::json!({
                "id": "x", "issuer": "https://a.example", "client_ids": ["c"],
                "algorithms": [alg],
            }));
            let e = r.expect_err(alg).to_string();
            assert!(e.contains("cannot be configured"), "{alg}: {e}");
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let mut c = sample();
        c.id = "Corp".into();
        assert_eq!(c.validate().map_err(|e| e.field), Err("id"));
        let mut c = sample();
        c.issuer = "http://login.example.com".into();
        assert_eq!(c.validate().map_err(|e| e.field), Err("issuer"));
        let mut c = sample();
        c.client_ids.clear();
        assert_eq!(c.validate().map_err(|e| e.field), Err("client_ids"));
        let mut c = sample();
        c.algorithms.clear();
        assert_eq!(c.validate().map_err(|e| e.field), Err("algorithms"));
        let mut c = sample();
        c.jwks_uri = Some("ftp://keys.example.com".into());
        assert_eq!(c.validate().map_err(|e| e.field), Err("jwks_uri"));
        let mut c = sample();
        c.allowed_emails = vec!["example.com".into()];
        assert_eq!(c.validate().map_err(|e| e.field), Err("allowed_emails"));
        let mut c = sample();
        c.hosted_domains = vec!["not a domain".into()];
        assert_eq!(c.validate().map_err(|e| e.field), Err("hosted_domains"));
        let r: Result<ProviderConfig, _> = serde_json::from_value(serde_json::json!({
            "id": "x", "issuer": "https://a.example", "client_ids": ["c"], "secret": "s",
        }));
        assert!(r.is_err(), "unknown fields are refused");
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_fetch_url("http://127.0.0.1:8080/keys").is_ok());
        assert!(check_fetch_url("http://[::1]:8080/keys").is_ok());
        assert!(check_fetch_url("http://localhost/keys").is_ok());
        assert!(check_fetch_url("http://10.0.0.1/keys").is_err());
        assert!(check_fetch_url("http://example.com/keys").is_err());
        assert!(check_fetch_url("https://user:pw@example.com/keys").is_err());
        assert!(check_fetch_url("https://example.com/keys").is_ok());
    }

    #[test]
    fn settings_with_the_google_preset_or_in_full() {
        let g = ProviderConfig::from_settings(
            "google",
            serde_json::json!({"preset": "google", "client_ids": ["w"], "enabled": false}),
        )
        .expect("preset settings");
        assert_eq!(g.issuer, GOOGLE_ISSUER);
        assert!(!g.enabled);
        assert_eq!(g.client_ids, vec!["w".to_owned()]);
        let e = ProviderConfig::from_settings("x", serde_json::json!({"preset": "okta"}));
        assert_eq!(e.map_err(|e| e.field), Err("preset"));
        let e = ProviderConfig::from_settings("x", serde_json::json!({"id": "y"}));
        assert_eq!(e.map_err(|e| e.field), Err("id"));
        let full = serde_json::json!({"issuer": "https://a.example", "client_ids": ["c"]});
        let c = ProviderConfig::from_settings("corp", full).expect("full settings");
        assert_eq!(c.id, "corp");
        let hmac = serde_json::json!({
            "issuer": "https://a.example", "client_ids": ["c"], "algorithms": ["HS256"],
        });
        let e = ProviderConfig::from_settings("corp", hmac).expect_err("HMAC refused");
        assert!(e.message.contains("cannot be configured"), "{e}");
    }

    #[test]
    fn the_fetch_policy_refuses_internal_addresses_unless_allowed() {
        let strict = FetchPolicy::default();
        let tests = FetchPolicy {
            allow_loopback_http: true,
            allow_private_networks: false,
        };
        let with = |issuer: &str| {
            let mut c = sample();
            c.issuer = issuer.into();
            c
        };
        for url in [
            "http://127.0.0.1:9/x",
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:192.168.1.1]/x",
        ] {
            assert!(with(url).check_fetch_policy(strict).is_err(), "{url}");
        }
        assert!(
            with("https://login.example.com")
                .check_fetch_policy(strict)
                .is_ok()
        );
        assert!(with("http://127.0.0.1:9").check_fetch_policy(tests).is_ok());
        assert!(with("https://10.1.2.3").check_fetch_policy(tests).is_err());
        let private = FetchPolicy {
            allow_private_networks: true,
            ..strict
        };
        assert!(with("https://10.1.2.3").check_fetch_policy(private).is_ok());
        assert!(with("http://10.1.2.3").check_fetch_policy(private).is_err());
        let mut c = sample();
        c.jwks_uri = Some("https://192.168.0.1/keys".into());
        assert_eq!(
            c.check_fetch_policy(strict).map_err(|e| e.field),
            Err("jwks_uri")
        );
    }

    #[test]
    fn google_preset_is_valid_and_accepts_both_issuer_spellings() {
        let g = ProviderConfig::google(vec!["123.apps.googleusercontent.com".into()]);
        assert_eq!(g.validate(), Ok(()));
        assert!(g.issuer_matches("https://accounts.google.com"));
        assert!(g.issuer_matches("accounts.google.com"));
        assert!(!g.issuer_matches("https://accounts.google.com/"));
        let json = serde_json::to_value(&g).expect("serializes");
        let back: ProviderConfig = serde_json::from_value(json).expect("round-trips");
        assert_eq!(back, g);
    }
}
