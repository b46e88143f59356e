//! Hostile requests on a node's write subject: garbage, another version, a batch without an
//! id, one past its deadline, one too large, one with too many commands, one with a command
//! that is never forwarded. Each gets a refusal and changes nothing; a well-formed batch, sent the same
//! way, does run (so the test can see a change when there is one).

use super::{app_on, nodes};
use crate::common::{PgDatabase, Server, TestApp};
use crate::nodes::timeline;
use crate::ws::cluster_services;
use confab_core::command::{Command, CreateApp, SendMessage};
use confab_core::ids::{AppId, RoomNumber, UserId};
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The version of the write subject's format.
pub(super) const V: i64 = 2;

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A fresh batch id: 32 hex digits.
pub(super) fn batch_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A batch as a node sends it (format version `v`).
pub(super) fn batch(v: i64, id: &str, deadline_ms: i64, cmds: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({"v": v, "id": id, "deadline_ms": deadline_ms, "cmds": cmds}))
        .expect("json")
}

/// A send of `text` by alice into `room`, as a command of a batch.
pub(super) fn send(app: AppId, room: i64, text: &str) -> Value {
    serde_json::to_value(Command::Send(SendMessage {
        app,
        actor: Some(UserId("alice".into())),
        room: RoomNumber(room),
        text: text.into(),
        reply_to: None,
        client_id: None,
    }))
    .expect("json")
}

/// The id of an app, for commands sent raw.
pub(super) async fn app_id(node: &Server, app: &TestApp) -> AppId {
    node.store()
        .app_by_token(&app.token)
        .await
        .expect("read")
        .expect("the app")
        .id
}

/// Gives `app`'s write lease to `name`, a node of the test's own, for ten minutes, once the
/// lease is free (waiting up to 10 s for it to expire).
pub(super) async fn lease_to(node: &Server, app: AppId, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lease = node
            .store()
            .write_lease(app, name, Duration::from_secs(600))
            .await
            .expect("the lease query runs")
            .expect("PostgreSQL has leases");
        if lease.holder == name {
            return;
        }
        assert!(Instant::now() < deadline, "the lease never came free");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A raw NATS client listening on the write subject of `name`, a node of the test's own in
/// `node`'s deployment.
pub(super) async fn listen_as(
    node: &Server,
    name: &str,
) -> (async_nats::Client, async_nats::Subscriber) {
    let subject = node.write_subject();
    let (prefix, _) = subject.rsplit_once('.').expect("<prefix>.write.<node>");
    let client = async_nats::connect(&node.config.nats).await.expect("NATS");
    let listener = client
        .subscribe(format!("{prefix}.{name}"))
        .await
        .expect("subscribed");
    client.flush().await.expect("flushed");
    (client, listener)
}

/// One node on a database of its own, an app it writes with alice and bob in a public room,
/// and a raw NATS client to talk to the node's write subject as another node would.
pub(super) struct OnSubject {
    _db: PgDatabase,
    pub(super) node: Server,
    pub(super) app: AppId,
    pub(super) tokens: Vec<String>,
    pub(super) room: i64,
    pub(super) client: async_nats::Client,
    pub(super) subject: String,
}

/// [`OnSubject`], or `None` (the test skips) without PostgreSQL and NATS.
pub(super) async fn on_subject(test: &str) -> Option<OnSubject> {
    let (pg, nats) = cluster_services(test)?;
    let (db, mut nodes) = nodes(&pg, &nats, 1, |_| {}).await;
    let node = nodes.pop().expect("a node");
    let (app, tokens, room) = app_on(&node, &["alice", "bob"]).await;
    let app = app_id(&node, &app).await;
    let client = async_nats::connect(&node.config.nats).await.expect("NATS");
    let subject = node.write_subject();
    Some(OnSubject {
        _db: db,
        node,
        app,
        tokens,
        room,
        client,
        subject,
    })
}

/// Sends `payload` as a request on `subject` and returns the reply as JSON.
pub(super) async fn ask(client: &async_nats::Client, subject: &str, payload: Vec<u8>) -> Value {
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(subject.to_owned(), payload.into()),
    )
    .await
    .expect("answered in time")
    .expect("answered");
    serde_json::from_slice(&reply.payload).expect("a JSON reply")
}

