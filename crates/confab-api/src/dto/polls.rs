//! Polls, votes and alerts on the wire. What a poll shows depends on the time it is read at: a
//! poll past its `closes_at` reads as closed (and its tallies as visible) even before the
//! server has logged the closing.

use super::{NameText, PollKindName, PollResultsName};
use confab_core::ids::Timestamp;
use confab_core::meetups::{Alert, CloseReason, PollOutcome, PollView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePollReq {
    #[schema(value_type = NameText, inline)]
    pub question: String,
    #[schema(value_type = PollKindName, inline)]
    pub kind: String,
    /// 2 to 20 distinct choices.
    #[schema(value_type = Vec<NameText>, inline, min_items = 2, max_items = 20)]
    pub choices: Vec<String>,
    /// How many choices one vote may name (default 1).
    #[schema(minimum = 1)]
    pub max_selections: Option<i64>,
    /// `disclosed` (default: tallies visible while open) or `undisclosed` (only once closed).
    #[schema(value_type = Option<PollResultsName>, inline)]
    pub results: Option<String>,
    /// RFC 3339; the poll closes then.
    #[schema(format = DateTime)]
    pub closes_at: Option<String>,
    /// The meetup the poll is about (required for `reschedule` and `relocate`).
    #[schema(minimum = 1)]
    pub meetup: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteReq {
    /// Indexes into the poll's choices (from 0); the whole vote, replacing any earlier one.
    /// Empty withdraws the vote.
    #[schema(inline, value_type = Vec<u32>)]
    pub choices: Vec<i64>,
}

/// A poll as the caller sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PollDto {
    pub room: i64,
    pub number: i64,
    pub question: String,
    /// `generic`, `reschedule` or `relocate`.
    pub kind: String,
    pub choices: Vec<String>,
    pub max_selections: u32,
    /// `disclosed` or `undisclosed`.
    pub results: String,
    pub closes_at: Option<String>,
    pub meetup: Option<i64>,
    pub creator: String,
    pub created_at: String,
    /// `open` or `closed`.
    pub status: String,
    pub closed_at: Option<String>,
    /// Who closed it by hand (null when the last vote or the deadline did).
    pub closed_by: Option<String>,
    /// `all_voted`, `closed`, `deadline` or `meetup_cancelled`; null while open.
    pub reason: Option<String>,
    /// `decided`, `tie` or `no_votes`; null while open.
    pub outcome: Option<String>,
    /// Index of the winning choice of a decided poll.
    pub winner: Option<u32>,
    pub winning_choice: Option<String>,
    /// Votes per choice; null while an undisclosed poll is open.
    pub tallies: Option<Vec<i64>>,
    /// The caller's standing vote (empty: not voted); null when the caller may not vote.
    pub my_vote: Option<Vec<u32>>,
    /// The eligible voters, fixed when the poll was made (single-poll reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voters: Option<Vec<String>>,
    pub voters_count: i64,
    pub voted_count: i64,
}

impl PollDto {
    /// The poll as read at `now`; `with_voters` for single-poll reads.
    pub fn new(v: &PollView, now: Timestamp, with_voters: bool) -> Self {
        let p = &v.poll;
        let open = p.is_open(now);
        // Past its deadline and not closed by an event yet: it reads as the closing will
        // record it (no vote can change the tallies any more).
        let (closed_at, closed_by, reason, outcome, winner) = match (&p.closed, open) {
            (Some(c), _) => (
                Some(c.at),
                c.by.as_ref().map(|u| u.0.clone()),
                Some(c.reason),
                Some(c.outcome),
                c.winner,
            ),
            (None, false) => {
                let (outcome, winner) = PollOutcome::of(&p.tallies);
                (
                    p.closes_at,
                    None,
                    Some(CloseReason::Deadline),
                    Some(outcome),
                    winner,
                )
            }
            (None, true) => (None, None, None, None, None),
        };
        PollDto {
            room: v.room.0,
            number: p.number.0,
            question: p.question.clone(),
            kind: p.kind.as_str().to_owned(),
            choices: p.choices.clone(),
            max_selections: p.max_selections,
            results: p.results.as_str().to_owned(),
            closes_at: p.closes_at.map(Timestamp::to_rfc3339),
            meetup: p.meetup.map(|m| m.0),
            creator: p.creator.0.clone(),
            created_at: p.created_at.to_rfc3339(),
            status: if open { "open" } else { "closed" }.to_owned(),
            closed_at: closed_at.map(Timestamp::to_rfc3339),
            closed_by,
            reason: reason.map(|r| r.as_str().to_owned()),
            outcome: outcome.map(|o| o.as_str().to_owned()),
            winner,
            winning_choice: winner.and_then(|w| p.choices.get(w as usize).cloned()),
            tallies: p.visible_tallies(now).map(<[i64]>::to_vec),
            my_vote: v.my_vote.clone(),
            voters: with_voters.then(|| v.voters.iter().map(|u| u.0.clone()).collect()),
            voters_count: p.voters_count,
            voted_count: p.voted_count,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PollListDto {
    pub polls: Vec<PollDto>,
    pub next_cursor: Option<String>,
}

/// An open poll the caller may vote on and has not.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDto {
    /// `pending_poll`, `pending_reschedule_poll` or `pending_relocation_poll`.
    pub kind: String,
    pub room: i64,
    pub poll: i64,
    pub meetup: Option<i64>,
    pub question: String,
    pub closes_at: Option<String>,
    pub created_at: String,
}

impl From<&Alert> for AlertDto {
    fn from(a: &Alert) -> Self {
        AlertDto {
            kind: a.kind.as_str().to_owned(),
            room: a.room.0,
            poll: a.poll.0,
            meetup: a.meetup.map(|m| m.0),
            question: a.question.clone(),
            closes_at: a.closes_at.map(Timestamp::to_rfc3339),
            created_at: a.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertListDto {
    pub alerts: Vec<AlertDto>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::ids::{PollNumber, RoomNumber, UserId};
    use confab_core::meetups::{Poll, PollClose, PollKind, Results};

    fn view(results: Results, closed: Option<PollClose>) -> PollView {
        PollView {
            room: RoomNumber(1),
            poll: Poll {
                number: PollNumber(2),
                question: "where?".into(),
                kind: PollKind::Generic,
                choices: vec!["a".into(), "b".into()],
                max_selections: 1,
                results,
                closes_at: Some(Timestamp(1_000)),
                meetup: None,
                creator: UserId("alice".into()),
                created_at: Timestamp(0),
                closed,
                voters_count: 3,
                voted_count: 2,
                tallies: vec![0, 2],
            },
            my_vote: Some(vec![1]),
            voters: vec![UserId("alice".into()), UserId("bob".into())],
        }
    }

    #[test]
    fn an_undisclosed_poll_hides_its_tallies_until_its_deadline() {
        let open = PollDto::new(&view(Results::Undisclosed, None), Timestamp(999), true);
        assert_eq!(open.status, "open");
        assert_eq!(open.tallies, None);
        assert_eq!(open.outcome, None);
        assert_eq!(open.voters.as_ref().map(Vec::len), Some(2));
        // Past the deadline, before the closing is logged: closed, as the closer will record.
        let due = PollDto::new(&view(Results::Undisclosed, None), Timestamp(1_000), false);
        assert_eq!(due.status, "closed");
        assert_eq!(due.tallies, Some(vec![0, 2]));
        assert_eq!(due.reason.as_deref(), Some("deadline"));
        assert_eq!(due.outcome.as_deref(), Some("decided"));
        assert_eq!(due.winning_choice.as_deref(), Some("b"));
        assert_eq!(due.voters, None);
        let json = serde_json::to_value(&due).unwrap_or_default();
        assert!(json.get("voters").is_none(), "{json}");
    }

    #[test]
    fn a_closed_poll_reads_as_its_closing_recorded() {
        let closed = PollClose {
            at: Timestamp(500),
            reason: CloseReason::Closed,
            by: Some(UserId("alice".into())),
            outcome: PollOutcome::Tie,
            winner: None,
        };
        let dto = PollDto::new(
            &view(Results::Disclosed, Some(closed)),
            Timestamp(600),
            true,
        );
        assert_eq!(dto.status, "closed");
        assert_eq!(dto.closed_by.as_deref(), Some("alice"));
        assert_eq!(dto.outcome.as_deref(), Some("tie"));
        assert_eq!(dto.winning_choice, None);
        assert_eq!(dto.closed_at.as_deref(), Some("1970-01-01T00:00:00.500Z"));
    }
}
