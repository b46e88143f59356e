//! Input validation shared by every entry point. Limits are configurable; see [`Limits`].

use crate::command::{
    Command, CreateApp, CreateGroup, CreateMeetup, CreatePoll, EditMessage, SendMessage,
    UpdateMeetup, UpdateProfile, UpdateRoom, UpsertUser, Vote,
};
use crate::error::{DomainError, ErrorCode};
use crate::ids::UserId;
use crate::meetups::{MAX_CHOICES, MIN_CHOICES, PollKind};

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

/// Checks everything a command carries that does not depend on stored state: texts, names,
/// URLs, aliases, client ids, list sizes. Every entry point (REST, WebSocket, the compatible
/// API, the admin CLI) calls this once before the command reaches a store, so a rule is written
/// once and the same input gets the same refusal everywhere. The match names every command.
pub fn command(cmd: &Command, limits: &Limits) -> Result<(), DomainError> {
    let opt_name = |field: &str, v: &Option<String>| match v {
        Some(v) => name(field, v, limits),
        None => Ok(()),
    };
    let opt_field = |field: &str, v: &Option<String>| match v {
        Some(v) => short_field(field, v),
        None => Ok(()),
    };
    match cmd {
        Command::CreateApp(CreateApp { name: n, .. }) | Command::RenameApp { name: n, .. } => {
            name("name", n, limits)
        }
        Command::UpsertUser(UpsertUser {
            name,
            image_url,
            email,
            ..
        }) => {
            opt_name("name", name)?;
            opt_field("image_url", image_url)?;
            opt_field("email", email)
        }
        Command::UpdateProfile(UpdateProfile {
            name, image_url, ..
        })
        | Command::UpdateRoom(UpdateRoom {
            name, image_url, ..
        }) => {
            opt_name("name", name)?;
            opt_field("image_url", image_url)
        }
        Command::CreateGroup(CreateGroup {
            name,
            image_url,
            alias: a,
            members,
            ..
        }) => {
            opt_name("name", name)?;
            opt_field("image_url", image_url)?;
            if let Some(a) = a {
                alias(a)?;
            }
            if members.len() > limits.max_initial_members {
                return Err(DomainError::new(
                    ErrorCode::TooManyMembers,
                    format!("at most {} initial members", limits.max_initial_members),
                ));
            }
            Ok(())
        }
        Command::Send(SendMessage {
            text: t,
            client_id: c,
            ..
        }) => {
            text(t, limits)?;
            match c {
                Some(c) => client_id(c),
                None => Ok(()),
            }
        }
        Command::Edit(EditMessage { text: t, .. }) => text(t, limits),
        Command::CreateMeetup(CreateMeetup {
            name: n,
            location,
            image_url,
            ..
        }) => {
            name("name", n, limits)?;
            name("location", location, limits)?;
            opt_field("image_url", image_url)
        }
        Command::UpdateMeetup(UpdateMeetup {
            name,
            location,
            image_url,
            ..
        }) => {
            opt_name("name", name)?;
            opt_name("location", location)?;
            opt_field("image_url", image_url)
        }
        Command::CreatePoll(c) => poll(c, limits),
        Command::Vote(Vote { choices, .. }) => {
            if choices.len() > MAX_CHOICES {
                return Err(DomainError::new(
                    ErrorCode::TooManyChoices,
                    format!("a poll has at most {MAX_CHOICES} choices"),
                ));
            }
            Ok(())
        }
        Command::CancelMeetup(_) | Command::SetRsvp(_) | Command::ClosePoll(_) => Ok(()),
        Command::RecordLogin { .. }
        | Command::RecordSeen { .. }
        | Command::CreateDirect { .. }
        | Command::DeleteRoom { .. }
        | Command::Join { .. }
        | Command::Leave { .. }
        | Command::Invite(_)
        | Command::Decide(_)
        | Command::SetRole(_)
        | Command::Delete(_)
        | Command::MarkRead(_) => Ok(()),
    }
}

/// Most characters in a poll's question.
pub const MAX_QUESTION_CHARS: usize = 1000;

/// A new poll: a question, 2 to 20 distinct choices (times for a reschedule poll), and a
/// `max_selections` between 1 and the number of choices.
fn poll(c: &CreatePoll, limits: &Limits) -> Result<(), DomainError> {
    let wide = Limits {
        max_name_chars: MAX_QUESTION_CHARS,
        ..*limits
    };
    name("question", &c.question, &wide)?;
    let n = c.choices.len();
    if !(MIN_CHOICES..=MAX_CHOICES).contains(&n) {
        let code = if n > MAX_CHOICES {
            ErrorCode::TooManyChoices
        } else {
            ErrorCode::InvalidInput
        };
        return Err(DomainError::new(
            code,
            format!("a poll has {MIN_CHOICES} to {MAX_CHOICES} choices; {n} given"),
        ));
    }
    for choice in &c.choices {
        name("a choice", choice, limits)?;
    }
    let mut seen: Vec<&str> = c.choices.iter().map(|s| s.trim()).collect();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != n {
        return Err(invalid("choices must differ from each other"));
    }
    if c.kind == PollKind::Reschedule {
        let mut times = Vec::with_capacity(n);
        for choice in &c.choices {
            let t = crate::ids::Timestamp::parse_rfc3339(choice).ok_or_else(|| {
                invalid(format!(
                    "choice \"{choice}\" is not an RFC 3339 time (a reschedule poll's choices are times)"
                ))
            })?;
            times.push(t);
        }
        times.sort_unstable();
        times.dedup();
        if times.len() != n {
            return Err(invalid("two choices name the same time"));
        }
    }
    if c.max_selections == 0 || c.max_selections as usize > n {
        return Err(invalid(format!(
            "max_selections must be between 1 and the number of choices ({n})"
        )));
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
