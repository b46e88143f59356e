//! Meetups and RSVPs: their rows, what the rules read of them inside the writer's
//! transaction (under the room's lock, see `writer`; once each, then known, see `planning`),
//! and the readers' queries. Their projection is `projection/meetups.rs`; the writer's
//! set-based equivalent is `plans`.

use crate::conn::Conn;
use crate::read;
use crate::rows::get;
use confab_core::error::StoreError;
use confab_core::ids::{AppId, MeetupNumber, RoomNumber, Timestamp, UserId};
use confab_core::meetups::{Meetup, MeetupQuery, MeetupView, Rsvp, RsvpCounts};
use confab_core::model::Page;
use confab_core::store::StoreResult;
use deadpool_postgres::Client;
use tokio_postgres::Row;

/// 9 columns; `meetup_at` reads them.
const MEETUP_COLS: &str = "number, name, location, takes_place_on, image_url, organizer, \
    created_at, updated_at, cancelled";
const MEETUP_WIDTH: usize = 9;

fn meetup_at(r: &Row, o: usize) -> StoreResult<Meetup> {
    Ok(Meetup {
        number: MeetupNumber(get(r, o)?),
        name: get(r, o + 1)?,
        location: get(r, o + 2)?,
        takes_place_on: Timestamp(get(r, o + 3)?),
        image_url: get(r, o + 4)?,
        organizer: UserId(get(r, o + 5)?),
        created_at: Timestamp(get(r, o + 6)?),
        updated_at: Timestamp(get(r, o + 7)?),
        cancelled: get(r, o + 8)?,
    })
}

fn rsvp(s: &str) -> StoreResult<Rsvp> {
    Rsvp::parse(s).ok_or_else(|| StoreError::Internal("unexpected RSVP in a stored row".into()))
}

// The writer's reads.

pub fn tx_meetup(
    c: &mut Conn,
    app: AppId,
    room: RoomNumber,
    number: MeetupNumber,
) -> StoreResult<Option<Meetup>> {
    c.opt(
        &format!(
            "SELECT {MEETUP_COLS} FROM meetups WHERE app_id = $1 AND room_no = $2 AND number = $3"
        ),
        &[&app.0, &room.0, &number.0],
    )?
    .map(|r| meetup_at(&r, 0))
    .transpose()
}

pub fn tx_last_number(c: &mut Conn, app: AppId, room: RoomNumber) -> StoreResult<MeetupNumber> {
    let r = c.one(
        "SELECT COALESCE(MAX(number), 0) FROM meetups WHERE app_id = $1 AND room_no = $2",
        &[&app.0, &room.0],
    )?;
    Ok(MeetupNumber(get(&r, 0)?))
}

pub fn tx_rsvp(
    c: &mut Conn,
    app: AppId,
    room: RoomNumber,
    meetup: MeetupNumber,
    user: &UserId,
) -> StoreResult<Rsvp> {
    match c.opt(
        "SELECT rsvp FROM rsvps
         WHERE app_id = $1 AND room_no = $2 AND meetup_no = $3 AND user_id = $4",
        &[&app.0, &room.0, &meetup.0, &user.as_str()],
    )? {
        Some(r) => rsvp(get(&r, 0)?),
        None => Ok(Rsvp::None),
    }
}

/// Every answer to the meetup (a missing user: `none`).
pub fn tx_answers(
    c: &mut Conn,
    app: AppId,
    room: RoomNumber,
    meetup: MeetupNumber,
) -> StoreResult<Vec<(UserId, Rsvp)>> {
    c.query(
        "SELECT user_id, rsvp FROM rsvps WHERE app_id = $1 AND room_no = $2 AND meetup_no = $3",
        &[&app.0, &room.0, &meetup.0],
    )?
    .iter()
    .map(|r| Ok((UserId(get(r, 0)?), rsvp(get(r, 1)?)?)))
    .collect()
}

// The readers' queries.

