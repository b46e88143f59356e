//! Search as a client sees it: found as soon as written, paged newest first, exact among
//! many messages.

use super::{app_with_users, group, send, user};
use crate::command::{Command, Outcome};
use crate::command::{DeleteMessage, EditMessage};
use crate::ids::{AppId, Seq};
use crate::model::Visibility;
use crate::search::{Hit, Query, Scope};
use crate::store::Store;
use std::sync::Arc;

/// Every hit of a query, following cursors to the end (pages of 7, to cross page boundaries).
/// It asks twice: at once, and after background indexing settled; both answers must agree.
pub async fn search_all(store: &Arc<dyn Store>, app: AppId, scope: Scope, q: &str) -> Vec<Hit> {
    let first = search_pages(store, app, scope.clone(), q).await;
    store.settle().await.expect("settle");
    let settled = search_pages(store, app, scope, q).await;
    assert_eq!(first, settled, "search {q:?} before and after indexing");
    settled
}

async fn search_pages(store: &Arc<dyn Store>, app: AppId, scope: Scope, q: &str) -> Vec<Hit> {
    let query = Query::parse(q).expect("query");
    let mut out: Vec<Hit> = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .search(app, scope.clone(), query.clone(), before, 7)
            .await
            .expect("search");
        out.extend(page.rows);
        match out.last() {
            Some(last) if page.has_more => before = Some(last.cursor()),
            _ => return out,
        }
    }
}

fn texts(hits: &[Hit]) -> Vec<(i64, i64, String)> {
    hits.iter()
        .map(|h| {
            (
                h.room.0,
                h.item.seq.0,
                h.item.text.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// A message is found as soon as its send returns; edits and deletes show at once; rooms
/// the user left or that were deleted are not searched; every matching rule holds.
pub async fn search_follows_writes(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "s", 3).await;
    let r1 = group(&store, app, "u0", &["u1"], Visibility::Private).await;
    let r2 = group(&store, app, "u0", &[], Visibility::Private).await;
    let joined = |u: &str| Scope::Joined(user(u));
    let seq_of = |out: Outcome| match out {
        Outcome::Item { item, .. } => item.seq,
        other => panic!("expected an item, got {other:?}"),
    };
    let hello = seq_of(
        store
            .execute(send(app, "u0", r1, "Hello world"))
            .await
            .expect("command"),
    );
    store
        .execute(send(app, "u1", r1, "wassup!!!!"))
        .await
        .expect("command");
    store
        .execute(send(app, "u0", r2, "Grüße aus München"))
        .await
        .expect("command");

    let found = |hits: Vec<Hit>| texts(&hits).into_iter().map(|t| t.2).collect::<Vec<_>>();
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "ello").await),
        ["Hello world"]
    );
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "WASS").await),
        ["wassup!!!!"]
    );
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "ünch").await),
        ["Grüße aus München"]
    );
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "MÜNCHEN").await),
        ["Grüße aus München"]
    );
    // Short terms (below the trigram size) and several terms (all must occur).
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "!!").await),
        ["wassup!!!!"]
    );
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "wor he").await),
        ["Hello world"]
    );
    assert!(
        search_all(&store, app, joined("u0"), "hello moon")
            .await
            .is_empty()
    );
    // Spans are in characters of the original text.
    let hit = &search_all(&store, app, joined("u0"), "ünch").await[0];
    assert_eq!(hit.spans, [crate::search::Span { start: 11, end: 15 }]);
    // Scope: u1 is not in room 2; a room scope sees only that room.
    assert!(
        search_all(&store, app, joined("u1"), "ünch")
            .await
            .is_empty()
    );
    assert!(
        search_all(&store, app, Scope::Room(r1), "ünch")
            .await
            .is_empty()
    );
    assert_eq!(
        search_all(&store, app, Scope::Room(r2), "ünch").await.len(),
        1
    );
    // Announcements are not messages: "joined" never matches an announcement.
    assert!(
        search_all(&store, app, Scope::Room(r1), "joined")
            .await
            .is_empty()
    );

    // An edit is reflected at once, both ways.
    store
        .execute(Command::Edit(EditMessage {
            app,
            actor: user("u0"),
            room: r1,
            seq: hello,
            text: "Goodbye world".into(),
        }))
        .await
        .expect("command");
    assert!(
        search_all(&store, app, joined("u0"), "ello")
            .await
            .is_empty()
    );
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "oodb").await),
        ["Goodbye world"]
    );
    // Trigrams the old and the new text share ("world") still find the message.
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "world").await),
        ["Goodbye world"]
    );
    // A delete too.
    store
        .execute(Command::Delete(DeleteMessage {
            app,
            actor: user("u0"),
            room: r1,
            seq: hello,
        }))
        .await
        .expect("command");
    assert!(
        search_all(&store, app, joined("u0"), "oodb")
            .await
            .is_empty()
    );
    assert!(
        search_all(&store, app, joined("u0"), "world")
            .await
            .is_empty()
    );
    // Leaving a room takes it out of the user's search; a deleted room is gone for everyone.
    store
        .execute(Command::Leave {
            app,
            actor: user("u1"),
            room: r1,
        })
        .await
        .expect("command");
    assert!(
        search_all(&store, app, joined("u1"), "wass")
            .await
            .is_empty()
    );
    store
        .execute(Command::DeleteRoom {
            app,
            actor: user("u0"),
            room: r2,
        })
        .await
        .expect("command");
    assert!(
        search_all(&store, app, joined("u0"), "ünch")
            .await
            .is_empty()
    );
    assert!(
        search_all(&store, app, Scope::Room(r2), "ünch")
            .await
            .is_empty()
    );
    // A refused edit changes nothing in the index.
    assert!(
        store
            .execute(Command::Edit(EditMessage {
                app,
                actor: user("u2"),
                room: r1,
                seq: Seq(2),
                text: "zzz".into(),
            }))
            .await
            .is_err()
    );
    assert!(
        search_all(&store, app, joined("u0"), "zzz")
            .await
            .is_empty()
    );
}

