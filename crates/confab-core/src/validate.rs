//! Input validation shared by every entry point. Limits are configurable; see [`Limits`].

use crate::error::{DomainError, ErrorCode};
use crate::ids::UserId;

/// Size limits on what clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Characters in a message text.
    pub max_text_chars: usize,
    /// Characters in a name (user, room, app).
    pub max_name_chars: usize,
    /// Initial members in one room creation.
    pub max_initial_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text_chars: 8000,
            max_name_chars: 200,
            max_initial_members: 100,
        }
    }
}

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::new(ErrorCode::InvalidInput, message)
}

/// A message text: non-empty (after trimming), at most `max_text_chars` characters, no NUL.
pub fn text(text: &str, limits: &Limits) -> Result<(), DomainError> {
    if text.trim().is_empty() {
        return Err(DomainError::new(
            ErrorCode::TextEmpty,
            "text must not be empty",
        ));
    }
    // PostgreSQL cannot store U+0000 in text (nor in JSON it parses): refused at the door,
    // the same for every store, rather than failing inside one of them.
    if text.contains('\0') {
        return Err(invalid("text must not contain the NUL character (U+0000)"));
    }
    let n = text.chars().count();
    if n > limits.max_text_chars {
        return Err(DomainError::new(
            ErrorCode::TextTooLong,
            format!(
                "text has {n} characters; the limit is {}",
                limits.max_text_chars
            ),
        ));
    }
    Ok(())
}

/// A display name: non-empty, at most `max_name_chars` characters, no control characters.
pub fn name(field: &str, value: &str, limits: &Limits) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(invalid(format!("{field} must not be empty")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    if value.chars().count() > limits.max_name_chars {
        return Err(DomainError::new(
            ErrorCode::NameTooLong,
            format!(
                "{field} is longer than {} characters",
                limits.max_name_chars
            ),
        ));
    }
    Ok(())
}

/// A user id chosen by an app: 1 to 128 characters from `A-Za-z0-9` and `_ . - @ + :`.
pub fn user_id(value: &str) -> Result<UserId, DomainError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-@+:".contains(c));
    if ok {
        Ok(UserId(value.to_owned()))
    } else {
        Err(invalid(
            "user id must be 1 to 128 characters of letters, digits and _ . - @ + :",
        ))
    }
}

/// A room alias: 1 to 64 characters from `a-z0-9` and `_ . -`.
pub fn alias(value: &str) -> Result<(), DomainError> {
    // An alias is a path segment (`/v1/rooms/alias/{alias}`): one made only of dots is a
    // segment that clients and proxies normalise away, so it could never be reached.
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
        && !value.chars().all(|c| c == '.');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "alias must be 1 to 64 characters of a-z, 0-9 and _ . -, not only dots",
        ))
    }
}

/// An URL or e-mail field: at most 2,048 characters, no control characters.
pub fn short_field(field: &str, value: &str) -> Result<(), DomainError> {
    if value.len() > 2048 || value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must be at most 2048 characters, no control characters"
        )));
    }
    Ok(())
}

/// A client id for idempotent sends: 1 to 128 printable ASCII characters.
pub fn client_id(value: &str) -> Result<(), DomainError> {
    if value.is_empty() || value.len() > 128 || !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            "client_id must be 1 to 128 printable ASCII characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_refuses_nul() {
        assert!(text("a\0b", &Limits::default()).is_err());
        assert!(text("a\tb", &Limits::default()).is_ok());
    }

    #[test]
    fn text_limits_count_characters_not_bytes() {
        let limits = Limits {
            max_text_chars: 3,
            ..Limits::default()
        };
        assert!(text("äöü", &limits).is_ok());
        assert_eq!(
            text("äöüx", &limits).map_err(|e| e.code),
            Err(ErrorCode::TextTooLong)
        );
        assert_eq!(
            text("  ", &limits).map_err(|e| e.code),
            Err(ErrorCode::TextEmpty)
        );
    }

    #[test]
    fn user_ids_refuse_spaces_and_slashes() {
        assert!(user_id("alice@example.com").is_ok());
        assert!(user_id("a b").is_err());
        assert!(user_id("a/b").is_err());
        assert!(user_id("").is_err());
    }
}
