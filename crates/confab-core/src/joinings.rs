//! Joinings read back from an app's log: how a gateway finds the joins of its users whose bus
//! message was lost without any sign (a publisher's NATS cut off from its own). The log's
//! offsets become visible in order, so a reader that goes on from where it stopped never skips
//! a commit, and needs no clock: the offset is the cursor.

use crate::event::{EventBody, MemberAction};
use crate::ids::{Offset, Pos, RoomNumber, UserId};
use crate::model::MemberState;

/// A membership that became `joined`, as the log recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joining {
    pub offset: Offset,
    pub room: RoomNumber,
    pub user: UserId,
    /// The room position of the joining (the member's `since` while they stay).
    pub pos: Pos,
}

impl Joining {
    /// The joining an event records, if it is one. A role change keeps a member joined but is
    /// no joining.
    pub fn of(offset: Offset, body: &EventBody) -> Option<Joining> {
        match body {
            EventBody::Membership {
                room,
                user,
                action,
                state: MemberState::Joined,
                pos,
                ..
            } if *action != MemberAction::RoleChanged => Some(Joining {
                offset,
                room: *room,
                user: user.clone(),
                pos: *pos,
            }),
            _ => None,
        }
    }
}

/// One read of an app's joinings ([`crate::Store::joins`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joins {
    /// The joinings found, in log order.
    pub rows: Vec<Joining>,
    /// Everything up to this offset has been looked at: the next read goes on after it.
    pub next: Offset,
    /// The log went on past `next` when read.
    pub has_more: bool,
}

/// Where a read of joinings after `after` stops when the log ends at `head`: at most `span`
/// offsets on (at least one), never before `after`. Gives the end and whether the log goes on.
pub fn span_end(after: Offset, head: Offset, span: usize) -> (Offset, bool) {
    let span = i64::try_from(span.max(1)).unwrap_or(i64::MAX);
    let end = head.0.min(after.0.saturating_add(span)).max(after.0);
    (Offset(end), end < head.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_spans_at_most_its_span_and_never_goes_back() {
        assert_eq!(span_end(Offset(10), Offset(100), 50), (Offset(60), true));
        assert_eq!(span_end(Offset(10), Offset(40), 50), (Offset(40), false));
        assert_eq!(span_end(Offset(10), Offset(10), 50), (Offset(10), false));
        // A cursor past the log's end (a log copied over, say) stays where it is.
        assert_eq!(span_end(Offset(10), Offset(5), 50), (Offset(10), false));
        assert_eq!(span_end(Offset(10), Offset(100), 0), (Offset(11), true));
    }
}
