//! Room heads: the batch read of rooms' last positions that gateways use to find rooms whose
//! changes the bus lost.

use super::{app_with_users, group, send};
use crate::command::Command;
use crate::ids::{Pos, RoomNumber};
use crate::model::Visibility;
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
