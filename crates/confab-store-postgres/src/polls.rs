//! Polls, votes and alerts: their rows, what the rules read of them inside the writer's
//! transaction (under the room's lock, see `writer`; once each, then known, see `planning`),
//! and the readers' queries. Their projection is `projection/polls.rs`; the writer's
//! set-based equivalent is `plans`.

use crate::conn::Conn;
use crate::read;
use crate::rows::{get, prefixed};
use confab_core::error::StoreError;
use confab_core::ids::{AppId, MeetupNumber, PollNumber, RoomNumber, Timestamp, UserId};
use confab_core::meetups::{
    Alert, CloseReason, Poll, PollClose, PollCursor, PollKind, PollOutcome, PollView, Results,
};
use confab_core::model::Page;
use confab_core::store::StoreResult;
use deadpool_postgres::Client;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// 18 columns; `poll_at` reads them.
const POLL_COLS: &str = "number, question, kind, choices, max_selections, results, closes_at, \
    meetup_no, creator, created_at, voters_count, voted_count, tallies, closed_at, \
    close_reason, closed_by, outcome, winner";
const POLL_WIDTH: usize = 18;

fn bad(what: &str) -> StoreError {
    StoreError::Internal(format!("unexpected {what} in a stored poll"))
}

fn poll_at(r: &Row, o: usize) -> StoreResult<Poll> {
    let closed = match get::<Option<i64>>(r, o + 13)? {
        Some(at) => Some(PollClose {
            at: Timestamp(at),
            reason: CloseReason::parse(get(r, o + 14)?).ok_or_else(|| bad("close reason"))?,
            by: get::<Option<String>>(r, o + 15)?.map(UserId),
            outcome: PollOutcome::parse(get(r, o + 16)?).ok_or_else(|| bad("outcome"))?,
            winner: get::<Option<i64>>(r, o + 17)?.map(|w| w as u32),
        }),
        None => None,
    };
    Ok(Poll {
        number: PollNumber(get(r, o)?),
        question: get(r, o + 1)?,
        kind: PollKind::parse(get(r, o + 2)?).ok_or_else(|| bad("kind"))?,
        choices: get(r, o + 3)?,
        max_selections: get::<i64>(r, o + 4)? as u32,
        results: Results::parse(get(r, o + 5)?).ok_or_else(|| bad("results"))?,
        closes_at: get::<Option<i64>>(r, o + 6)?.map(Timestamp),
        meetup: get::<Option<i64>>(r, o + 7)?.map(MeetupNumber),
        creator: UserId(get(r, o + 8)?),
        created_at: Timestamp(get(r, o + 9)?),
        closed,
        voters_count: get(r, o + 10)?,
        voted_count: get(r, o + 11)?,
        tallies: get(r, o + 12)?,
    })
}

/// A stored ballot as choice indexes (stored sorted).
fn ballot(stored: Vec<i64>) -> Vec<u32> {
    stored.into_iter().map(|c| c as u32).collect()
}

// The writer's reads.

pub fn tx_poll(
    c: &mut Conn,
    app: AppId,
    room: RoomNumber,
    number: PollNumber,
) -> StoreResult<Option<Poll>> {
    c.opt(
        &format!(
            "SELECT {POLL_COLS} FROM polls WHERE app_id = $1 AND room_no = $2 AND number = $3"
        ),
        &[&app.0, &room.0, &number.0],
    )?
    .map(|r| poll_at(&r, 0))
    .transpose()
}

pub fn tx_last_number(c: &mut Conn, app: AppId, room: RoomNumber) -> StoreResult<PollNumber> {
    let r = c.one(
        "SELECT COALESCE(MAX(number), 0) FROM polls WHERE app_id = $1 AND room_no = $2",
        &[&app.0, &room.0],
    )?;
    Ok(PollNumber(get(&r, 0)?))
}

pub fn tx_ballot(
    c: &mut Conn,
    app: AppId,
    room: RoomNumber,
    poll: PollNumber,
    user: &UserId,
) -> StoreResult<Option<Vec<u32>>> {
    c.opt(
        "SELECT choices FROM poll_voters
         WHERE app_id = $1 AND room_no = $2 AND poll_no = $3 AND user_id = $4",
        &[&app.0, &room.0, &poll.0, &user.as_str()],
    )?
    .map(|r| get(&r, 0).map(ballot))
    .transpose()
}

pub fn tx_open_polls(
    c: &mut Conn,
    app: AppId,
    room: RoomNumber,
    meetup: MeetupNumber,
) -> StoreResult<Vec<PollNumber>> {
    c.query(
        "SELECT number FROM polls
         WHERE app_id = $1 AND room_no = $2 AND meetup_no = $3 AND NOT closed ORDER BY number",
        &[&app.0, &room.0, &meetup.0],
    )?
    .iter()
    .map(|r| get(r, 0).map(PollNumber))
    .collect()
}

// The readers' queries.

/// Polls of a room with the viewer's (`$3`) standing vote (column `POLL_WIDTH`; NULL when
/// they are not an eligible voter).
fn views_sql(filter: &str, order_limit: &str) -> String {
    format!(
        "SELECT {cols}, v.choices FROM polls p
         LEFT JOIN poll_voters v ON v.app_id = p.app_id AND v.room_no = p.room_no
             AND v.poll_no = p.number AND v.user_id = $3
         WHERE p.app_id = $1 AND p.room_no = $2 AND {filter}
         {order_limit}",
        cols = prefixed(POLL_COLS, "p"),
    )
}

fn view(r: &Row, room: RoomNumber) -> StoreResult<PollView> {
    Ok(PollView {
        room,
        poll: poll_at(r, 0)?,
        my_vote: get::<Option<Vec<i64>>>(r, POLL_WIDTH)?.map(ballot),
        voters: Vec::new(),
    })
}

