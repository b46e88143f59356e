//! Membership changes and new rooms in one batch: projected in memory like sends, read back
//! by later commands of the batch, and written as a replay writes them.

use super::common;
use super::{
    Answer, gapless_changes, group_of_four, in_one_batch, item, mark, marker, refused,
    replay_equals_live, send, user,
};
use confab_core::command::{Command, CreateGroup, Decide, Decision, Outcome, SetRole, UpdateRoom};
use confab_core::error::ErrorCode;
use confab_core::ids::{AppId, RoomNumber};
use confab_core::model::{
    HistoryQuery, Item, ItemKind, Member, MemberState, Role, Room, RoomKind, Visibility,
};
use confab_core::search::Scope;

fn member(a: &Answer) -> Member {
    match a {
        Ok(Outcome::Member(m)) => m.clone(),
        other => panic!("expected a membership, got {other:?}"),
    }
}

fn join(app: AppId, who: &str, room: RoomNumber) -> Command {
    Command::Join {
        app,
        actor: user(who),
        room,
    }
}

fn leave(app: AppId, who: &str, room: RoomNumber) -> Command {
    Command::Leave {
        app,
        actor: user(who),
        room,
    }
}

fn set_role(app: AppId, who: &str, room: RoomNumber, target: &str, role: Role) -> Command {
    Command::SetRole(SetRole {
        app,
        actor: user(who),
        room,
        target: user(target),
        role,
    })
}

/// Membership changes are projected in memory too (the member row, the room's member count
/// and position, the announcement) and written with the batch's other rows: later commands
/// must see them (a kicked member cannot send, a rejoined one can; a new admin is preferred
/// as the next owner, who may then change roles), a marker set before a change stays in the
/// row, and the rows written must be those a replay writes one event at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memberships_in_one_batch_read_their_own_writes() {
    let (store, db) = common::fresh().await;
    let app = confab_core::conformance::app_with_users(&store, "j", 5).await;
    let room = group_of_four(&store, app, "open", Visibility::Public).await;
    store
        .execute(send(app, "u1", room, "before", None, None))
        .await
        .expect("before");
    let a = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room");
    assert_eq!(a.room.member_count, 4);
    let next = a.room.last_seq.0 + 1;

    let answers = in_one_batch(
        &db,
        &store,
        app,
        vec![
            /* 0 */ join(app, "u4", room),
            /* 1 */ send(app, "u4", room, "hi", None, None),
            /* 2 */
            Command::Decide(Decide {
                app,
                actor: user("u0"),
                room,
                target: user("u2"),
                decision: Decision::Kick,
            }),
            /* 3 */ send(app, "u2", room, "still here?", None, None),
            /* 4 */ join(app, "u2", room),
            /* 5 */ set_role(app, "u0", room, "u3", Role::Admin),
            /* 6 */ mark(app, "u1", room, next + 1),
            /* 7 */ leave(app, "u0", room),
            /* 8 */ set_role(app, "u3", room, "u1", Role::Admin),
            /* 9 */ send(app, "u0", room, "gone", None, None),
            /* 10 */ mark(app, "u4", room, next + 4),
            /* 11 */ leave(app, "u4", room),
            /* 12 */ join(app, "u0", room),
            /* 13 */ send(app, "u3", room, "new owner here", None, None),
            /* 14 */ mark(app, "u3", room, next + 7),
        ],
    )
    .await;

    let u4 = member(&answers[0]);
    assert_eq!(
        (u4.state, u4.read_seq.0),
        (MemberState::Joined, next),
        "a joiner has read up to their own announcement"
    );
    assert_eq!(item(&answers[1]).0.seq.0, next + 1);
    assert_eq!(member(&answers[2]).state, MemberState::Kicked);
    assert_eq!(refused(&answers[3]), ErrorCode::NotAMember);
    let u2 = member(&answers[4]);
    assert_eq!((u2.state, u2.read_seq.0), (MemberState::Joined, next + 3));
    assert_eq!(member(&answers[5]).role, Role::Admin);
    assert_eq!(marker(&answers[6]), next + 1);
    let u0 = member(&answers[7]);
    assert_eq!((u0.state, u0.role), (MemberState::Left, Role::Member));
    let u1 = member(&answers[8]);
    assert_eq!(
        (u1.role, u1.read_seq.0),
        (Role::Admin, next + 1),
        "u3, the admin, became owner (not u1, who joined first) and keeps u1's marker"
    );
    assert_eq!(refused(&answers[9]), ErrorCode::NotAMember);
    assert_eq!(marker(&answers[10]), next + 4);
    assert_eq!(member(&answers[11]).read_seq.0, next + 4);
    let u0 = member(&answers[12]);
    assert_eq!(
        (u0.state, u0.role, u0.read_seq.0),
        (MemberState::Joined, Role::Member, next + 6)
    );
    assert_eq!(item(&answers[13]).0.seq.0, next + 7);
    assert_eq!(marker(&answers[14]), next + 7);

    // What was written, read back.
    let members = store
        .members(app, room, None, None, 100)
        .await
        .expect("members");
    let mut got: Vec<(String, MemberState, Role, i64)> = members
        .rows
        .iter()
        .map(|m| (m.user.0.clone(), m.state, m.role, m.read_seq.0))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let j = MemberState::Joined;
    assert_eq!(
        got,
        [
            ("u0".into(), j, Role::Member, next + 6),
            ("u1".into(), j, Role::Admin, next + 1),
            ("u2".into(), j, Role::Member, next + 3),
            ("u3".into(), j, Role::Owner, next + 7),
            ("u4".into(), MemberState::Left, Role::Member, next + 4),
        ]
    );
    let a = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room");
    assert_eq!(a.room.member_count, 4);
    assert_eq!(a.room.last_seq.0, next + 7);
    let (items, _, _) = store
        .history(app, room, HistoryQuery::Latest, 100)
        .await
        .expect("history");
    let seqs: Vec<i64> = items.iter().map(|i| i.seq.0).collect();
    assert_eq!(seqs, (1..=next + 7).collect::<Vec<_>>(), "gapless seqs");
    let batch: Vec<&Item> = items.iter().filter(|i| i.seq.0 >= next).collect();
    assert!(
        batch.iter().all(|i| i.created_at == batch[0].created_at),
        "the commands ran in one transaction: {batch:?}"
    );
    let announced: Vec<(i64, &str)> = batch
        .iter()
        .filter(|i| i.kind == ItemKind::Announcement)
        .map(|i| (i.seq.0, i.text.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        announced,
        [
            (next, "u4 joined"),
            (next + 2, "u0 removed u2"),
            (next + 3, "u2 joined"),
            (next + 4, "u0 left"),
            (next + 5, "u4 left"),
            (next + 6, "u0 joined"),
        ]
    );
    gapless_changes(&store, app, room, a.room.last_pos).await;
    // An announcement is not searchable.
    let hits = confab_core::conformance::search_all(&store, app, Scope::Room(room), "joined").await;
    assert!(hits.is_empty(), "{hits:?}");

    // The rows written together equal a replay of the log one event at a time.
    replay_equals_live(&store, &db, app, &["rooms", "members", "items", "events"]).await;
}

