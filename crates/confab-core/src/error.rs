//! Domain errors with stable codes. Each code belongs to one kind; the API maps kinds to HTTP
//! statuses in one table, so a code always comes with the same status.

use std::fmt;

/// What sort of refusal an error is; the API turns this into an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    Unprocessable,
    RateLimited,
}

/// Declares [`ErrorCode`] with each code's wire string, one line per code, so that the list of
/// every code ([`ErrorCode::ALL`], read by [`ErrorCode::parse`]) cannot miss one.
macro_rules! error_codes {
    ($($code:ident => $text:literal,)*) => {
        /// Every stable error code the domain can produce.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($code,)*
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$code,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$code => $text,)*
                }
            }
        }
    };
}

error_codes! {
    AppNotFound => "app_not_found",
    UserNotFound => "user_not_found",
    RoomNotFound => "room_not_found",
    MessageNotFound => "message_not_found",
    NotAMember => "not_a_member",
    NotAllowed => "not_allowed",
    Banned => "banned",
    RoomAliasTaken => "room_alias_taken",
    DirectRoomFixed => "direct_room_fixed",
    DirectWithSelf => "direct_with_self",
    AlreadyMember => "already_member",
    NotApplied => "not_applied",
    NotInvited => "not_invited",
    CannotTargetRank => "cannot_target_rank",
    ClientIdReused => "client_id_reused",
    MessageDeleted => "message_deleted",
    NotAMessage => "not_a_message",
    ReplyTargetNotFound => "reply_target_not_found",
    SeqOutOfRange => "seq_out_of_range",
    InvalidInput => "invalid_input",
    TextEmpty => "text_empty",
    TextTooLong => "text_too_long",
    NameTooLong => "name_too_long",
    TooManyMembers => "too_many_members",
    TargetNotMember => "target_not_member",
    NotBanned => "not_banned",
    InvalidQuery => "invalid_search",
    QueryTooLong => "query_too_long",
    MeetupNotFound => "meetup_not_found",
    PollNotFound => "poll_not_found",
    MeetupCancelled => "meetup_cancelled",
    PollClosed => "poll_closed",
    NotEligible => "not_eligible",
    ChoiceOutOfRange => "choice_out_of_range",
    TooManyChoices => "too_many_choices",
}

impl ErrorCode {
    /// The code whose [`ErrorCode::as_str`] is `s`.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    pub fn kind(self) -> ErrorKind {
        use ErrorCode::*;
        use ErrorKind as K;
        match self {
            AppNotFound | UserNotFound | RoomNotFound | MessageNotFound | MeetupNotFound
            | PollNotFound => K::NotFound,
            NotEligible => K::Forbidden,
            MeetupCancelled | PollClosed => K::Conflict,
            ChoiceOutOfRange | TooManyChoices => K::Unprocessable,
            ReplyTargetNotFound => K::Unprocessable,
            NotAMember | NotAllowed | Banned | CannotTargetRank => K::Forbidden,
            RoomAliasTaken | DirectRoomFixed | AlreadyMember | NotApplied | NotInvited
            | ClientIdReused | MessageDeleted | TargetNotMember | NotBanned => K::Conflict,
            NotAMessage | SeqOutOfRange | InvalidInput | TextEmpty | DirectWithSelf
            | InvalidQuery => K::Unprocessable,
            TextTooLong | NameTooLong | TooManyMembers | QueryTooLong => K::TooLarge,
        }
    }
}

/// A refusal by the domain rules: nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DomainError {
    pub code: ErrorCode,
    pub message: String,
}

impl DomainError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        DomainError {
            code,
            message: message.into(),
        }
    }
    pub fn kind(&self) -> ErrorKind {
        self.code.kind()
    }
    pub fn room_not_found() -> Self {
        Self::new(ErrorCode::RoomNotFound, "room not found")
    }
    pub fn user_not_found(user: &crate::UserId) -> Self {
        Self::new(ErrorCode::UserNotFound, format!("user '{user}' not found"))
    }
    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotAllowed, message)
    }
}

/// What a store operation can fail with: a domain refusal, or one of three kinds of fault that
/// callers treat differently. Messages of faults are for logs only, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Another writer won a race for the same rows or key (a serialization failure, a
    /// deadlock, a unique key taken meanwhile). Stores retry these themselves; one that still
    /// reaches a caller had no effect, and the caller may try again.
    #[error("storage conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or cannot take the write now (connection lost, server
    /// down, disk full, the writer stopped), or the node that writes the app had the command
    /// and neither its answer nor a recall of it came in time (NATS not back, that node gone
    /// or still at it). Whether the operation took effect is unknown when the connection was
    /// lost during its commit (or in that last case); a command with a `client_id` is safe to
    /// repeat.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A bug or damaged data: not worth retrying, logged with its cause.
    #[error("storage internal error: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn internal(e: impl fmt::Display) -> Self {
        StoreError::Internal(e.to_string())
    }
    pub fn unavailable(e: impl fmt::Display) -> Self {
        StoreError::Unavailable(e.to_string())
    }
    pub fn conflict(e: impl fmt::Display) -> Self {
        StoreError::Conflict(e.to_string())
    }
    /// Whether the operation may succeed if tried again unchanged.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Conflict(_) | StoreError::Unavailable(_))
    }
}

/// A [`StoreError`] as one node tells it to another (see `Execute`): the domain code and
/// message, or the kind of fault with its message. Internal to a deployment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireError {
    Domain { code: String, message: String },
    Conflict(String),
    Unavailable(String),
    Internal(String),
}

impl From<&StoreError> for WireError {
    fn from(e: &StoreError) -> Self {
        match e {
            StoreError::Domain(d) => WireError::Domain {
                code: d.code.as_str().to_owned(),
                message: d.message.clone(),
            },
            StoreError::Conflict(m) => WireError::Conflict(m.clone()),
            StoreError::Unavailable(m) => WireError::Unavailable(m.clone()),
            StoreError::Internal(m) => WireError::Internal(m.clone()),
        }
    }
}

impl From<WireError> for StoreError {
    /// A code this node does not know (a newer node's) is an internal error, not a guess.
    fn from(e: WireError) -> Self {
        match e {
            WireError::Domain { code, message } => match ErrorCode::parse(&code) {
                Some(code) => StoreError::Domain(DomainError { code, message }),
                None => StoreError::Internal(format!("unknown error code '{code}': {message}")),
            },
            WireError::Conflict(m) => StoreError::Conflict(m),
            WireError::Unavailable(m) => StoreError::Unavailable(m),
            WireError::Internal(m) => StoreError::Internal(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_string_and_the_wire() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let e = StoreError::Domain(DomainError::new(code, "why"));
            let wire: WireError =
                serde_json::from_str(&serde_json::to_string(&WireError::from(&e)).expect("json"))
                    .expect("parses");
            match StoreError::from(wire) {
                StoreError::Domain(d) => assert_eq!((d.code, d.message.as_str()), (code, "why")),
                other => panic!("{code:?} came back as {other:?}"),
            }
        }
        assert_eq!(ErrorCode::parse("no_such_code"), None);
        let unknown = WireError::Domain {
            code: "from_a_newer_node".into(),
            message: "m".into(),
        };
        assert!(matches!(StoreError::from(unknown), StoreError::Internal(_)));
        for e in [
            StoreError::conflict("c"),
            StoreError::unavailable("u"),
            StoreError::internal("i"),
        ] {
            let back = StoreError::from(WireError::from(&e));
            assert_eq!(back.to_string(), e.to_string());
        }
    }
}
