//! The writer's side: batches other nodes send to this node's write subject. Each command of a
//! batch runs on this node's store at once with the others (so they join its group commit),
//! never forwarded again. A batch past its deadline, too large, unreadable, of another version
//! or holding a command that is never forwarded is refused whole; beyond [`SERVING`] batches
//! at once the answer is "busy". Every refusal means nothing ran, and the sender runs the
//! commands itself.

use super::wire::{self, Reply, WireResult};
use super::{Inner, MAX_BATCH, MAX_REQUEST_BYTES, SERVING, routed_app};
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
            answer(&inner, reply_to, &Reply::Busy).await;
            continue;
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            let reply = run(&inner, &msg.payload).await;
            answer(&inner, reply_to, &reply).await;
            drop(slot);
        });
    }
    // Stopping: unsubscribe, and once the server has it (the flush's round trip) no request
    // comes here any more. Those that came meanwhile are answered "busy" (nothing ran), so
    // their senders run them at once instead of waiting for an answer that never comes.
    if requests.drain().await.is_ok() {
        let _ = tokio::time::timeout(STOP_WAIT, inner.client.flush()).await;
    }
    let _ = tokio::time::timeout(STOP_WAIT, async {
        while let Some(msg) = requests.next().await {
            if let Some(to) = msg.reply {
                answer(&inner, to, &Reply::Busy).await;
            }
        }
    })
    .await;
}

async fn answer(inner: &Inner, to: async_nats::Subject, reply: &Reply) {
    if let Err(e) = inner
        .client
        .publish(to, wire::encode_reply(reply).into())
        .await
    {
        tracing::debug!(error = %e, "cannot answer a forwarded batch");
    }
}

async fn run(inner: &Arc<Inner>, payload: &[u8]) -> Reply {
    if payload.len() > MAX_REQUEST_BYTES {
        return Reply::Refused(format!(
            "batch of {} bytes (at most {MAX_REQUEST_BYTES})",
            payload.len()
        ));
    }
    let batch = match wire::parse_request(payload) {
        Ok(batch) => batch,
        Err(refusal) => return refusal,
    };
    if batch.cmds.len() > MAX_BATCH {
        return Reply::Refused(format!(
            "batch of {} commands (at most {MAX_BATCH})",
            batch.cmds.len()
        ));
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    if now_ms > batch.deadline_ms {
        return Reply::Expired;
    }
    let mut apps = BTreeSet::new();
    for cmd in &batch.cmds {
        match routed_app(cmd) {
            Some(app) => apps.insert(app),
            None => return Reply::Refused("a command that is never forwarded".into()),
        };
    }
    for app in apps {
        inner.served_app(app);
    }
    let n = batch.cmds.len() as u64;
    let results = futures_util::future::join_all(
        batch
            .cmds
            .into_iter()
            .map(|cmd| async { WireResult::from(inner.store.execute(cmd).await) }),
    )
    .await;
    inner.served.fetch_add(n, Ordering::Relaxed);
    Reply::Results(results)
}
