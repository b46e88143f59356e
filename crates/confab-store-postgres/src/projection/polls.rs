//! Projection of polls, votes and alerts. A poll row keeps its counts and tallies current
//! with each vote; `alerts` holds one row per eligible voter who has not voted on a poll not
//! yet closed. Each event moves its room's `last_pos`; creations and closings also write
//! their timeline item (`announce`).

use super::announce;
use crate::conn::Conn;
use confab_core::event::{Event, EventBody};
use confab_core::ids::{AppId, Pos, RoomNumber};
use confab_core::store::StoreResult;

/// A voter's whole standing vote replaced by `$5` (sorted choice indexes; empty: withdrawn),
/// in one statement: the ballot, the poll's tallies (each choice less the old ballot, plus
/// the new) and voted count, the voter's alert (gone while a vote stands, back when it is
/// withdrawn), the room's position. Every CTE reads the statement's snapshot, so `old` is
/// the ballot before this vote.
const VOTE_SQL: &str = "WITH old AS (
        SELECT choices FROM poll_voters
        WHERE app_id = $1 AND room_no = $2 AND poll_no = $3 AND user_id = $4
    ), ballot AS (
        UPDATE poll_voters SET choices = $5
        WHERE app_id = $1 AND room_no = $2 AND poll_no = $3 AND user_id = $4
    ), poll AS (
        UPDATE polls p SET
            tallies = ARRAY(
                SELECT t + (i - 1 = ANY($5::BIGINT[]))::INT - (i - 1 = ANY(old.choices))::INT
                FROM UNNEST(p.tallies) WITH ORDINALITY AS x(t, i) ORDER BY i),
            voted_count = p.voted_count + (cardinality($5::BIGINT[]) > 0)::INT
                - (cardinality(old.choices) > 0)::INT
        FROM old
        WHERE p.app_id = $1 AND p.room_no = $2 AND p.number = $3
    ), cleared AS (
        DELETE FROM alerts
        WHERE cardinality($5::BIGINT[]) > 0
          AND app_id = $1 AND user_id = $4 AND room_no = $2 AND poll_no = $3
    ), pending AS (
        INSERT INTO alerts (app_id, user_id, room_no, poll_no)
        SELECT $1, $4, $2, $3 WHERE cardinality($5::BIGINT[]) = 0
        ON CONFLICT DO NOTHING
    )
    UPDATE rooms SET last_pos = $6 WHERE app_id = $1 AND number = $2";

fn vote(
    c: &mut Conn,
    (app, room, poll): (AppId, RoomNumber, i64),
    user: &str,
    choices: &[u32],
    pos: Pos,
) -> StoreResult<()> {
    let choices: Vec<i64> = choices.iter().map(|c| i64::from(*c)).collect();
    c.exec(VOTE_SQL, &[&app.0, &room.0, &poll, &user, &choices, &pos.0])?;
    Ok(())
}

/// Applies `ev`, one of this area's events.
pub(super) fn apply(c: &mut Conn, ev: &Event) -> StoreResult<()> {
    let (app, at) = (ev.app.0, ev.at.0);
    match &ev.body {
        EventBody::PollCreated {
            room,
            poll,
            creator,
            question,
            kind,
            choices,
            max_selections,
            results,
            closes_at,
            meetup,
            voters,
            pos,
            seq,
        } => {
            // Every eligible voter starts with an empty ballot and an alert.
            let voters: Vec<&str> = voters.iter().map(|u| u.as_str()).collect();
            let tallies = vec![0i64; choices.len()];
            c.exec(
                "WITH poll AS (
                     INSERT INTO polls (app_id, room_no, number, question, kind, choices,
                         max_selections, results, closes_at, meetup_no, creator, created_at,
                         voters_count, tallies)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                         cardinality($13::TEXT[]), $14)
                 ), voters AS (
                     INSERT INTO poll_voters (app_id, room_no, poll_no, user_id)
                     SELECT $1, $2, $3, u FROM UNNEST($13::TEXT[]) AS u
                 ), pending AS (
                     INSERT INTO alerts (app_id, user_id, room_no, poll_no)
                     SELECT $1, u, $2, $3 FROM UNNEST($13::TEXT[]) AS u
                 )
                 UPDATE rooms SET last_pos = $15 WHERE app_id = $1 AND number = $2",
                &[
                    &app,
                    &room.0,
                    &poll.0,
                    question,
                    &kind.as_str(),
                    choices,
                    &i64::from(*max_selections),
                    &results.as_str(),
                    &closes_at.map(|t| t.0),
                    &meetup.map(|m| m.0),
                    &creator.as_str(),
                    &at,
                    &voters,
                    &tallies,
                    &pos.0,
                ],
            )?;
            announce(c, ev, *seq, Some(creator))?;
        }
        EventBody::VoteCast {
            room,
            poll,
            user,
            choices,
            pos,
            ..
        } => vote(c, (ev.app, *room, poll.0), user.as_str(), choices, *pos)?,
        EventBody::VoteWithdrawn {
            room,
            poll,
            user,
            pos,
        } => vote(c, (ev.app, *room, poll.0), user.as_str(), &[], *pos)?,
        EventBody::PollClosed {
            room,
            poll,
            by,
            reason,
            tallies,
            outcome,
            winner,
            pos,
            seq,
            ..
        } => {
            // The tallies as the event recorded them; nobody is waited on any more.
            c.exec(
                "WITH poll AS (
                     UPDATE polls SET closed = TRUE, closed_at = $4, close_reason = $5,
                         closed_by = $6, outcome = $7, winner = $8, tallies = $9
                     WHERE app_id = $1 AND room_no = $2 AND number = $3
                 ), pending AS (
                     DELETE FROM alerts WHERE app_id = $1 AND room_no = $2 AND poll_no = $3
                 )
                 UPDATE rooms SET last_pos = $10 WHERE app_id = $1 AND number = $2",
                &[
                    &app,
                    &room.0,
                    &poll.0,
                    &at,
                    &reason.as_str(),
                    &by.as_ref().map(|u| u.as_str()),
                    &outcome.as_str(),
                    &winner.map(i64::from),
                    tallies,
                    &pos.0,
                ],
            )?;
            announce(c, ev, *seq, by.as_ref())?;
        }
        other => return Err(super::misrouted(other, "polls")),
    }
    Ok(())
}