fn group(app: AppId, who: Option<&str>, alias: Option<&str>, members: &[&str]) -> Command {
    Command::CreateGroup(CreateGroup {
        app,
        actor: who.map(user),
        name: Some("fresh".into()),
        image_url: None,
        visibility: Visibility::Public,
        alias: alias.map(str::to_owned),
        members: members.iter().map(|m| user(m)).collect(),
    })
}

fn direct(app: AppId, who: &str, with: &str) -> Command {
    Command::CreateDirect {
        app,
        actor: user(who),
        with: user(with),
    }
}

fn room_of(a: &Answer) -> (Room, bool) {
    match a {
        Ok(Outcome::Room { room, created }) => (room.clone(), *created),
        other => panic!("expected a room, got {other:?}"),
    }
}

/// Rooms created and changed in a batch are projected in memory too: later commands find a
/// new room by number, alias and pair before it is written, and see its members, its new
/// name and its timeline; the rows written (the room inserted as created, then moved by
/// what the batch did in it) must be those a replay writes one event at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rooms_created_in_a_batch_are_found_before_they_are_written() {
    let (store, db) = common::fresh().await;
    let app = confab_core::conformance::app_with_users(&store, "r", 5).await;
    let run = async |cmd: Command| room_of(&Ok(store.execute(cmd).await.expect("accepted")));
    run(group(app, Some("u3"), Some("taken"), &[])).await;
    let (old_direct, _) = run(direct(app, "u2", "u0")).await;
    let fresh = RoomNumber(old_direct.number.0 + 1);
    let pair = RoomNumber(fresh.0 + 1);
    let app_chat = RoomNumber(fresh.0 + 2);

    let answers = in_one_batch(
        &db,
        &store,
        app,
        vec![
            /* 0 */ group(app, Some("u0"), Some("fresh"), &["u1", "u2"]),
            /* 1 */ group(app, Some("u1"), Some("fresh"), &[]),
            /* 2 */ group(app, Some("u1"), Some("taken"), &[]),
            /* 3 */ direct(app, "u0", "u1"),
            /* 4 */ direct(app, "u1", "u0"),
            /* 5 */ direct(app, "u0", "u2"),
            /* 6 */
            Command::UpdateRoom(UpdateRoom {
                app,
                actor: user("u0"),
                room: fresh,
                name: Some("renamed".into()),
                image_url: None,
                visibility: None,
            }),
            /* 7 */ send(app, "u1", fresh, "hello fresh", None, None),
            /* 8 */ join(app, "u4", fresh),
            /* 9 */ group(app, None, None, &[]),
            /* 10 */
            Command::UpdateRoom(UpdateRoom {
                app,
                actor: user("u0"),
                room: fresh,
                name: None,
                image_url: Some("https://example.com/fresh.png".into()),
                visibility: None,
            }),
            /* 11 */ mark(app, "u2", fresh, 6),
            /* 12 */ send(app, "u1", pair, "hello pair", None, None),
        ],
    )
    .await;

    let (made, created) = room_of(&answers[0]);
    assert!(created);
    assert_eq!((made.number, made.member_count), (fresh, 3));
    assert_eq!(refused(&answers[1]), ErrorCode::RoomAliasTaken);
    assert_eq!(refused(&answers[2]), ErrorCode::RoomAliasTaken);
    let (d, created) = room_of(&answers[3]);
    assert!(created);
    assert_eq!(
        (d.number, d.kind, d.member_count),
        (pair, RoomKind::Direct, 2)
    );
    let (again, created) = room_of(&answers[4]);
    assert!(!created, "the pair's room made just before is found");
    assert_eq!(again.number, pair);
    let (stored, created) = room_of(&answers[5]);
    assert!(!created, "a pair's room stored before the batch is found");
    assert_eq!(stored.number, old_direct.number);
    let (renamed, _) = room_of(&answers[6]);
    assert_eq!(
        (renamed.name.as_deref(), renamed.last_seq.0),
        (Some("renamed"), 4)
    );
    assert_eq!(item(&answers[7]).0.seq.0, 5);
    assert_eq!(member(&answers[8]).read_seq.0, 6);
    let (chat, created) = room_of(&answers[9]);
    assert!(created);
    assert_eq!(chat.number, app_chat);
    let (pictured, _) = room_of(&answers[10]);
    assert_eq!(
        (pictured.name.as_deref(), pictured.image_url.as_deref()),
        (Some("renamed"), Some("https://example.com/fresh.png"))
    );
    assert_eq!(pictured.member_count, 4);
    assert_eq!(marker(&answers[11]), 6);
    assert_eq!(item(&answers[12]).0.seq.0, 2);

    // What was written, read back.
    let a = store
        .access(app, fresh, Some(&user("u2")))
        .await
        .expect("access")
        .expect("room");
    assert_eq!(a.room, pictured);
    assert_eq!(a.member.expect("member").read_seq.0, 6);
    assert_eq!(
        store.room_by_alias(app, "fresh").await.expect("alias"),
        Some(fresh)
    );
    let (items, _, _) = store
        .history(app, fresh, HistoryQuery::Latest, 100)
        .await
        .expect("history");
    let texts: Vec<(i64, &str)> = items
        .iter()
        .map(|i| (i.seq.0, i.text.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        texts,
        [
            (1, "u0 created the room \"fresh\""),
            (2, "u0 added u1"),
            (3, "u0 added u2"),
            (4, "u0 renamed the room to \"renamed\""),
            (5, "hello fresh"),
            (6, "u4 joined"),
        ]
    );
    let stats = store.app_stats(app).await.expect("stats");
    assert_eq!(stats.rooms_count, 5);

    // The rows written together equal a replay of the log one event at a time.
    replay_equals_live(&store, &db, app, &["rooms", "members", "items", "events"]).await;
}
