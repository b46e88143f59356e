//! Sends under concurrency: gapless seqs, refusals that change nothing, idempotent client
//! ids, and seqs that name no message.

use super::{app_with_users, group, send, user, whole_log};
use crate::command::{Command, Decision, Outcome};
use crate::command::{Decide, DeleteMessage, EditMessage, SendMessage};
use crate::error::StoreError;
use crate::ids::{Offset, Seq};
use crate::model::{HistoryQuery, Visibility};
use crate::store::Store;
use std::sync::Arc;

/// Many concurrent sends get distinct seqs that, with the room's announcements, fill 1..n.
pub async fn seqs_are_gapless_under_concurrency(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "a", 4).await;
    let room = group(&store, app, "u0", &["u1", "u2", "u3"], Visibility::Private).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let who = format!("u{}", i % 4);
            match store.execute(send(app, &who, room, &format!("m{i}"))).await {
                Ok(Outcome::Item {
                    item,
                    created: true,
                }) => item.seq,
                other => panic!("send failed: {other:?}"),
            }
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.expect("task"));
    }
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 200, "every send got its own seq");
    let access = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room");
    let (items, _, _) = store
        .history(
            app,
            room,
            HistoryQuery::Range(Seq(1), access.room.last_seq),
            1000,
        )
        .await
        .expect("history");
    let got: Vec<i64> = items.iter().map(|i| i.seq.0).collect();
    let want: Vec<i64> = (1..=access.room.last_seq.0).collect();
    assert_eq!(got, want, "timeline is gapless");
    assert_eq!(access.room.messages_count, 200);
}

/// A refused command appends nothing and changes no read model, even when it shares a
/// transaction with accepted ones.
pub async fn refused_commands_change_nothing(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "a", 3).await;
    let room = group(&store, app, "u0", &["u1"], Visibility::Private).await;
    let before = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room")
        .room;
    let events_before = store
        .events(app, Offset(0), 10_000)
        .await
        .expect("events")
        .rows
        .len();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        // u2 is not a member: every one of its sends must be refused; u1's go through.
        let who = if i % 2 == 0 { "u2" } else { "u1" };
        tasks.push(tokio::spawn(async move {
            (who, store.execute(send(app, who, room, "x")).await)
        }));
    }
    for t in tasks {
        let (who, r) = t.await.expect("task");
        match (who, r) {
            ("u2", Err(StoreError::Domain(e))) => {
                assert_eq!(e.code, crate::ErrorCode::RoomNotFound)
            }
            ("u1", Ok(Outcome::Item { .. })) => {}
            other => panic!("unexpected result {other:?}"),
        }
    }
    let after = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room")
        .room;
    assert_eq!(after.last_seq.0, before.last_seq.0 + 25);
    assert_eq!(after.last_pos.0, before.last_pos.0 + 25);
    let events_after = store
        .events(app, Offset(0), 10_000)
        .await
        .expect("events")
        .rows
        .len();
    assert_eq!(events_after, events_before + 25);
    let kick_owner = Command::Decide(Decide {
        app,
        actor: user("u1"),
        room,
        target: user("u0"),
        decision: Decision::Kick,
    });
    assert!(store.execute(kick_owner).await.is_err());
    let unchanged = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room")
        .room;
    assert_eq!(unchanged, after);
}

/// The same client id twice gives the same item; with another text it is refused.
pub async fn idempotent_sends(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "a", 2).await;
    let room = group(&store, app, "u0", &["u1"], Visibility::Public).await;
    let cmd = |text: &str| {
        Command::Send(SendMessage {
            app,
            actor: Some(user("u1")),
            room,
            text: text.into(),
            reply_to: None,
            client_id: Some("c-1".into()),
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let c = cmd("hello");
        tasks.push(tokio::spawn(async move { store.execute(c).await }));
    }
    let mut seqs = Vec::new();
    let mut created = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(Outcome::Item { item, created: c }) => {
                seqs.push(item.seq);
                created += usize::from(c);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    seqs.dedup();
    assert_eq!(seqs.len(), 1, "one item for one client id");
    assert_eq!(created, 1, "created exactly once");
    let err = store.execute(cmd("other text")).await.expect_err("refused");
    assert!(
        matches!(err, StoreError::Domain(ref e) if e.code == crate::ErrorCode::ClientIdReused),
        "{err:?}"
    );
    // Another sender may use the same client id for their own message.
    let other = Command::Send(SendMessage {
        app,
        actor: Some(user("u0")),
        room,
        text: "hi".into(),
        reply_to: None,
        client_id: Some("c-1".into()),
    });
    assert!(matches!(
        store.execute(other).await,
        Ok(Outcome::Item { created: true, .. })
    ));
}

/// A seq is a number, not its low 32 bits: message `2^32 + n` is not message `n`, and nothing
/// names it, so reads find nothing and edits, deletes and replies are refused without an event.
pub async fn seqs_past_32_bits_name_nothing(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "w", 1).await;
    let room = group(&store, app, "u0", &[], Visibility::Private).await;
    let Ok(Outcome::Item { item, .. }) = store.execute(send(app, "u0", room, "original")).await
    else {
        panic!("send failed")
    };
    let before = whole_log(&store, app).await.len();
    for far in [item.seq.0 + (1 << 32), item.seq.0 - (1 << 32), i64::MAX, -1] {
        let far = Seq(far);
        assert_eq!(store.item(app, room, far).await.expect("item"), None);
        let edit = Command::Edit(EditMessage {
            app,
            actor: user("u0"),
            room,
            seq: far,
            text: "hijacked".into(),
        });
        let delete = Command::Delete(DeleteMessage {
            app,
            actor: user("u0"),
            room,
            seq: far,
        });
        let reply = Command::Send(SendMessage {
            app,
            actor: Some(user("u0")),
            room,
            text: "reply".into(),
            reply_to: Some(far),
            client_id: None,
        });
        for cmd in [edit, delete, reply] {
            match store.execute(cmd).await {
                Err(StoreError::Domain(_)) => {}
                other => panic!("seq {far:?} should name nothing, got {other:?}"),
            }
        }
    }
    let item_now = store.item(app, room, item.seq).await.expect("item");
    assert_eq!(item_now.and_then(|i| i.text).as_deref(), Some("original"));
    assert_eq!(
        whole_log(&store, app).await.len(),
        before,
        "no event for a refusal"
    );
}
