//! Opaque paging cursors: base64url of a short tagged string. A cursor that does not decode to
//! the expected shape is refused with 400 `invalid_cursor`.

use crate::error::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn encode(tag: &str, parts: &[&str]) -> String {
    let mut s = String::from(tag);
    for p in parts {
        s.push('\n');
        s.push_str(p);
    }
    URL_SAFE_NO_PAD.encode(s)
}

fn invalid() -> ApiError {
    ApiError::bad_request("invalid_cursor", "the cursor is not valid here")
}

/// The parts of a cursor made with `tag`.
pub fn decode(tag: &str, cursor: &str, n: usize) -> Result<Vec<String>, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let s = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut it = s.split('\n');
    if it.next() != Some(tag) {
        return Err(invalid());
    }
    let parts: Vec<String> = it.map(str::to_owned).collect();
    if parts.len() != n {
        return Err(invalid());
    }
    Ok(parts)
}

pub fn decode_i64s(tag: &str, cursor: &str, n: usize) -> Result<Vec<i64>, ApiError> {
    decode(tag, cursor, n)?
        .iter()
        .map(|p| p.parse::<i64>().map_err(|_| invalid()))
        .collect()
}

/// The page size of most listings: (default, most), as `limit` takes them; the OpenAPI document
/// states the same bounds.
pub const PAGE: (usize, usize) = (50, 200);
/// The page size of the feeds read to catch up (a room's changes, the app's event log).
pub const FEED: (usize, usize) = (100, 1000);
/// The page size of search (a room's or all of the caller's).
pub const SEARCH: (usize, usize) = (20, 100);
/// The page size of the seed-004 API's autocomplete.
pub const AUTOCOMPLETE: (usize, usize) = (10, 100);

/// A page size: `default` when absent, 1..=`max` otherwise.
pub fn limit(requested: Option<i64>, (default, max): (usize, usize)) -> Result<usize, ApiError> {
    match requested {
        None => Ok(default),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(_) => Err(ApiError::unprocessable(
            "invalid_limit",
            format!("limit must be between 1 and {max}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_tags() {
        let c = encode("rooms", &["12", "3"]);
        assert_eq!(decode_i64s("rooms", &c, 2).ok(), Some(vec![12, 3]));
        assert!(decode("members", &c, 2).is_err());
        assert!(decode("rooms", "!!!", 2).is_err());
        assert!(decode_i64s("rooms", &encode("rooms", &["x", "1"]), 2).is_err());
    }
}
