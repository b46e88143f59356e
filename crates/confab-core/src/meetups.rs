//! Meetups, RSVPs, polls and alerts: the read-model types of the gatherings a room plans. The
//! events are in [`crate::event`], the rules in `rules/meetups.rs` and `rules/polls.rs`.

use crate::ids::{MeetupNumber, PollNumber, RoomNumber, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// Most choices a poll may offer, and fewest.
pub const MAX_CHOICES: usize = 20;
pub const MIN_CHOICES: usize = 2;

/// A member's answer to a meetup. Every joined member has one; `none` until they answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rsvp {
    #[default]
    None,
    Yes,
    No,
    Maybe,
}

impl Rsvp {
    pub fn as_str(self) -> &'static str {
        match self {
            Rsvp::None => "none",
            Rsvp::Yes => "yes",
            Rsvp::No => "no",
            Rsvp::Maybe => "maybe",
        }
    }
    pub fn parse(s: &str) -> Option<Rsvp> {
        Some(match s {
            "none" => Rsvp::None,
            "yes" => Rsvp::Yes,
            "no" => Rsvp::No,
            "maybe" => Rsvp::Maybe,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollKind {
    /// Any question.
    Generic,
    /// The choices are times (RFC 3339); a decided poll moves its meetup to the winner.
    Reschedule,
    /// The choices are places; a decided poll moves its meetup to the winner.
    Relocate,
}

impl PollKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PollKind::Generic => "generic",
            PollKind::Reschedule => "reschedule",
            PollKind::Relocate => "relocate",
        }
    }
    pub fn parse(s: &str) -> Option<PollKind> {
        Some(match s {
            "generic" => PollKind::Generic,
            "reschedule" => PollKind::Reschedule,
            "relocate" => PollKind::Relocate,
            _ => return None,
        })
    }
    /// The alert an eligible voter who has not voted gets.
    pub fn alert(self) -> AlertKind {
        match self {
            PollKind::Generic => AlertKind::PendingPoll,
            PollKind::Reschedule => AlertKind::PendingReschedulePoll,
            PollKind::Relocate => AlertKind::PendingRelocationPoll,
        }
    }
}

/// When a poll's tallies may be seen: while it is open, or only once it is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Results {
    #[default]
    Disclosed,
    Undisclosed,
}

impl Results {
    pub fn as_str(self) -> &'static str {
        match self {
            Results::Disclosed => "disclosed",
            Results::Undisclosed => "undisclosed",
        }
    }
    pub fn parse(s: &str) -> Option<Results> {
        Some(match s {
            "disclosed" => Results::Disclosed,
            "undisclosed" => Results::Undisclosed,
            _ => return None,
        })
    }
}

/// How a closed poll came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollOutcome {
    /// One choice has more votes than every other.
    Decided,
    /// Several choices share the most votes.
    Tie,
    NoVotes,
}

impl PollOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PollOutcome::Decided => "decided",
            PollOutcome::Tie => "tie",
            PollOutcome::NoVotes => "no_votes",
        }
    }
    pub fn parse(s: &str) -> Option<PollOutcome> {
        Some(match s {
            "decided" => PollOutcome::Decided,
            "tie" => PollOutcome::Tie,
            "no_votes" => PollOutcome::NoVotes,
            _ => return None,
        })
    }

    /// The outcome of `tallies` and the winning choice when there is one.
    pub fn of(tallies: &[i64]) -> (PollOutcome, Option<u32>) {
        let top = tallies.iter().copied().max().unwrap_or(0);
        if top <= 0 {
            return (PollOutcome::NoVotes, None);
        }
        let mut winners = tallies.iter().enumerate().filter(|(_, n)| **n == top);
        match (winners.next(), winners.next()) {
            (Some((i, _)), None) => (PollOutcome::Decided, Some(i as u32)),
            _ => (PollOutcome::Tie, None),
        }
    }
}

/// Why a poll closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The last eligible voter voted.
    AllVoted,
    /// Its creator, the meetup's organizer or a room admin closed it.
    Closed,
    /// Its `closes_at` passed.
    Deadline,
    /// Its meetup was cancelled.
    MeetupCancelled,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::AllVoted => "all_voted",
            CloseReason::Closed => "closed",
            CloseReason::Deadline => "deadline",
            CloseReason::MeetupCancelled => "meetup_cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<CloseReason> {
        Some(match s {
            "all_voted" => CloseReason::AllVoted,
            "closed" => CloseReason::Closed,
            "deadline" => CloseReason::Deadline,
            "meetup_cancelled" => CloseReason::MeetupCancelled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    PendingPoll,
    PendingReschedulePoll,
    PendingRelocationPoll,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::PendingPoll => "pending_poll",
            AlertKind::PendingReschedulePoll => "pending_reschedule_poll",
            AlertKind::PendingRelocationPoll => "pending_relocation_poll",
        }
    }
}

