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
number_id!(
    /// A meetup's number within its room: 1..n, gapless.
    MeetupNumber
);
number_id!(
    /// A poll's number within its room: 1..n, gapless.
    PollNumber
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
    ///
    /// Every item of a history page carries one or two of these, so the common case (years
    /// 0000 to 9999) is computed directly (days to civil date as in Howard Hinnant's
    /// `civil_from_days`) instead of going through `time` and `format!`.
    pub fn to_rfc3339(self) -> String {
        let (secs, ms) = (self.0.div_euclid(1000), self.0.rem_euclid(1000));
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        if !(0..=9999).contains(&y) {
            return self.to_rfc3339_slow();
        }
        let mut out = String::with_capacity(24);
        let mut put = |n: i64, width: u32, sep: Option<char>| {
            for i in (0..width).rev() {
                let digit = (n / 10_i64.pow(i)) % 10;
                out.push(char::from(b'0' + digit as u8));
            }
            if let Some(c) = sep {
                out.push(c);
            }
        };
        put(y, 4, Some('-'));
        put(m, 2, Some('-'));
        put(d, 2, Some('T'));
        put(sod / 3600, 2, Some(':'));
        put(sod / 60 % 60, 2, Some(':'));
        put(sod % 60, 2, Some('.'));
        put(ms, 3, Some('Z'));
        out
    }

    /// Parses an RFC 3339 date-time with any offset (`2026-12-24T18:00:00+01:00`), to the
    /// millisecond; `None` if it is not one or lies outside years 0000 to 9999.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let dt =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
        if !(0..=9999).contains(&dt.year()) {
            return None;
        }
        Some(Timestamp((dt.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    fn to_rfc3339_slow(self) -> String {
        let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let (y, mo, d) = (dt.year(), u8::from(dt.month()), dt.day());
        let (h, mi, s, ms) = (dt.hour(), dt.minute(), dt.second(), dt.millisecond());
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn rfc3339_matches_the_calendar() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_795_255_200_123, "2026-11-21T10:00:00.123Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
            (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        ];
        for (ms, text) in cases {
            assert_eq!(Timestamp(ms).to_rfc3339(), text, "{ms}");
        }
        // Every day of four centuries (and odd times of day) agrees with the `time` crate.
        let mut ms = -62_167_219_200_000_i64;
        while ms < 253_402_300_799_999 {
            let t = Timestamp(ms);
            assert_eq!(t.to_rfc3339(), t.to_rfc3339_slow(), "{ms}");
            ms += 86_400_000 * 29 + 3_723_456;
        }
    }

    #[test]
    fn rfc3339_parses_offsets_and_refuses_garbage() {
        let t = Timestamp::parse_rfc3339("2026-12-24T18:00:00+01:00").expect("an RFC 3339 time");
        assert_eq!(t.to_rfc3339(), "2026-12-24T17:00:00.000Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-21T10:00:00.123Z"),
            Some(Timestamp(1_795_255_200_123))
        );
        for bad in ["", "tomorrow", "2026-13-01T00:00:00Z", "2026-12-24 18:00"] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }
}
