//! What gateways read to find changes the bus lost: room heads (the batch read of rooms'
//! last positions) and the position of each member's joining.

use super::{app_with_users, group, send};
use crate::command::Command;
use crate::ids::{Pos, RoomNumber};
use crate::model::{MemberState, Role, Visibility};
use crate::store::Store;
use std::sync::Arc;

/// The last position the store has for a room, from its changes.
async fn last_change(store: &Arc<dyn Store>, app: crate::ids::AppId, room: RoomNumber) -> Pos {
    let mut since = Pos(0);
    loop {
        let page = store.changes(app, room, since, 500).await.expect("changes");
        if let Some(c) = page.rows.last() {
            since = c.pos;
        }
        if !page.has_more {
            return since;
        }
    }
}

/// `heads` answers every existing room's last position in one call, follows writes, keeps a
/// deleted room (its deletion is its last change), leaves out unknown rooms and other apps'.
pub async fn room_heads_follow_writes(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "heads", 2).await;
    let other = app_with_users(&store, "heads-other", 1).await;
    let busy = group(&store, app, "u0", &["u1"], Visibility::Private).await;
    let quiet = group(&store, app, "u0", &[], Visibility::Private).await;
    let gone = group(&store, app, "u0", &[], Visibility::Public).await;
    let elsewhere = group(&store, other, "u0", &[], Visibility::Private).await;
    for i in 0..7 {
        store
            .execute(send(app, "u1", busy, &format!("m{i}")))
            .await
            .expect("send");
    }
    store
        .execute(Command::DeleteRoom {
            app,
            actor: crate::ids::UserId("u0".into()),
            room: gone,
        })
        .await
        .expect("delete");
    let unknown = RoomNumber(9_999);
    let mut heads = store
        .heads(app, &[busy, quiet, gone, unknown])
        .await
        .expect("heads");
    heads.sort();
    let want = vec![
        (busy, last_change(&store, app, busy).await),
        (quiet, last_change(&store, app, quiet).await),
        (gone, last_change(&store, app, gone).await),
    ];
    assert_eq!(heads, want);
    assert!(want.iter().all(|(_, p)| p.0 > 0), "{want:?}");
    // The room numbers of another app name that app's rooms only.
    assert_eq!(store.heads(other, &[unknown]).await.expect("heads"), vec![]);
    let theirs = store.heads(other, &[elsewhere]).await.expect("heads");
    assert_eq!(
        theirs,
        vec![(elsewhere, last_change(&store, other, elsewhere).await)]
    );
    // A write moves the head at once.
    store
        .execute(send(app, "u0", quiet, "now"))
        .await
        .expect("send");
    let after = store.heads(app, &[quiet]).await.expect("heads");
    assert_eq!(after, vec![(quiet, Pos(want[1].1.0 + 1))]);
    assert_eq!(store.heads(app, &[]).await.expect("heads"), vec![]);
}

/// A member's `since` is the position of the change that gave them their state: their
/// joining while joined (a role change keeps it), their leaving once gone, a new joining after.
pub async fn member_since_is_the_joining(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "since", 3).await;
    let room = group(&store, app, "u0", &["u1"], Visibility::Public).await;
    let actor = |u: &str| crate::ids::UserId(u.into());
    let since_of = |state: MemberState| {
        let store = store.clone();
        async move {
            let page = store
                .rooms_of_user(app, &actor("u2"), state, None, 10)
                .await
                .expect("rooms of user");
            let found = page.rows.iter().find(|s| s.room.number == room);
            found.map(|s| s.member.since)
        }
    };
    let join = |store: Arc<dyn Store>| async move {
        store
            .execute(Command::Join {
                app,
                actor: actor("u2"),
                room,
            })
            .await
            .expect("join");
        last_change(&store, app, room).await
    };
    let joined = join(store.clone()).await;
    assert_eq!(since_of(MemberState::Joined).await, Some(joined));
    store
        .execute(send(app, "u2", room, "hello"))
        .await
        .expect("send");
    store
        .execute(Command::SetRole(crate::command::SetRole {
            app,
            actor: actor("u0"),
            room,
            target: actor("u2"),
            role: Role::Admin,
        }))
        .await
        .expect("set role");
    assert_eq!(since_of(MemberState::Joined).await, Some(joined));
    store
        .execute(Command::Leave {
            app,
            actor: actor("u2"),
            room,
        })
        .await
        .expect("leave");
    let left = last_change(&store, app, room).await;
    assert_eq!(since_of(MemberState::Left).await, Some(left));
    assert_eq!(since_of(MemberState::Joined).await, None);
    let again = join(store.clone()).await;
    assert!(
        again > left && left > joined,
        "{joined:?} {left:?} {again:?}"
    );
    assert_eq!(since_of(MemberState::Joined).await, Some(again));
}

