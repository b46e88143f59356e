//! The event log integrations read: gapless per app, and free of deleted texts.

use super::{app_with_users, group, send, snapshot, user, whole_log};
use crate::command::{Command, Outcome};
use crate::command::{DeleteMessage, EditMessage};
use crate::error::StoreError;
use crate::ids::Offset;
use crate::model::Visibility;
use crate::store::Store;
use std::sync::Arc;

/// Each app's log has offsets 1..n with no gap, and no event of another app.
pub async fn event_log_is_gapless_per_app(store: Arc<dyn Store>) {
    let a = app_with_users(&store, "a", 2).await;
    let b = app_with_users(&store, "b", 2).await;
    let ra = group(&store, a, "u0", &["u1"], Visibility::Public).await;
    let rb = group(&store, b, "u0", &["u1"], Visibility::Public).await;
    for i in 0..30 {
        store
            .execute(send(a, "u0", ra, &format!("a{i}")))
            .await
            .expect("send a");
        store
            .execute(send(b, "u1", rb, &format!("b{i}")))
            .await
            .expect("send b");
    }
    for app in [a, b] {
        let mut after = Offset(0);
        let mut offsets = Vec::new();
        loop {
            let page = store.events(app, after, 7).await.expect("events");
            for e in &page.rows {
                assert_eq!(e.app, app);
                offsets.push(e.offset.0);
            }
            match page.rows.last() {
                Some(last) if page.has_more => after = last.offset,
                _ => break,
            }
        }
        let want: Vec<i64> = (1..=offsets.len() as i64).collect();
        assert_eq!(offsets, want);
    }
}

/// A deleted message's text is gone from the log too (its post and its edits), other texts
/// stay, and a rebuild gives the same read models.
pub async fn deleted_text_leaves_the_log(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "r", 2).await;
    let room = group(&store, app, "u0", &["u1"], Visibility::Private).await;
    let posted = |out: StoreResultOutcome| match out {
        Ok(Outcome::Item { item, .. }) => item.seq,
        other => panic!("expected an item, got {other:?}"),
    };
    let doomed = posted(store.execute(send(app, "u0", room, "first zebra")).await);
    let kept = posted(store.execute(send(app, "u1", room, "kept words")).await);
    store
        .execute(Command::Edit(EditMessage {
            app,
            actor: user("u0"),
            room,
            seq: doomed,
            text: "second zebra".into(),
        }))
        .await
        .expect("edit");
    store
        .execute(Command::Delete(DeleteMessage {
            app,
            actor: user("u0"),
            room,
            seq: doomed,
        }))
        .await
        .expect("delete");
    let log = format!("{:?}", whole_log(&store, app).await);
    assert!(
        !log.contains("zebra"),
        "deleted text left in the log: {log}"
    );
    assert!(log.contains("kept words"), "{log}");
    let item = store
        .item(app, room, doomed)
        .await
        .expect("item")
        .expect("tombstone");
    assert!(item.deleted && item.text.is_none(), "{item:?}");
    assert!(
        store.item(app, room, kept).await.expect("item").is_some(),
        "the other message stays"
    );
    let live = snapshot(&store, app).await;
    store.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    assert_eq!(live, snapshot(&store, app).await);
}

type StoreResultOutcome = Result<Outcome, StoreError>;
