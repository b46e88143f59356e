//! Identity providers and identity links: operational state kept beside the log (issue 14).
//! Per app, insert-or-keep under races, dropped with their provider, kept by a rebuild, and
//! never written to the log.

use super::app_with_users;
use crate::ids::UserId;
use crate::store::Store;
use std::sync::Arc;

fn user(s: &str) -> UserId {
    UserId(s.to_owned())
}

/// Settings are created then replaced (keeping their creation time), listed by id, deleted
/// once; another app never sees them; none of it reaches the log.
pub async fn identity_providers_are_per_app(store: Arc<dyn Store>) {
    let a = app_with_users(&store, "a", 1).await;
    let b = app_with_users(&store, "b", 1).await;
    let log = store.log_len().await.expect("log length");

    let created = store
        .put_identity_provider(a, "google", r#"{"v":1}"#)
        .await
        .expect("put");
    assert!(created, "a new provider is created");
    let first = store
        .identity_provider(a, "google")
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(first.config, r#"{"v":1}"#);
    let created = store
        .put_identity_provider(a, "google", r#"{"v":2}"#)
        .await
        .expect("put again");
    assert!(!created, "a second put replaces");
    store
        .put_identity_provider(a, "corp", r#"{"v":3}"#)
        .await
        .expect("put corp");
    let list = store.identity_providers(a).await.expect("list");
    let ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["corp", "google"], "listed by id");
    let google = &list[1];
    assert_eq!(google.config, r#"{"v":2}"#);
    assert_eq!(google.created_at, first.created_at, "creation time kept");
    assert!(google.updated_at >= first.updated_at);

    assert!(
        store
            .identity_providers(b)
            .await
            .expect("list b")
            .is_empty()
    );
    assert_eq!(
        store.identity_provider(b, "google").await.expect("get b"),
        None
    );
    assert!(
        !store
            .delete_identity_provider(b, "google")
            .await
            .expect("delete in b"),
        "app b cannot delete app a's provider"
    );
    store
        .put_identity_provider(b, "google", r#"{"b":true}"#)
        .await
        .expect("put in b");
    assert_eq!(
        store
            .identity_provider(a, "google")
            .await
            .expect("get a")
            .map(|p| p.config),
        Some(r#"{"v":2}"#.to_owned()),
        "app b's put leaves app a's provider alone"
    );

    assert!(
        store
            .delete_identity_provider(a, "google")
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_identity_provider(a, "google")
            .await
            .expect("delete again")
    );
    assert_eq!(
        store.identity_provider(a, "google").await.expect("get"),
        None
    );
    assert!(
        store
            .identity_provider(b, "google")
            .await
            .expect("get b")
            .is_some()
    );
    assert_eq!(
        store.log_len().await.expect("log length"),
        log,
        "provider settings never enter the log"
    );
}

/// A link is insert-or-keep: racing first sign-ins end with one link that every racer sees;
/// links are per app; unlinking and deleting the provider remove them.
pub async fn identity_links_insert_or_keep(store: Arc<dyn Store>) {
    let a = app_with_users(&store, "a", 8).await;
    let b = app_with_users(&store, "b", 2).await;
    store
        .put_identity_provider(a, "google", "{}")
        .await
        .expect("put");
    let log = store.log_len().await.expect("log length");

    let linked = store
        .link_identity(a, "google", "sub-1", &user("u0"))
        .await
        .expect("link");
    assert_eq!(linked, user("u0"));
    let kept = store
        .link_identity(a, "google", "sub-1", &user("u1"))
        .await
        .expect("link again");
    assert_eq!(kept, user("u0"), "an existing link is kept");
    assert_eq!(
        store
            .identity(a, "google", "sub-1")
            .await
            .expect("identity"),
        Some(user("u0"))
    );
    assert_eq!(
        store.identity(a, "google", "sub-2").await.expect("other"),
        None
    );
    assert_eq!(
        store
            .identity(a, "corp", "sub-1")
            .await
            .expect("other provider"),
        None
    );
    assert_eq!(
        store.identity(b, "google", "sub-1").await.expect("app b"),
        None,
        "app b does not see app a's links"
    );
    let in_b = store
        .link_identity(b, "google", "sub-1", &user("u1"))
        .await
        .expect("link in b");
    assert_eq!(
        in_b,
        user("u1"),
        "the same identity links apart in each app"
    );

    let mut racers = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .link_identity(a, "google", "racing", &user(&format!("u{i}")))
                .await
                .expect("racing link")
        }));
    }
    let mut winners = Vec::new();
    for r in racers {
        winners.push(r.await.expect("racer"));
    }
    let winner = winners[0].clone();
    assert!(winners.iter().all(|w| *w == winner), "{winners:?}");
    assert_eq!(
        store
            .identity(a, "google", "racing")
            .await
            .expect("identity"),
        Some(winner)
    );

    assert!(
        store
            .unlink_identity(a, "google", "racing")
            .await
            .expect("unlink")
    );
    assert!(
        !store
            .unlink_identity(a, "google", "racing")
            .await
            .expect("unlink again")
    );
    assert_eq!(
        store.identity(a, "google", "racing").await.expect("gone"),
        None
    );

    let page = store.identity_links(a, None, 10).await.expect("links");
    assert_eq!(page.rows.len(), 1);
    assert_eq!(page.rows[0].subject, "sub-1");
    assert!(!page.has_more);

    store
        .delete_identity_provider(a, "google")
        .await
        .expect("delete provider");
    assert_eq!(
        store
            .identity(a, "google", "sub-1")
            .await
            .expect("identity"),
        None,
        "deleting a provider drops its links"
    );
    assert_eq!(
        store.identity(b, "google", "sub-1").await.expect("app b"),
        Some(user("u1")),
        "and only that app's"
    );
    assert_eq!(
        store.log_len().await.expect("log length"),
        log,
        "links are not events"
    );
}

/// A rebuild replays the log into the projections and keeps providers and links; links page
/// by `(provider, subject)`.
pub async fn rebuild_keeps_identity_state(store: Arc<dyn Store>) {
    let a = app_with_users(&store, "a", 3).await;
    store
        .put_identity_provider(a, "google", r#"{"kept":true}"#)
        .await
        .expect("put");
    store
        .put_identity_provider(a, "corp", "{}")
        .await
        .expect("put corp");
    for (provider, subject, u) in [
        ("google", "s2", "u0"),
        ("google", "s1", "u1"),
        ("corp", "s9", "u2"),
    ] {
        store
            .link_identity(a, provider, subject, &user(u))
            .await
            .expect("link");
    }
    store.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");

    let providers = store.identity_providers(a).await.expect("list");
    assert_eq!(providers.len(), 2, "providers survive a rebuild");
    assert_eq!(
        store.identity(a, "google", "s1").await.expect("identity"),
        Some(user("u1")),
        "links survive a rebuild"
    );
    let first = store.identity_links(a, None, 2).await.expect("page 1");
    let keys: Vec<(&str, &str)> = first
        .rows
        .iter()
        .map(|l| (l.provider.as_str(), l.subject.as_str()))
        .collect();
    assert_eq!(keys, [("corp", "s9"), ("google", "s1")]);
    assert!(first.has_more);
    let after = Some(("google".to_owned(), "s1".to_owned()));
    let second = store.identity_links(a, after, 2).await.expect("page 2");
    assert_eq!(second.rows.len(), 1);
    assert_eq!(second.rows[0].user, user("u0"));
    assert!(!second.has_more);
}
