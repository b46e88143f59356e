//! Mapping between SQLite rows and the domain's read models.

use confab_core::ids::{AppId, Pos, RoomNumber, Seq, Timestamp, UserId};
use confab_core::model::{
    App, AppKeys, Item, ItemKind, Member, MemberState, Role, Room, RoomKind, User, Visibility,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

pub const APP_COLS: &str = "id, name, token, created_at, updated_at, key_id";
pub const KEYS_COLS: &str = "id, token, signing_key, key_id";
pub const USER_COLS: &str =
    "user_id, name, image_url, email, created_at, updated_at, last_login_at, last_seen_at";
pub const ROOM_COLS: &str = "number, kind, name, image_url, visibility, alias, creator, created_at, \
    updated_at, member_count, messages_count, last_seq, last_pos, deleted, direct_key, id, activity";
pub const MEMBER_COLS: &str = "user_id, role, state, read_seq, updated_at, since";
pub const ITEM_COLS: &str = "seq, pos, kind, sender, text, reply_to, reply_count, created_at, \
    edited_at, deleted, announcement, client_id";

pub fn bad(col: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        format!("unexpected {what}").into(),
    )
}

pub fn app(r: &Row<'_>) -> rusqlite::Result<App> {
    Ok(App {
        id: AppId(r.get(0)?),
        name: r.get(1)?,
        token: r.get(2)?,
        created_at: Timestamp(r.get(3)?),
        updated_at: Timestamp(r.get(4)?),
        key_id: r.get(5)?,
    })
}

pub fn keys(r: &Row<'_>) -> rusqlite::Result<AppKeys> {
    Ok(AppKeys {
        id: AppId(r.get(0)?),
        token: r.get(1)?,
        signing_key: r.get(2)?,
        key_id: r.get(3)?,
    })
}

pub fn user(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(r.get(0)?),
        name: r.get(1)?,
        image_url: r.get(2)?,
        email: r.get(3)?,
        created_at: Timestamp(r.get(4)?),
        updated_at: Timestamp(r.get(5)?),
        last_login_at: r.get::<_, Option<i64>>(6)?.map(Timestamp),
        last_seen_at: r.get::<_, Option<i64>>(7)?.map(Timestamp),
    })
}

/// A room row with its internal id, direct pair and activity key.
pub struct RoomRow {
    pub room: Room,
    pub direct: Option<(UserId, UserId)>,
    pub id: i64,
    pub activity: i64,
}

pub fn room(r: &Row<'_>) -> rusqlite::Result<RoomRow> {
    let kind = match r.get_ref(1)?.as_str()? {
        "direct" => RoomKind::Direct,
        "group" => RoomKind::Group,
        _ => return Err(bad(1, "room kind")),
    };
    let visibility = match r.get_ref(4)?.as_str()? {
        "public" => Visibility::Public,
        "private" => Visibility::Private,
        _ => return Err(bad(4, "visibility")),
    };
    let direct = r.get::<_, Option<String>>(14)?.and_then(|k| {
        k.split_once('\n')
            .map(|(a, b)| (UserId(a.to_owned()), UserId(b.to_owned())))
    });
    Ok(RoomRow {
        room: Room {
            number: RoomNumber(r.get(0)?),
            kind,
            name: r.get(2)?,
            image_url: r.get(3)?,
            visibility,
            alias: r.get(5)?,
            creator: r.get::<_, Option<String>>(6)?.map(UserId),
            created_at: Timestamp(r.get(7)?),
            updated_at: Timestamp(r.get(8)?),
            member_count: r.get(9)?,
            messages_count: r.get(10)?,
            last_seq: Seq(r.get(11)?),
            last_pos: Pos(r.get(12)?),
            deleted: r.get(13)?,
        },
        direct,
        id: r.get(15)?,
        activity: r.get(16)?,
    })
}

pub fn member(r: &Row<'_>) -> rusqlite::Result<Member> {
    member_at(r, 0)
}