/// The kind of a reply: `results`, `expired`, `refused`, `not_run`...
pub(super) fn kind(reply: &Value) -> String {
    match &reply["reply"] {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.keys().next().cloned().unwrap_or_default(),
        other => panic!("not a reply: {other}"),
    }
}

#[tokio::test]
async fn routing_hostile_batches_are_refused_and_change_nothing() {
    let Some(on) = on_subject("routing_hostile_batches...").await else {
        return;
    };
    let (node, tokens, room) = (&on.node, &on.tokens, on.room);
    let (client, subject) = (&on.client, on.subject.as_str());
    let app_id = on.app;
    let send = |text: &str| send(app_id, room, text);
    let batch =
        |v: i64, deadline_ms: i64, cmds: Vec<Value>| batch(v, &batch_id(), deadline_ms, cmds);
    let later = now_ms() + 60_000;
    let create_app = serde_json::to_value(Command::CreateApp(CreateApp {
        name: "sneaky".into(),
        token: "ca_sneaky".into(),
        secret_hash: "x".into(),
        signing_key: "k".into(),
    }))
    .expect("json");
    let mut oversized = batch(V, later, vec![send("big")]);
    oversized.extend(std::iter::repeat_n(b' ', 900 * 1024));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage", b"\x00\xffnot json at all".to_vec(), "refused"),
        ("empty", Vec::new(), "refused"),
        (
            "another version",
            batch(V - 1, later, vec![send("v1")]),
            "refused",
        ),
        (
            "without an id",
            serde_json::to_vec(&json!({"v": V, "deadline_ms": later, "cmds": [send("no id")]}))
                .expect("json"),
            "refused",
        ),
        (
            "past its deadline",
            batch(V, now_ms() - 1_000, vec![send("late")]),
            "expired",
        ),
        ("too large", oversized, "refused"),
        (
            "too many commands",
            batch(V, later, vec![send("many"); 257]),
            "refused",
        ),
        (
            "a command never forwarded",
            batch(V, later, vec![send("with"), create_app]),
            "refused",
        ),
        (
            "an unknown command",
            batch(V, later, vec![json!({"DropTables": {}})]),
            "refused",
        ),
    ];
    let served = node.routing().served;
    let before = timeline(node, &tokens[0], room).await;
    for (what, payload, want) in cases {
        let reply = ask(client, subject, payload).await;
        assert_eq!(reply["v"], V, "{what}: {reply}");
        assert_eq!(kind(&reply), want, "{what}: {reply}");
    }
    // A request without a reply subject gets no answer and does nothing either.
    client
        .publish(
            subject.to_owned(),
            batch(V, later, vec![send("no reply")]).into(),
        )
        .await
        .expect("published");
    client.flush().await.expect("flushed");

    assert_eq!(node.routing().served, served, "nothing ran");
    assert_eq!(
        timeline(node, &tokens[0], room).await,
        before,
        "the room is as it was"
    );
    let (status, apps) = node.get("/v1/apps", &node.admin_key).await;
    assert!(status.is_success(), "{apps}");
    assert!(!apps.to_string().contains("sneaky"), "no app made: {apps}");

    // The same path with a well-formed batch runs it: the refusals above were refusals.
    let reply = ask(client, subject, batch(V, later, vec![send("welcome")])).await;
    assert_eq!(
        reply["reply"]["results"][0]["ok"]["Item"]["item"]["text"], "welcome",
        "{reply}"
    );
    assert_eq!(node.routing().served, served + 1);
    let items = timeline(node, &tokens[0], room).await;
    assert_eq!(
        items.values().filter(|t| *t == "welcome").count(),
        1,
        "{items:?}"
    );
    assert!(!items.values().any(|t| t == "no reply"), "{items:?}");

    // The writer checks forwarded commands itself: what the sender should have refused is
    // refused there too, with the same codes, and stores nothing.
    let long = "x".repeat(100_000);
    let reply = ask(
        client,
        subject,
        batch(V, later, vec![send(""), send(&long)]),
    )
    .await;
    let results = &reply["reply"]["results"];
    assert!(
        results[0]["ok"].is_null() && results[1]["ok"].is_null(),
        "{reply}"
    );
    assert!(results[0].to_string().contains("text_empty"), "{reply}");
    assert!(results[1].to_string().contains("text_too_long"), "{reply}");
    assert_eq!(
        timeline(node, &tokens[0], room).await,
        items,
        "nothing stored"
    );
}