/// Results across rooms come newest first, and paging visits each hit exactly once.
pub async fn search_pages_newest_first(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "p", 2).await;
    let rooms = [
        group(&store, app, "u0", &["u1"], Visibility::Public).await,
        group(&store, app, "u0", &["u1"], Visibility::Public).await,
        group(&store, app, "u0", &[], Visibility::Public).await,
    ];
    let mut sent = Vec::new();
    for i in 0..60 {
        let room = rooms[(i * 7) % 3];
        let text = if i % 4 == 0 {
            format!("other {i}")
        } else {
            format!("needle {i}")
        };
        if let Outcome::Item { item, .. } = store
            .execute(send(app, "u0", room, &text))
            .await
            .expect("command")
            && i % 4 != 0
        {
            sent.push((item.created_at, room.0, item.seq.0, text));
        }
    }
    // Newest first: by time, then room and seq (sends in one millisecond tie on time).
    sent.sort_by(|a, b| b.cmp(a));
    let sent: Vec<(i64, i64, String)> = sent.into_iter().map(|(_, r, s, t)| (r, s, t)).collect();
    for scope in [Scope::Joined(user("u0"))] {
        let hits = search_all(&store, app, scope, "eedl").await;
        assert_eq!(texts(&hits), sent, "newest first, each exactly once");
        for w in hits.windows(2) {
            assert!(w[0].cursor() > w[1].cursor());
        }
    }
    let only_first: Vec<_> = sent.iter().filter(|t| t.0 == rooms[0].0).cloned().collect();
    assert_eq!(
        texts(&search_all(&store, app, Scope::Room(rooms[0]), "needle").await),
        only_first
    );
    // u1 is in the first two rooms only.
    let shared: Vec<_> = sent.iter().filter(|t| t.0 != rooms[2].0).cloned().collect();
    assert_eq!(
        texts(&search_all(&store, app, Scope::Joined(user("u1")), "ne").await),
        shared
    );
}

/// Among many messages, frequent, occasional and rare terms are each found exactly, newest
/// first, in one room and across rooms (stores may serve them in different ways).
pub async fn search_among_many(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "m", 2).await;
    let rooms = [
        group(&store, app, "u0", &["u1"], Visibility::Private).await,
        group(&store, app, "u0", &["u1"], Visibility::Private).await,
        group(&store, app, "u0", &[], Visibility::Private).await,
    ];
    let mut sent = Vec::new();
    for i in 0..450 {
        let room = rooms[i % 3];
        let mut text = format!("note {i}");
        if i % 7 == 0 {
            text.push_str(" sometimes");
        }
        if i % 97 == 13 {
            text.push_str(" Quokka");
        }
        match store
            .execute(send(app, "u0", room, &text))
            .await
            .expect("command")
        {
            Outcome::Item { item, .. } => sent.push((item.created_at, room.0, item.seq.0, text)),
            other => panic!("expected an item, got {other:?}"),
        }
    }
    sent.sort_by(|a, b| b.cmp(a));
    let sent: Vec<(i64, i64, String)> = sent.into_iter().map(|(_, r, s, t)| (r, s, t)).collect();
    for (q, word) in [("note", "note"), ("METIM", "sometimes"), ("okk", "Quokka")] {
        let expect = |keep: &dyn Fn(i64) -> bool| -> Vec<(i64, i64, String)> {
            sent.iter()
                .filter(|(r, _, t)| keep(*r) && t.contains(word))
                .cloned()
                .collect()
        };
        let all = expect(&|_| true);
        assert!(!all.is_empty());
        assert_eq!(
            texts(&search_all(&store, app, Scope::Joined(user("u0")), q).await),
            all,
            "{q:?} across u0's rooms"
        );
        assert_eq!(
            texts(&search_all(&store, app, Scope::Joined(user("u1")), q).await),
            expect(&|r| r != rooms[2].0),
            "{q:?} across u1's rooms"
        );
        assert_eq!(
            texts(&search_all(&store, app, Scope::Room(rooms[2]), q).await),
            expect(&|r| r == rooms[2].0),
            "{q:?} in one room"
        );
    }
}
