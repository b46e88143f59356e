//! Credentials: the admin key, app secrets (stored hashed), and user tokens (HS256 JWTs signed
//! with a per-app key, `alg` pinned, `exp` required and checked without leeway).

use crate::error::{ApiError, ApiResult};
use confab_core::ids::{AppId, UserId};
use confab_core::model::AppKeys;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `n` random bytes, hex-encoded.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // The OS random source failing is not recoverable; fall back to a v7 UUID's randomness.
    if getrandom::fill(&mut buf).is_err() {
        buf = uuid::Uuid::now_v7().as_bytes().repeat(n.div_ceil(16));
        buf.truncate(n);
    }
    hex(&buf)
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A public app token: 10 lowercase letters and digits.
pub fn new_app_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut buf = [0u8; 10];
    let _ = getrandom::fill(&mut buf);
    buf.iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

pub fn new_app_secret() -> String {
    format!("cs_{}", random_hex(24))
}

pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
}

/// Mints a user token valid for `ttl_seconds`; returns it with its expiry (Unix seconds).
pub fn mint(keys: &AppKeys, user: &UserId, ttl_seconds: i64) -> ApiResult<(String, i64)> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = Claims {
        sub: user.0.clone(),
        iat: now,
        exp: now + ttl_seconds,
    };
    let mut header = Header::new(Algorithm::HS256);
    // The key's opaque id, never the app token: whoever holds a user token must not learn a
    // credential from it.
    header.kid = Some(keys.key_id.clone());
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(keys.signing_key.as_bytes()),
    )
    .map_err(|e| {
        tracing::error!(error = %e, "token signing failed");
        ApiError::internal()
    })?;
    Ok((token, claims.exp))
}

/// The key id a user token names in its header (`kid`), read before the signature is checked.
pub fn token_key_id(token: &str) -> ApiResult<String> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| ApiError::unauthorized("malformed token"))?;
    if header.alg != Algorithm::HS256 {
        return Err(ApiError::unauthorized("unsupported token algorithm"));
    }
    header
        .kid
        .ok_or_else(|| ApiError::unauthorized("token names no app"))
}

/// Checks a user token against its app's key; returns the user and the expiry (Unix s).
pub fn verify(keys: &AppKeys, token: &str) -> ApiResult<(AppId, UserId, i64)> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_exp = true;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(keys.signing_key.as_bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
            ApiError::unauthorized("token expired")
        }
        _ => ApiError::unauthorized("invalid token"),
    })?;
    let user = confab_core::validate::user_id(&data.claims.sub)
        .map_err(|_| ApiError::unauthorized("invalid token"))?;
    Ok((keys.id, user, data.claims.exp))
}
