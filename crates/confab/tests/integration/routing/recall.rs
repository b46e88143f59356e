//! Batches sent again and recalled on a node's write subject, as another node sends them: a
//! batch sent twice runs once and both get its results; a recall of a batch that ran gets
//! them too; a recall of a batch the node never saw is answered "not run", and that batch,
//! coming afterwards, is refused and changes nothing. And the sender's side: a node whose
//! batch gets no answer recalls it by its id.

use super::hostile::{
    V, app_id, ask, batch, batch_id, kind, lease_to, listen_as, now_ms, on_subject, send,
};
use super::{app_on, nodes};
use crate::nodes::timeline;
use crate::ws::cluster_services;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

fn recall(id: &str, deadline_ms: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({"v": V, "recall": id, "deadline_ms": deadline_ms})).expect("json")
}

#[tokio::test]
async fn routing_a_batch_sent_twice_runs_once_and_its_recall_gets_its_results() {
    let Some(on) = on_subject("routing_a_batch_sent_twice...").await else {
        return;
    };
    let (node, client, subject) = (&on.node, &on.client, on.subject.as_str());
    let (app, room) = (on.app, on.room);
    let served = node.routing().served;

    let (id, deadline) = (batch_id(), now_ms() + 60_000);
    let body = batch(V, &id, deadline, vec![send(app, room, "once")]);
    let first = ask(client, subject, body.clone()).await;
    let item = &first["reply"]["results"][0]["ok"]["Item"]["item"];
    assert_eq!(item["text"], "once", "{first}");
    let again = ask(client, subject, body).await;
    assert_eq!(again, first, "the batch again gets the same results");
    let recalled = ask(client, subject, recall(&id, deadline)).await;
    assert_eq!(recalled, first, "its recall gets them too");

    assert_eq!(node.routing().served, served + 1, "one command ran");
    let items = timeline(node, &on.tokens[0], room).await;
    let copies: Vec<_> = items.iter().filter(|(_, t)| *t == "once").collect();
    assert_eq!(copies.len(), 1, "one message: {items:?}");
    assert_eq!(Some(*copies[0].0), item["seq"].as_i64(), "the one answered");
}

#[tokio::test]
async fn routing_a_recall_of_an_unknown_batch_answers_not_run_and_the_batch_never_runs() {
    let Some(on) = on_subject("routing_a_recall_of_an_unknown_batch...").await else {
        return;
    };
    let (node, client, subject) = (&on.node, &on.client, on.subject.as_str());
    let (app, room) = (on.app, on.room);
    let served = node.routing().served;
    let before = timeline(node, &on.tokens[0], room).await;

    let (id, deadline) = (batch_id(), now_ms() + 60_000);
    for _ in 0..2 {
        let answer = ask(client, subject, recall(&id, deadline)).await;
        assert_eq!(kind(&answer), "not_run", "{answer}");
    }
    let late = ask(
        client,
        subject,
        batch(V, &id, deadline, vec![send(app, room, "late")]),
    )
    .await;
    assert_eq!(kind(&late), "refused", "{late}");
    assert_eq!(node.routing().served, served, "nothing ran");
    assert_eq!(
        timeline(node, &on.tokens[0], room).await,
        before,
        "no message"
    );

    // The same batch under another id runs: the refusal above was the recall's doing.
    let other = ask(
        client,
        subject,
        batch(V, &batch_id(), deadline, vec![send(app, room, "late")]),
    )
    .await;
    assert_eq!(kind(&other), "results", "{other}");
    assert_eq!(node.routing().served, served + 1);
}

/// A writer that takes a batch and never answers it (as when its answer is lost): the node
/// that sent it recalls the batch by the same id once the answer is overdue; told "not run",
/// it runs the send itself, and the client gets 201 and one message.
#[tokio::test]
async fn routing_a_batch_whose_answer_never_comes_is_recalled_then_run_locally() {
    let Some((pg, nats)) = cluster_services("routing_a_batch_whose_answer_never_comes...") else {
        return;
    };
    // Short leases: the node's own lease on the app soon expires once unused.
    let (_db, nodes) = nodes(&pg, &nats, 1, |c| c.write_lease_ms = 300).await;
    let node = &nodes[0];
    let (app, tokens, room) = app_on(node, &["alice", "bob"]).await;
    let id = app_id(node, &app).await;
    // A writer of the test's own, "mute", takes the lease once the node's has expired.
    lease_to(node, id, "mute").await;
    let (client, mut requests) = listen_as(node, "mute").await;
    let mute = tokio::spawn(async move {
        let mut seen: Vec<Value> = Vec::new();
        while let Some(msg) = requests.next().await {
            let body: Value = serde_json::from_slice(&msg.payload).expect("JSON");
            let recall = body.get("recall").is_some();
            seen.push(body);
            if recall {
                let not_run = json!({"v": V, "reply": "not_run"});
                let to = msg.reply.expect("a reply subject");
                let payload = serde_json::to_vec(&not_run).expect("json");
                client.publish(to, payload.into()).await.expect("answered");
                client.flush().await.expect("flushed");
                break;
            }
        }
        seen
    });

    let before = node.routing();
    let item = node.send(&tokens[0], room, "answer lost").await;
    let after = node.routing();
    let seen = tokio::time::timeout(Duration::from_secs(5), mute)
        .await
        .expect("the recall came")
        .expect("the mute writer");
    assert_eq!(seen.len(), 2, "the batch, then its recall: {seen:?}");
    let (sent, recalled) = (&seen[0], &seen[1]);
    assert_eq!(sent["cmds"].as_array().map(Vec::len), Some(1), "{sent}");
    assert_eq!(recalled["recall"], sent["id"], "recalled by the batch's id");
    assert_eq!(recalled["deadline_ms"], sent["deadline_ms"]);
    assert_eq!(
        after.forwarded, before.forwarded,
        "no results came from there"
    );
    assert_eq!(after.fallbacks, before.fallbacks + 1, "run locally");
    assert_eq!(after.recalled, before.recalled + 1, "settled by the recall");
    let items = timeline(node, &tokens[0], room).await;
    let copies: Vec<_> = items.iter().filter(|(_, t)| *t == "answer lost").collect();
    assert_eq!(copies.len(), 1, "{items:?}");
    assert_eq!(Some(*copies[0].0), item["seq"].as_i64());
}