/// Meetups as the viewer (`$1`) sees them, in `app` (`$2`): the room (column 0), the
/// meetup, the viewer's answer and the counts of every answer among joined members (`none`
/// is the joined members without another answer).
fn views_sql(join: &str, filter: &str, order_limit: &str) -> String {
    format!(
        "SELECT e.room_no, {cols}, COALESCE(mine.rsvp, 'none'), n.yes, n.no, n.maybe,
             r.member_count
         FROM meetups e
         JOIN rooms r ON r.app_id = e.app_id AND r.number = e.room_no
         {join}
         LEFT JOIN rsvps mine ON mine.app_id = e.app_id AND mine.room_no = e.room_no
             AND mine.meetup_no = e.number AND mine.user_id = $1
         CROSS JOIN LATERAL (
             SELECT COUNT(*) FILTER (WHERE v.rsvp = 'yes') AS yes,
                 COUNT(*) FILTER (WHERE v.rsvp = 'no') AS no,
                 COUNT(*) FILTER (WHERE v.rsvp = 'maybe') AS maybe
             FROM rsvps v
             JOIN members m ON m.app_id = v.app_id AND m.room_no = v.room_no
                 AND m.user_id = v.user_id AND m.state = 'joined'
             WHERE v.app_id = e.app_id AND v.room_no = e.room_no AND v.meetup_no = e.number
         ) n
         WHERE e.app_id = $2 AND {filter}
         {order_limit}",
        cols = crate::rows::prefixed(MEETUP_COLS, "e"),
    )
}

fn view(r: &Row) -> StoreResult<MeetupView> {
    let o = 1 + MEETUP_WIDTH;
    let (yes, no, maybe): (i64, i64, i64) = (get(r, o + 1)?, get(r, o + 2)?, get(r, o + 3)?);
    let joined: i64 = get(r, o + 4)?;
    Ok(MeetupView {
        room: RoomNumber(get(r, 0)?),
        meetup: meetup_at(r, 1)?,
        rsvp: rsvp(get(r, o)?)?,
        counts: RsvpCounts {
            yes,
            no,
            maybe,
            none: (joined - yes - no - maybe).max(0),
        },
    })
}

fn page(found: Vec<Row>, limit: usize) -> StoreResult<Page<MeetupView>> {
    let has_more = found.len() > limit;
    let rows = found
        .iter()
        .take(limit)
        .map(view)
        .collect::<StoreResult<_>>()?;
    Ok(Page { rows, has_more })
}

pub async fn meetups(
    c: &Client,
    app: AppId,
    room: RoomNumber,
    viewer: &UserId,
    q: MeetupQuery,
    limit: usize,
) -> StoreResult<Page<MeetupView>> {
    let sql = views_sql(
        "",
        "e.room_no = $3 AND (NOT $4 OR (NOT e.cancelled AND e.takes_place_on >= $5))
           AND ($6::BIGINT IS NULL OR (e.takes_place_on, e.number) > ($6, $7))",
        &format!("ORDER BY e.takes_place_on, e.number LIMIT {}", limit + 1),
    );
    let (at, number) = q.after.map_or((None, 0), |(t, n)| (Some(t.0), n.0));
    let found = read::query(
        c,
        &sql,
        &[
            &viewer.as_str(),
            &app.0,
            &room.0,
            &q.upcoming,
            &q.now.0,
            &at,
            &number,
        ],
    )
    .await?;
    page(found, limit)
}

pub async fn meetup(
    c: &Client,
    app: AppId,
    room: RoomNumber,
    number: MeetupNumber,
    viewer: &UserId,
) -> StoreResult<Option<MeetupView>> {
    let sql = views_sql("", "e.room_no = $3 AND e.number = $4", "");
    read::opt(c, &sql, &[&viewer.as_str(), &app.0, &room.0, &number.0])
        .await?
        .map(|r| view(&r))
        .transpose()
}

pub async fn my_meetups(
    c: &Client,
    app: AppId,
    user: &UserId,
    now: Timestamp,
    after: Option<(Timestamp, RoomNumber, MeetupNumber)>,
    limit: usize,
) -> StoreResult<Page<MeetupView>> {
    let sql = views_sql(
        "JOIN members me ON me.app_id = e.app_id AND me.room_no = e.room_no
             AND me.user_id = $1 AND me.state = 'joined'",
        "NOT r.deleted AND NOT e.cancelled AND e.takes_place_on >= $3
           AND ($4::BIGINT IS NULL OR (e.takes_place_on, e.room_no, e.number) > ($4, $5, $6))",
        &format!(
            "ORDER BY e.takes_place_on, e.room_no, e.number LIMIT {}",
            limit + 1
        ),
    );
    let (at, room, number) = after.map_or((None, 0, 0), |(t, r, n)| (Some(t.0), r.0, n.0));
    let found = read::query(
        c,
        &sql,
        &[&user.as_str(), &app.0, &now.0, &at, &room, &number],
    )
    .await?;
    page(found, limit)
}
