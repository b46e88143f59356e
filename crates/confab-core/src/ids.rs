//! Newtype identifiers and the timestamp type. Internal ids (`AppId`) never leave the server;
//! everything a client sees is an app token, a user id chosen by the app, or a number.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Internal id of an app. Never exposed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AppId(pub i64);

/// A user id, chosen by the app backend (validated by [`crate::validate::user_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub String);

impl UserId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! number_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

number_id!(
    /// A room's number within its app: 1..n, gapless.
    RoomNumber
);
number_id!(
    /// A timeline item's number within its room: 1..n, gapless, assigned at commit.
    Seq
);
number_id!(
    /// A change position within a room: 1..n, gapless, in commit order.
    Pos
);
number_id!(
    /// A position in an app's event log: 1..n, gapless.
    Offset
);

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let ns = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        Timestamp((ns / 1_000_000) as i64)
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-21T10:00:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let (y, mo, d) = (dt.year(), u8::from(dt.month()), dt.day());
        let (h, mi, s, ms) = (dt.hour(), dt.minute(), dt.second(), dt.millisecond());
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }
}
