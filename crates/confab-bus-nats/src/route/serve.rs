//! The writer's side: batches other nodes send to this node's write subject, and recalls of
//! batches whose answers they lost. Each command of a batch runs on this node's store at once
//! with the others (so they join its group commit), never forwarded again. A batch past its
//! deadline, too large, unreadable, of another version or holding a command that is never
//! forwarded is refused whole; beyond [`SERVING`] requests at once the answer is "busy".
//! Every refusal means nothing ran, and the sender runs the commands itself. Batches are
//! remembered by id ([`Recent`](super::recent::Recent)): one that comes again gets the first
//! one's reply and never runs twice.

use super::recent::{Begin, Known};
use super::wire::{self, Batch, Reply, Request, WireResult};
use super::{Inner, MAX_BATCH, MAX_REQUEST_BYTES, RECALL_WAIT, SERVING, routed_app, unix_ms};
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Semaphore, oneshot};

/// How long each step of stopping may take.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// Serves the write subject until `stop` fires (or its sender goes).
pub(crate) async fn serve(
    inner: Arc<Inner>,
    mut requests: async_nats::Subscriber,
    mut stop: oneshot::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(SERVING));
    loop {
        let msg = tokio::select! {
            biased;
            _ = &mut stop => break,
            msg = requests.next() => match msg {
                Some(msg) => msg,
                None => return,
            },
        };
        // Without a reply subject nobody waits for an answer: nothing to do.
        let Some(reply_to) = msg.reply.clone() else {
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            answer(&inner, reply_to, encode(&Reply::Busy)).await;
            continue;
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            let reply = handle(&inner, &msg.payload).await;
            answer(&inner, reply_to, reply).await;
            drop(slot);
        });
    }
    // Stopping: unsubscribe, and once the server has it (the flush's round trip) no request
    // comes here any more. Batches that came meanwhile are answered "busy" (nothing ran), so
    // their senders run them at once instead of waiting for an answer that never comes;
    // recalls are answered.
    if requests.drain().await.is_ok() {
        let _ = tokio::time::timeout(STOP_WAIT, inner.client.flush()).await;
    }
    let _ = tokio::time::timeout(STOP_WAIT, async {
        while let Some(msg) = requests.next().await {
            if let Some(to) = msg.reply {
                let reply = match wire::parse_request(&msg.payload) {
                    Ok(Request::Recall { .. }) => handle(&inner, &msg.payload).await,
                    _ => encode(&Reply::Busy),
                };
                answer(&inner, to, reply).await;
            }
        }
    })
    .await;
}

async fn answer(inner: &Inner, to: async_nats::Subject, reply: Bytes) {
    if let Err(e) = inner.client.publish(to, reply).await {
        tracing::debug!(error = %e, "cannot answer a forwarded batch");
    }
}

fn encode(reply: &Reply) -> Bytes {
    wire::encode_reply(reply).into()
}

/// The encoded answer to one request.
async fn handle(inner: &Arc<Inner>, payload: &[u8]) -> Bytes {
    if payload.len() > MAX_REQUEST_BYTES {
        return encode(&Reply::Refused(format!(
            "batch of {} bytes (at most {MAX_REQUEST_BYTES})",
            payload.len()
        )));
    }
    match wire::parse_request(payload) {
        Err(refusal) => encode(&refusal),
        Ok(Request::Batch(batch)) => run(inner, batch).await,
        Ok(Request::Recall { id, deadline_ms }) => {
            match inner.recent.recall(id, deadline_ms, unix_ms()) {
                None => encode(&Reply::Forgotten),
                Some(Known::Refused) => encode(&Reply::NotRun),
                Some(known) => settled(known, Reply::NotRun).await,
            }
        }
    }
}

/// The answer for a batch seen before: its reply once it has one (waiting a while for one
/// that runs), else `refused` for one that never runs.
async fn settled(known: Known, refused: Reply) -> Bytes {
    match known {
        Known::Done(reply) => reply,
        Known::Refused => encode(&refused),
        Known::Running(mut waiting) => {
            let reply = tokio::time::timeout(RECALL_WAIT, waiting.wait_for(Option::is_some))
                .await
                .ok()
                .and_then(Result::ok)
                .and_then(|r| Option::clone(&r));
            reply.unwrap_or_else(|| encode(&Reply::Running))
        }
    }
}

async fn run(inner: &Arc<Inner>, batch: Batch) -> Bytes {
    if batch.cmds.len() > MAX_BATCH {
        return encode(&Reply::Refused(format!(
            "batch of {} commands (at most {MAX_BATCH})",
            batch.cmds.len()
        )));
    }
    let mut apps = BTreeSet::new();
    for cmd in &batch.cmds {
        match routed_app(cmd) {
            Some(app) => apps.insert(app),
            None => return encode(&Reply::Refused("a command that is never forwarded".into())),
        };
    }
    let running = match inner.recent.begin(batch.id, batch.deadline_ms, unix_ms()) {
        Begin::Run(running) => running,
        Begin::Known(known) => {
            let recalled = Reply::Refused("recalled by its sender before it came".into());
            return settled(known, recalled).await;
        }
        Begin::Expired => return encode(&Reply::Expired),
    };
    for app in apps {
        inner.served_app(app);
    }
    let n = batch.cmds.len() as u64;
    let results = futures_util::future::join_all(batch.cmds.into_iter().map(|cmd| async {
        // Checked again here: a request on the subject may come from anything on NATS.
        match confab_core::validate::command(&cmd, &inner.limits) {
            Ok(()) => WireResult::from(inner.store.execute(cmd).await),
            Err(e) => WireResult::from(Err(e.into())),
        }
    }))
    .await;
    inner.served.fetch_add(n, Ordering::Relaxed);
    let reply = encode(&Reply::Results(results));
    inner.recent.finish(running, reply.clone(), unix_ms());
    reply
}
