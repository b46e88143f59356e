//! Mapping between PostgreSQL rows and the domain's read models. The writer (`postgres`) and
//! the readers (`tokio-postgres`) share the row type.

use confab_core::error::StoreError;
use confab_core::ids::{AppId, Pos, RoomNumber, Seq, Timestamp, UserId};
use confab_core::model::{
    App, AppKeys, Item, ItemKind, Member, MemberState, Role, Room, RoomKind, User, Visibility,
};
use confab_core::store::StoreResult;
use tokio_postgres::Row;

pub const APP_COLS: &str = "id, name, token, created_at, updated_at, key_id";
pub const KEYS_COLS: &str = "id, token, signing_key, key_id";
pub const USER_COLS: &str =
    "user_id, name, image_url, email, created_at, updated_at, last_login_at, last_seen_at";
/// 16 columns; `room_at` reads them.
pub const ROOM_COLS: &str = "number, kind, name, image_url, visibility, alias, creator, \
    created_at, updated_at, member_count, messages_count, last_seq, last_pos, deleted, \
    direct_key, activity";
pub const ROOM_WIDTH: usize = 16;
/// 6 columns.
pub const MEMBER_COLS: &str = "user_id, role, state, read_seq, updated_at, since";
pub const MEMBER_WIDTH: usize = 6;
/// 12 columns.
pub const ITEM_COLS: &str = "seq, pos, kind, sender, text, reply_to, reply_count, created_at, \
    edited_at, deleted, announcement, client_id";
pub const ITEM_WIDTH: usize = 12;

/// `cols` with every column prefixed by `alias.`.
pub fn prefixed(cols: &str, alias: &str) -> String {
    cols.split(", ")
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bad(what: &str) -> StoreError {
    StoreError::Internal(format!("unexpected {what} in a stored row"))
}

/// Reads column `i`, turning a type mismatch into an internal error.
pub fn get<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> StoreResult<T> {
    r.try_get(i).map_err(crate::fault::pg)
}

pub fn app(r: &Row) -> StoreResult<App> {
    Ok(App {
        id: AppId(get(r, 0)?),
        name: get(r, 1)?,
        token: get(r, 2)?,
        created_at: Timestamp(get(r, 3)?),
        updated_at: Timestamp(get(r, 4)?),
        key_id: get(r, 5)?,
    })
}

pub fn keys(r: &Row) -> StoreResult<AppKeys> {
    Ok(AppKeys {
        id: AppId(get(r, 0)?),
        token: get(r, 1)?,
        signing_key: get(r, 2)?,
        key_id: get(r, 3)?,
    })
}

pub fn user(r: &Row) -> StoreResult<User> {
    user_at(r, 0)
}

pub fn user_at(r: &Row, o: usize) -> StoreResult<User> {
    Ok(User {
        id: UserId(get(r, o)?),
        name: get(r, o + 1)?,
        image_url: get(r, o + 2)?,
        email: get(r, o + 3)?,
        created_at: Timestamp(get(r, o + 4)?),
        updated_at: Timestamp(get(r, o + 5)?),
        last_login_at: get::<Option<i64>>(r, o + 6)?.map(Timestamp),
        last_seen_at: get::<Option<i64>>(r, o + 7)?.map(Timestamp),
    })
}

/// A room row with its direct pair and activity key.
pub struct RoomRow {
    pub room: Room,
    pub direct: Option<(UserId, UserId)>,
    pub activity: i64,
}

pub fn room_at(r: &Row, o: usize) -> StoreResult<RoomRow> {
    let kind = match get::<&str>(r, o + 1)? {
        "direct" => RoomKind::Direct,
        "group" => RoomKind::Group,
        _ => return Err(bad("room kind")),
    };
    let visibility = match get::<&str>(r, o + 4)? {
        "public" => Visibility::Public,
        "private" => Visibility::Private,
        _ => return Err(bad("visibility")),
    };
    let direct = get::<Option<String>>(r, o + 14)?.and_then(|k| {
        k.split_once('\n')
            .map(|(a, b)| (UserId(a.to_owned()), UserId(b.to_owned())))
    });
    Ok(RoomRow {
        room: Room {
            number: RoomNumber(get(r, o)?),
            kind,
            name: get(r, o + 2)?,
            image_url: get(r, o + 3)?,
            visibility,
            alias: get(r, o + 5)?,
            creator: get::<Option<String>>(r, o + 6)?.map(UserId),
            created_at: Timestamp(get(r, o + 7)?),
            updated_at: Timestamp(get(r, o + 8)?),
            member_count: get(r, o + 9)?,
            messages_count: get(r, o + 10)?,
            last_seq: Seq(get(r, o + 11)?),
            last_pos: Pos(get(r, o + 12)?),
            deleted: get(r, o + 13)?,
        },
        direct,
        activity: get(r, o + 15)?,
    })
}

pub fn member_at(r: &Row, o: usize) -> StoreResult<Member> {
    Ok(Member {
        user: UserId(get(r, o)?),
        role: Role::parse(get(r, o + 1)?).ok_or_else(|| bad("role"))?,
        state: MemberState::parse(get(r, o + 2)?).ok_or_else(|| bad("member state"))?,
        read_seq: Seq(get(r, o + 3)?),
        updated_at: Timestamp(get(r, o + 4)?),
        since: Pos(get(r, o + 5)?),
    })
}

pub fn item_at(r: &Row, o: usize) -> StoreResult<Item> {
    let kind = match get::<&str>(r, o + 2)? {
        "message" => ItemKind::Message,
        "announcement" => ItemKind::Announcement,
        _ => return Err(bad("item kind")),
    };
    let announcement =
        get::<Option<String>>(r, o + 10)?.and_then(|s| serde_json::from_str(&s).ok());
    Ok(Item {
        seq: Seq(get(r, o)?),
        pos: Pos(get(r, o + 1)?),
        kind,
        sender: get::<Option<String>>(r, o + 3)?.map(UserId),
        text: get(r, o + 4)?,
        reply_to: get::<Option<i64>>(r, o + 5)?.map(Seq),
        reply_count: get(r, o + 6)?,
        created_at: Timestamp(get(r, o + 7)?),
        edited_at: get::<Option<i64>>(r, o + 8)?.map(Timestamp),
        deleted: get(r, o + 9)?,
        announcement,
        client_id: get(r, o + 11)?,
    })
}

pub fn item(r: &Row) -> StoreResult<Item> {
    item_at(r, 0)
}

pub fn kind_str(k: RoomKind) -> &'static str {
    k.as_str()
}

pub fn visibility_str(v: Visibility) -> &'static str {
    v.as_str()
}

pub use confab_core::model::direct_key;
