//! Refusals and limits: bad auth and frames, idempotent and rate-limited sends, connections per
//! user.

use super::{Ended, connect, login};
use crate::common::Server;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn ws_refuses_missing_or_bad_auth_bad_and_oversize_frames() {
    let s = Server::start_with(|c| c.ws_auth_timeout_ms = 200).await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    // No auth at all: closed with 4001.
    let mut c = connect(&s).await;
    assert!(matches!(c.ended().await, Ended::Closed(Some(4001))));
    // A bad token, an expired token, a first frame that is not auth.
    let keys = s
        .store()
        .app_keys_by_token(&app.token)
        .await
        .expect("store")
        .expect("app");
    let user = confab_core::ids::UserId("alice".into());
    let (expired, _) = confab_api::auth::mint(&keys, &user, -1).expect("mint");
    for first in [
        json!({"type": "auth", "token": "nope"}),
        json!({"type": "auth", "token": expired}),
        json!({"type": "ping"}),
    ] {
        let mut c = connect(&s).await;
        c.send(first).await;
        let f = c.next().await;
        assert_eq!(f["type"], "error");
        assert_eq!(f["code"], "unauthorized");
        assert!(matches!(c.ended().await, Ended::Closed(Some(4001))));
    }
    // Bad frames after auth are answered with an error; the connection stays.
    let (mut c, _) = login(&s, &alice, None).await;
    c.ws.send(Message::text("not json")).await.expect("sent");
    let f = c.next().await;
    assert_eq!(
        (f["type"].clone(), f["code"].clone()),
        (json!("error"), json!("invalid_frame"))
    );
    c.send(json!({"type": "dance", "ref": "r1"})).await;
    let f = c.next().await;
    assert_eq!(
        (f["code"].clone(), f["ref"].clone()),
        (json!("invalid_frame"), json!("r1"))
    );
    c.ws.send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("sent");
    assert_eq!(c.next().await["code"], "invalid_frame");
    c.send(json!({"type": "send", "room": 99, "text": "hi", "ref": 5}))
        .await;
    let f = c.next().await;
    assert_eq!(
        (f["code"].clone(), f["ref"].clone()),
        (json!("room_not_found"), json!(5))
    );
    c.send(json!({"type": "send", "room": 99, "text": " ", "ref": 6}))
        .await;
    assert_eq!(c.next().await["code"], "text_empty");
    c.send(json!({"type": "ping", "ref": 7})).await;
    assert_eq!(c.next().await, json!({"type": "pong", "ref": 7}));
    // An oversize frame closes the connection with 1009.
    c.ws.send(Message::text("x".repeat(200 * 1024)))
        .await
        .expect("sent");
    assert!(matches!(
        c.ended().await,
        Ended::Closed(Some(1009)) | Ended::Error
    ));
}

#[tokio::test]
async fn ws_sends_are_idempotent_and_rate_limited() {
    let s = Server::start_with(|c| {
        c.sends_per_second = 2;
        c.sends_burst = 2;
    })
    .await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    let (mut a, _) = login(&s, &alice, None).await;
    let send = json!({"type": "send", "room": room, "text": "once", "client_id": "c-1", "ref": 1});
    a.send(send.clone()).await;
    let first = a.next_of("ack").await;
    assert_eq!(first["created"], true);
    a.send(send).await;
    let again = a.next_of("ack").await;
    assert_eq!(again["created"], false);
    assert_eq!(again["seq"], first["seq"]);
    // Over the rate: a rate_limited error with the time to wait.
    let mut limited = None;
    for i in 0..10 {
        a.send(json!({"type": "send", "room": room, "text": "more", "ref": 10 + i}))
            .await;
        loop {
            let f = a.next().await;
            if f["type"] == "ack" {
                break;
            }
            if f["type"] == "error" {
                limited = Some(f);
                break;
            }
        }
        if limited.is_some() {
            break;
        }
    }
    let limited = limited.expect("rate limited");
    assert_eq!(limited["code"], "rate_limited");
    assert!(limited["retry_after_ms"].as_u64().expect("retry_after_ms") > 0);
}

#[tokio::test]
async fn ws_connections_per_user_are_limited() {
    let s = Server::start_with(|c| c.ws_connections_per_user = 1).await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let (_a, _) = login(&s, &alice, None).await;
    let mut c = connect(&s).await;
    c.send(json!({"type": "auth", "token": alice})).await;
    let f = c.next().await;
    assert_eq!(f["code"], "too_many_connections");
    assert!(matches!(c.ended().await, Ended::Closed(Some(4029))));
}
