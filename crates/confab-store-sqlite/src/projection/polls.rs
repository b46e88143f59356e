//! Polls, votes and the alerts they raise: a poll is created with its eligible voters (each
//! alerted), a vote replaces the voter's standing vote and moves the tallies (and clears the
//! voter's alert), a withdrawal gives the alert back, a closing freezes the tallies and the
//! outcome and clears every alert of the poll.

use super::{Cx, R, misrouted, missing};
use confab_core::event::EventBody;
use confab_core::ids::UserId;
use confab_core::meetups::PollKind;
use rusqlite::{OptionalExtension, params};

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

pub(super) fn apply(cx: &Cx<'_>) -> R {
    let (conn, app, at) = (cx.conn, cx.app(), cx.at());
    match &cx.ev.body {
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
            let rid = cx.rid(*room)?;
            let tallies = vec![0i64; choices.len()];
            conn.prepare_cached(
                "INSERT INTO polls (room_id, number, question, kind, choices, max_selections,
                    results, closes_at, meetup, creator, created_at, voters_count, tallies)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                rid,
                poll.0,
                question,
                kind.as_str(),
                serde_json::to_string(choices).map_err(json_err)?,
                max_selections,
                results.as_str(),
                closes_at.map(|t| t.0),
                meetup.map(|m| m.0),
                creator.as_str(),
                at,
                voters.len() as i64,
                serde_json::to_string(&tallies).map_err(json_err)?,
            ])?;
            let mut voter = conn.prepare_cached(
                "INSERT INTO poll_voters (room_id, poll, user_id) VALUES (?1, ?2, ?3)",
            )?;
            let mut alert = conn.prepare_cached(
                "INSERT INTO alerts (app_id, user_id, room_no, poll, room_id, kind, meetup,
                    question, closes_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for u in voters {
                voter.execute(params![rid, poll.0, u.as_str()])?;
                alert.execute(params![
                    app,
                    u.as_str(),
                    room.0,
                    poll.0,
                    rid,
                    kind.alert().as_str(),
                    meetup.map(|m| m.0),
                    question,
                    closes_at.map(|t| t.0),
                    at
                ])?;
            }
            cx.advance(rid, *pos)?;
            cx.announce(rid, *seq, Some(creator))?;
        }
        EventBody::VoteCast {
            room,
            poll,
            user,
            choices,
            pos,
            ..
        } => {
            let rid = cx.rid(*room)?;
            let before = standing(cx, rid, poll.0, user)?;
            move_tallies(cx, rid, poll.0, &before, choices)?;
            conn.prepare_cached(
                "UPDATE poll_voters SET choices = ?4 WHERE room_id = ?1 AND poll = ?2 AND user_id = ?3",
            )?
            .execute(params![
                rid,
                poll.0,
                user.as_str(),
                serde_json::to_string(choices).map_err(json_err)?
            ])?;
            if before.is_empty() {
                conn.prepare_cached(
                    "UPDATE polls SET voted_count = voted_count + 1 WHERE room_id = ?1 AND number = ?2",
                )?
                .execute(params![rid, poll.0])?;
            }
            conn.prepare_cached(
                "DELETE FROM alerts WHERE app_id = ?1 AND user_id = ?2 AND room_no = ?3 AND poll = ?4",
            )?
            .execute(params![app, user.as_str(), room.0, poll.0])?;
            cx.advance(rid, *pos)?;
        }
        EventBody::VoteWithdrawn {
            room,
            poll,
            user,
            pos,
        } => {
            let rid = cx.rid(*room)?;
            let before = standing(cx, rid, poll.0, user)?;
            move_tallies(cx, rid, poll.0, &before, &[])?;
            conn.prepare_cached(
                "UPDATE poll_voters SET choices = '' WHERE room_id = ?1 AND poll = ?2 AND user_id = ?3",
            )?
            .execute(params![rid, poll.0, user.as_str()])?;
            if !before.is_empty() {
                conn.prepare_cached(
                    "UPDATE polls SET voted_count = voted_count - 1 WHERE room_id = ?1 AND number = ?2",
                )?
                .execute(params![rid, poll.0])?;
            }
            // The voter is waited for again, as when the poll was created (only an open poll
            // takes a withdrawal).
            let alert = conn
                .prepare_cached(
                    "SELECT kind, meetup, question, closes_at, created_at FROM polls
                      WHERE room_id = ?1 AND number = ?2 AND closed_at IS NULL",
                )?
                .query_row(params![rid, poll.0], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .optional()?;
            if let Some((kind, meetup, question, closes_at, created_at)) = alert {
                let kind = PollKind::parse(&kind).ok_or_else(|| missing("poll kind"))?;
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO alerts (app_id, user_id, room_no, poll, room_id, kind,
                        meetup, question, closes_at, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    app,
                    user.as_str(),
                    room.0,
                    poll.0,
                    rid,
                    kind.alert().as_str(),
                    meetup,
                    question,
                    closes_at,
                    created_at
                ])?;
            }
            cx.advance(rid, *pos)?;
        }
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
            let rid = cx.rid(*room)?;
            conn.prepare_cached(
                "UPDATE polls SET closed_at = ?3, close_reason = ?4, closed_by = ?5, outcome = ?6,
                    winner = ?7, tallies = ?8
                 WHERE room_id = ?1 AND number = ?2",
            )?
            .execute(params![
                rid,
                poll.0,
                at,
                reason.as_str(),
                by.as_ref().map(UserId::as_str),
                outcome.as_str(),
                winner,
                serde_json::to_string(tallies).map_err(json_err)?
            ])?;
            conn.prepare_cached("DELETE FROM alerts WHERE room_id = ?1 AND poll = ?2")?
                .execute(params![rid, poll.0])?;
            cx.advance(rid, *pos)?;
            cx.announce(rid, *seq, by.as_ref())?;
        }
        other => return Err(misrouted(other)),
    }
    Ok(())
}

/// The voter's standing vote (empty when none).
fn standing(cx: &Cx<'_>, rid: i64, poll: i64, user: &UserId) -> rusqlite::Result<Vec<u32>> {
    let raw: Option<String> = cx
        .conn
        .prepare_cached(
            "SELECT choices FROM poll_voters WHERE room_id = ?1 AND poll = ?2 AND user_id = ?3",
        )?
        .query_row(params![rid, poll, user.as_str()], |r| r.get(0))
        .optional()?;
    crate::polls::parse_choices(raw.as_deref().unwrap_or(""))
}

/// Takes the `before` vote off the poll's tallies and adds `after`.
fn move_tallies(cx: &Cx<'_>, rid: i64, poll: i64, before: &[u32], after: &[u32]) -> R {
    let raw: String = cx
        .conn
        .prepare_cached("SELECT tallies FROM polls WHERE room_id = ?1 AND number = ?2")?
        .query_row(params![rid, poll], |r| r.get(0))?;
    let mut tallies: Vec<i64> = serde_json::from_str(&raw).map_err(json_err)?;
    for (choices, sign) in [(before, -1), (after, 1)] {
        for c in choices {
            if let Some(t) = tallies.get_mut(*c as usize) {
                *t += sign;
            }
        }
    }
    cx.conn
        .prepare_cached("UPDATE polls SET tallies = ?3 WHERE room_id = ?1 AND number = ?2")?
        .execute(params![
            rid,
            poll,
            serde_json::to_string(&tallies).map_err(json_err)?
        ])?;
    Ok(())
}
