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

/// Every stable error code the domain can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    AppNotFound,
    UserNotFound,
    RoomNotFound,
    MessageNotFound,
    NotAMember,
    NotAllowed,
    Banned,
    RoomAliasTaken,
    DirectRoomFixed,
    DirectWithSelf,
    AlreadyMember,
    NotApplied,
    NotInvited,
    CannotTargetRank,
    ClientIdReused,
    MessageDeleted,
    NotAMessage,
    ReplyTargetNotFound,
    SeqOutOfRange,
    InvalidInput,
    TextEmpty,
    TextTooLong,
    NameTooLong,
    TooManyMembers,
    TargetNotMember,
    NotBanned,
    InvalidQuery,
    QueryTooLong,
    MeetupNotFound,
    PollNotFound,
    MeetupCancelled,
    PollClosed,
    NotEligible,
    ChoiceOutOfRange,
    TooManyChoices,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
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
    /// down, disk full, the writer stopped). The operation had no effect; try again later.
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