pub async fn polls(
    c: &Client,
    app: AppId,
    room: RoomNumber,
    viewer: &UserId,
    after: Option<PollCursor>,
    limit: usize,
) -> StoreResult<Page<PollView>> {
    let sql = views_sql(
        "($4::BOOLEAN IS NULL OR p.closed > $4 OR (p.closed = $4 AND p.number < $5))",
        &format!("ORDER BY p.closed, p.number DESC LIMIT {}", limit + 1),
    );
    let (closed, number) = after.map_or((None, 0), |(c, n)| (Some(c), n.0));
    let found = read::query(
        c,
        &sql,
        &[&app.0, &room.0, &viewer.as_str(), &closed, &number],
    )
    .await?;
    let has_more = found.len() > limit;
    let rows = found
        .iter()
        .take(limit)
        .map(|r| view(r, room))
        .collect::<StoreResult<_>>()?;
    Ok(Page { rows, has_more })
}

pub async fn poll(
    c: &Client,
    app: AppId,
    room: RoomNumber,
    number: PollNumber,
    viewer: &UserId,
) -> StoreResult<Option<PollView>> {
    let sql = views_sql("p.number = $4", "");
    let viewer = viewer.as_str();
    let one: [&(dyn ToSql + Sync); 4] = [&app.0, &room.0, &viewer, &number.0];
    let keys: [&(dyn ToSql + Sync); 3] = [&app.0, &room.0, &number.0];
    // Both go out at once on the connection (pipelined).
    let (found, voters) = tokio::join!(
        read::opt(c, &sql, &one),
        read::query(
            c,
            "SELECT user_id FROM poll_voters WHERE app_id = $1 AND room_no = $2 AND poll_no = $3
             ORDER BY user_id COLLATE \"C\"",
            &keys,
        )
    );
    let Some(r) = found? else {
        return Ok(None);
    };
    let mut v = view(&r, room)?;
    v.voters = voters?
        .iter()
        .map(|r| get(r, 0).map(UserId))
        .collect::<StoreResult<_>>()?;
    Ok(Some(v))
}

/// The count of a member's alerts in their room `m` (aliases `m` for members, with
/// `$now` the moment), for the room listing; 0 unless they are joined.
pub fn alerts_count_sql(now: &str) -> String {
    format!(
        "CASE WHEN m.state <> 'joined' THEN 0 ELSE (
             SELECT COUNT(*) FROM alerts a
             JOIN polls p ON p.app_id = a.app_id AND p.room_no = a.room_no
                 AND p.number = a.poll_no
             WHERE a.app_id = m.app_id AND a.user_id = m.user_id AND a.room_no = m.room_no
               AND NOT p.closed AND (p.closes_at IS NULL OR p.closes_at > {now})) END"
    )
}

pub async fn alerts(
    c: &Client,
    app: AppId,
    user: &UserId,
    now: Timestamp,
    after: Option<(RoomNumber, PollNumber)>,
    limit: usize,
) -> StoreResult<Page<Alert>> {
    let sql = format!(
        "SELECT a.room_no, p.number, p.kind, p.meetup_no, p.question, p.closes_at, p.created_at
         FROM alerts a
         JOIN polls p ON p.app_id = a.app_id AND p.room_no = a.room_no AND p.number = a.poll_no
         JOIN members m ON m.app_id = a.app_id AND m.room_no = a.room_no
             AND m.user_id = a.user_id AND m.state = 'joined'
         JOIN rooms r ON r.app_id = a.app_id AND r.number = a.room_no AND NOT r.deleted
         WHERE a.app_id = $1 AND a.user_id = $2 AND NOT p.closed
           AND (p.closes_at IS NULL OR p.closes_at > $3)
           AND ($4::BIGINT IS NULL OR (a.room_no, a.poll_no) > ($4, $5))
         ORDER BY a.room_no, a.poll_no LIMIT {}",
        limit + 1
    );
    let (room, number) = after.map_or((None, 0), |(r, p)| (Some(r.0), p.0));
    let found = read::query(c, &sql, &[&app.0, &user.as_str(), &now.0, &room, &number]).await?;
    let has_more = found.len() > limit;
    let mut rows = Vec::with_capacity(found.len().min(limit));
    for r in found.iter().take(limit) {
        rows.push(Alert {
            kind: PollKind::parse(get(r, 2)?)
                .ok_or_else(|| bad("kind"))?
                .alert(),
            room: RoomNumber(get(r, 0)?),
            poll: PollNumber(get(r, 1)?),
            meetup: get::<Option<i64>>(r, 3)?.map(MeetupNumber),
            question: get(r, 4)?,
            closes_at: get::<Option<i64>>(r, 5)?.map(Timestamp),
            created_at: Timestamp(get(r, 6)?),
        });
    }
    Ok(Page { rows, has_more })
}

pub async fn due_polls(
    c: &Client,
    now: Timestamp,
    limit: usize,
) -> StoreResult<Vec<(AppId, RoomNumber, PollNumber)>> {
    let found = read::query(
        c,
        &format!(
            "SELECT p.app_id, p.room_no, p.number FROM polls p
             JOIN rooms r ON r.app_id = p.app_id AND r.number = p.room_no AND NOT r.deleted
             WHERE p.closes_at <= $1 AND NOT p.closed
             ORDER BY p.closes_at, p.app_id, p.room_no, p.number LIMIT {limit}"
        ),
        &[&now.0],
    )
    .await?;
    found
        .iter()
        .map(|r| {
            Ok((
                AppId(get(r, 0)?),
                RoomNumber(get(r, 1)?),
                PollNumber(get(r, 2)?),
            ))
        })
        .collect()
}