/// `joins` reads an app's joinings from its log: every membership that became `joined` (a
/// room's creation, a join; not a role change, a leave or an invitation), in log order, with
/// the position of the joining; none of another app; a read goes no further than its span and
/// on from where the last one stopped, so reading span by span finds what one read finds.
pub async fn joins_follow_the_log(store: Arc<dyn Store>) {
    use crate::ids::{Offset, UserId};
    let app = app_with_users(&store, "joinings", 4).await;
    let other = app_with_users(&store, "joinings-other", 2).await;
    let actor = |u: &str| UserId(u.into());
    let start = store.joins(app, None, 10).await.expect("joins").next;
    assert!(start.0 > 0, "the app's creation and users are in its log");
    let room = group(&store, app, "u0", &["u1"], Visibility::Public).await;
    group(&store, other, "u0", &["u1"], Visibility::Public).await;
    store
        .execute(send(app, "u1", room, "hello"))
        .await
        .expect("send");
    store
        .execute(Command::Join {
            app,
            actor: actor("u2"),
            room,
        })
        .await
        .expect("join");
    let u2_joined = last_change(&store, app, room).await;
    store
        .execute(Command::SetRole(crate::command::SetRole {
            app,
            actor: actor("u0"),
            room,
            target: actor("u2"),
            role: Role::Admin,
        }))
        .await
        .expect("set role");
    store
        .execute(Command::Leave {
            app,
            actor: actor("u1"),
            room,
        })
        .await
        .expect("leave");
    store
        .execute(Command::Join {
            app,
            actor: actor("u3"),
            room,
        })
        .await
        .expect("join");
    let u3_joined = last_change(&store, app, room).await;
    let head = store.joins(app, None, 10).await.expect("joins").next;

    let all = store.joins(app, Some(start), 10_000).await.expect("joins");
    assert_eq!((all.next, all.has_more), (head, false));
    let found: Vec<(String, Pos)> = all.rows.iter().map(|j| (j.user.0.clone(), j.pos)).collect();
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(
        found[..2].iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        ["u0", "u1"],
        "the creation's joinings, creator first: {found:?}"
    );
    assert_eq!(
        found[2..],
        [("u2".to_owned(), u2_joined), ("u3".to_owned(), u3_joined)]
    );
    assert!(all.rows.iter().all(|j| j.room == room));
    assert!(all.rows.windows(2).all(|w| w[0].offset < w[1].offset));
    assert!(
        all.rows
            .iter()
            .all(|j| j.offset > start && j.offset <= head)
    );

    // Span by span: each read ends at most `span` on, and together they find the same.
    let mut after = start;
    let mut pieces = Vec::new();
    loop {
        let page = store.joins(app, Some(after), 2).await.expect("joins");
        assert!(page.next.0 <= after.0 + 2 && page.next > after, "{page:?}");
        assert!(
            page.rows
                .iter()
                .all(|j| j.offset > after && j.offset <= page.next)
        );
        pieces.extend(page.rows);
        after = page.next;
        if !page.has_more {
            break;
        }
    }
    assert_eq!((after, pieces), (head, all.rows));

    // Nothing new: nothing found, and the cursor stays; an unknown app has nothing.
    let none = store.joins(app, Some(head), 10).await.expect("joins");
    assert_eq!(
        (none.rows.len(), none.next, none.has_more),
        (0, head, false)
    );
    let ghost = store
        .joins(crate::ids::AppId(9_999), Some(Offset(0)), 10)
        .await
        .expect("joins");
    assert!(ghost.rows.is_empty() && !ghost.has_more);
}