/// A meetup as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meetup {
    pub number: MeetupNumber,
    pub name: String,
    pub location: String,
    pub takes_place_on: Timestamp,
    pub image_url: Option<String>,
    pub organizer: UserId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub cancelled: bool,
}

/// How many joined members gave each answer (`none`: joined members who have not answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RsvpCounts {
    pub yes: i64,
    pub no: i64,
    pub maybe: i64,
    pub none: i64,
}

/// A meetup as one member sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetupView {
    pub room: RoomNumber,
    pub meetup: Meetup,
    /// The viewer's answer.
    pub rsvp: Rsvp,
    pub counts: RsvpCounts,
}

/// Which meetups of a room to list, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeetupQuery {
    /// Only meetups not cancelled that take place at or after `now`; otherwise every meetup.
    pub upcoming: bool,
    pub now: Timestamp,
    /// Cursor: the `(takes_place_on, number)` of the last meetup of the previous page.
    pub after: Option<(Timestamp, MeetupNumber)>,
}

/// How a closed poll ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollClose {
    pub at: Timestamp,
    pub reason: CloseReason,
    pub by: Option<UserId>,
    pub outcome: PollOutcome,
    pub winner: Option<u32>,
}

/// A poll as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    pub number: PollNumber,
    pub question: String,
    pub kind: PollKind,
    pub choices: Vec<String>,
    pub max_selections: u32,
    pub results: Results,
    pub closes_at: Option<Timestamp>,
    pub meetup: Option<MeetupNumber>,
    pub creator: UserId,
    pub created_at: Timestamp,
    pub closed: Option<PollClose>,
    /// Eligible voters, fixed when the poll was created.
    pub voters_count: i64,
    /// Eligible voters with a vote standing.
    pub voted_count: i64,
    /// Votes per choice, in choice order (one voter may count for several choices).
    pub tallies: Vec<i64>,
}

impl Poll {
    /// Whether the poll takes votes at `now`: not closed, and its deadline (if any) not reached,
    /// whether or not the server has logged the closing yet.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.closed.is_none() && self.closes_at.is_none_or(|t| now < t)
    }

    /// The tallies a member may see at `now`: always once closed, while open only if the
    /// results are disclosed.
    pub fn visible_tallies(&self, now: Timestamp) -> Option<&[i64]> {
        if self.results == Results::Disclosed || !self.is_open(now) {
            Some(&self.tallies)
        } else {
            None
        }
    }
}

/// A poll as one member sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollView {
    pub room: RoomNumber,
    pub poll: Poll,
    /// `None` when the viewer is not an eligible voter; else their standing vote (empty when
    /// they have not voted).
    pub my_vote: Option<Vec<u32>>,
    /// The eligible voters, sorted; filled by single-poll reads only (empty in listings).
    pub voters: Vec<UserId>,
}

/// Cursor of the poll listing, open polls first then closed, each newest first: the
/// `(closed, number)` of the last poll of the previous page.
pub type PollCursor = (bool, PollNumber);

/// Something waiting for a user: an open poll they may vote on and have not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: AlertKind,
    pub room: RoomNumber,
    pub poll: PollNumber,
    pub meetup: Option<MeetupNumber>,
    pub question: String,
    pub closes_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_one_winner_a_tie_or_no_votes() {
        assert_eq!(PollOutcome::of(&[0, 0, 0]), (PollOutcome::NoVotes, None));
        assert_eq!(PollOutcome::of(&[1, 3, 2]), (PollOutcome::Decided, Some(1)));
        assert_eq!(PollOutcome::of(&[2, 0, 2]), (PollOutcome::Tie, None));
        assert_eq!(PollOutcome::of(&[]), (PollOutcome::NoVotes, None));
    }

    #[test]
    fn undisclosed_tallies_show_only_after_closing() {
        let mut p = Poll {
            number: PollNumber(1),
            question: "q".into(),
            kind: PollKind::Generic,
            choices: vec!["a".into(), "b".into()],
            max_selections: 1,
            results: Results::Undisclosed,
            closes_at: Some(Timestamp(100)),
            meetup: None,
            creator: UserId("u".into()),
            created_at: Timestamp(0),
            closed: None,
            voters_count: 2,
            voted_count: 1,
            tallies: vec![1, 0],
        };
        assert!(p.is_open(Timestamp(99)));
        assert_eq!(p.visible_tallies(Timestamp(99)), None);
        // The deadline closes it for readers before any closing event exists.
        assert!(!p.is_open(Timestamp(100)));
        assert_eq!(p.visible_tallies(Timestamp(100)), Some(&[1, 0][..]));
        p.results = Results::Disclosed;
        assert_eq!(p.visible_tallies(Timestamp(99)), Some(&[1, 0][..]));
    }
}