pub fn member_at(r: &Row<'_>, o: usize) -> rusqlite::Result<Member> {
    Ok(Member {
        user: UserId(r.get(o)?),
        role: Role::parse(r.get_ref(o + 1)?.as_str()?).ok_or_else(|| bad(o + 1, "role"))?,
        state: MemberState::parse(r.get_ref(o + 2)?.as_str()?)
            .ok_or_else(|| bad(o + 2, "member state"))?,
        read_seq: Seq(r.get(o + 3)?),
        updated_at: Timestamp(r.get(o + 4)?),
        since: Pos(r.get(o + 5)?),
    })
}

pub fn item(r: &Row<'_>) -> rusqlite::Result<Item> {
    item_at(r, 0)
}

pub fn item_at(r: &Row<'_>, o: usize) -> rusqlite::Result<Item> {
    let kind = match r.get_ref(o + 2)?.as_str()? {
        "message" => ItemKind::Message,
        "announcement" => ItemKind::Announcement,
        _ => return Err(bad(o + 2, "item kind")),
    };
    let announcement = r
        .get::<_, Option<String>>(o + 10)?
        .and_then(|s| serde_json::from_str(&s).ok());
    Ok(Item {
        seq: Seq(r.get(o)?),
        pos: Pos(r.get(o + 1)?),
        kind,
        sender: r.get::<_, Option<String>>(o + 3)?.map(UserId),
        text: r.get(o + 4)?,
        reply_to: r.get::<_, Option<i64>>(o + 5)?.map(Seq),
        reply_count: r.get(o + 6)?,
        created_at: Timestamp(r.get(o + 7)?),
        edited_at: r.get::<_, Option<i64>>(o + 8)?.map(Timestamp),
        deleted: r.get(o + 9)?,
        announcement,
        client_id: r.get(o + 11)?,
    })
}

/// The largest seq an item key holds; no room gets that many items.
pub const MAX_SEQ: i64 = 0xFFFF_FFFF;

/// The key of an item: a room's items are one contiguous range of ids. A seq outside
/// `0..=MAX_SEQ` is clamped to the range's end rather than wrapped into another item's key, so
/// range bounds stay right; exact lookups refuse such seqs first (see `item_by_seq`).
pub fn item_key(room_id: i64, seq: i64) -> i64 {
    (room_id << 32) | seq.clamp(0, MAX_SEQ)
}

pub fn room_by_number(
    conn: &Connection,
    app: AppId,
    number: RoomNumber,
) -> rusqlite::Result<Option<RoomRow>> {
    conn.prepare_cached(&format!(
        "SELECT {ROOM_COLS} FROM rooms WHERE app_id = ?1 AND number = ?2"
    ))?
    .query_row(params![app.0, number.0], room)
    .optional()
}

pub fn room_id(conn: &Connection, app: AppId, number: RoomNumber) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM rooms WHERE app_id = ?1 AND number = ?2")?
        .query_row(params![app.0, number.0], |r| r.get(0))
        .optional()
}

pub fn item_by_seq(conn: &Connection, room_id: i64, seq: Seq) -> rusqlite::Result<Option<Item>> {
    if !(1..=MAX_SEQ).contains(&seq.0) {
        return Ok(None);
    }
    conn.prepare_cached(&format!("SELECT {ITEM_COLS} FROM items WHERE id = ?1"))?
        .query_row(params![item_key(room_id, seq.0)], item)
        .optional()
}

pub fn member_of(
    conn: &Connection,
    room_id: i64,
    user: &UserId,
) -> rusqlite::Result<Option<Member>> {
    conn.prepare_cached(&format!(
        "SELECT {MEMBER_COLS} FROM members WHERE room_id = ?1 AND user_id = ?2"
    ))?
    .query_row(params![room_id, user.as_str()], member)
    .optional()
}

pub fn user_by_id(conn: &Connection, app: AppId, user: &UserId) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM users WHERE app_id = ?1 AND user_id = ?2"
    ))?
    .query_row(params![app.0, user.as_str()], self::user)
    .optional()
}

pub fn role_str(r: Role) -> &'static str {
    r.as_str()
}

pub fn kind_str(k: RoomKind) -> &'static str {
    k.as_str()
}

pub fn visibility_str(v: Visibility) -> &'static str {
    v.as_str()
}

pub use confab_core::model::direct_key;
