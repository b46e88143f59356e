//! A provider's documents as this crate keeps them: the discovery document (only its issuer
//! and key set URL matter) and the key set, reduced to the signing keys this crate can use.

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use serde::Deserialize;

use crate::config::{SigningAlgorithm, check_fetch_url};

/// The part of `/.well-known/openid-configuration` that is used.
#[derive(Debug, Deserialize)]
pub(crate) struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
}

impl Discovery {
    /// Parses a discovery document and checks it belongs to `issuer` (OpenID Connect
    /// Discovery §4.3: the issuer it states must be the one it was read for).
    pub(crate) fn parse(body: &[u8], issuer: &str) -> Result<Discovery, String> {
        let d: Discovery =
            serde_json::from_slice(body).map_err(|e| format!("discovery document: {e}"))?;
        if d.issuer != issuer {
            return Err(format!(
                "discovery document names issuer {:?}, not {issuer:?}",
                d.issuer
            ));
        }
        check_fetch_url(&d.jwks_uri).map_err(|e| format!("discovery jwks_uri: {e}"))?;
        Ok(d)
    }
}

/// One usable verification key.
pub(crate) struct Key {
    pub kid: Option<String>,
    /// The key's own `alg`, when the set states one: the token must use exactly that.
    alg: Option<String>,
    shape: Shape,
    pub decoding: DecodingKey,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Rsa,
    P256,
    P384,
}

impl Key {
    /// Whether this key may verify a signature made with `alg`.
    pub(crate) fn fits(&self, alg: SigningAlgorithm) -> bool {
        use SigningAlgorithm as A;
        let shape_fits = match alg {
            A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => {
                self.shape == Shape::Rsa
            }
            A::ES256 => self.shape == Shape::P256,
            A::ES384 => self.shape == Shape::P384,
        };
        shape_fits && self.alg.as_deref().is_none_or(|a| a == alg.as_str())
    }
}

/// A provider's key set, keeping only public signing keys of the supported kinds: `oct`
/// (HMAC) keys, encryption keys and unknown kinds are dropped, never turned into keys.
pub(crate) struct KeySet {
    pub keys: Vec<Key>,
}

/// The most keys kept from one set; providers publish two or three.
const MAX_KEYS: usize = 64;

impl KeySet {
    pub(crate) fn parse(body: &[u8]) -> Result<KeySet, String> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let raw: Raw = serde_json::from_slice(body).map_err(|e| format!("key set: {e}"))?;
        let mut keys = Vec::new();
        for value in raw.keys.into_iter().take(MAX_KEYS) {
            // One odd key (a new kind, an encryption key) must not hide the others.
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if matches!(
                jwk.common.public_key_use,
                Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
            ) {
                continue;
            }
            let shape = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Shape::Rsa,
                AlgorithmParameters::EllipticCurve(p) => match p.curve {
                    EllipticCurve::P256 => Shape::P256,
                    EllipticCurve::P384 => Shape::P384,
                    _ => continue,
                },
                _ => continue,
            };
            let Ok(decoding) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            // A key bound to an algorithm this crate does not know serves no token.
            let alg = jwk.common.key_algorithm.map(|a| a.to_string());
            if alg.as_deref() == Some("UNKNOWN_ALGORITHM") {
                continue;
            }
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                shape,
                decoding,
            });
        }
        Ok(KeySet { keys })
    }

    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The key to verify a token signed with `alg` and naming `kid`. A token without `kid`
    /// is accepted only when exactly one key of the set fits its algorithm.
    pub(crate) fn find(&self, kid: Option<&str>, alg: SigningAlgorithm) -> Option<&Key> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid) && k.fits(alg)),
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Some(k),
                    _ => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The P-256 example key of RFC 7517.
    const EC: &str = r#"{"kty":"EC","crv":"P-256","kid":"e1",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn hmac_and_encryption_keys_are_dropped() {
        let body = format!(
            r#"{{"keys":[
                {{"kty":"oct","kid":"h1","k":"c2VjcmV0"}},
                {{"kty":"RSA","kid":"enc","use":"enc","n":"sXch","e":"AQAB"}},
                {{"kty":"OKP","crv":"X25519","kid":"x","x":"abc"}},
                {{"kty":"weird"}},
                {EC}
            ]}}"#
        );
        let set = KeySet::parse(body.as_bytes()).expect("parses");
        assert_eq!(set.keys.len(), 1);
        assert!(set.has_kid("e1"));
        assert!(!set.has_kid("h1"));
        assert!(set.find(Some("e1"), SigningAlgorithm::ES256).is_some());
        assert!(set.find(Some("e1"), SigningAlgorithm::ES384).is_none());
        assert!(set.find(Some("e1"), SigningAlgorithm::RS256).is_none());
        assert!(set.find(None, SigningAlgorithm::ES256).is_some());
    }

    #[test]
    fn a_discovery_document_of_another_issuer_is_refused() {
        let body = br#"{"issuer":"https://evil.example","jwks_uri":"https://evil.example/k"}"#;
        assert!(Discovery::parse(body, "https://good.example").is_err());
        let body = br#"{"issuer":"https://good.example","jwks_uri":"http://10.0.0.1/k"}"#;
        assert!(Discovery::parse(body, "https://good.example").is_err());
        let body = br#"{"issuer":"https://good.example","jwks_uri":"https://good.example/k"}"#;
        assert!(Discovery::parse(body, "https://good.example").is_ok());
    }
}
