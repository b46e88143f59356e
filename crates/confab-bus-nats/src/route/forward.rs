//! Forwarders: one per node this node sends writes to. Commands wait in a bounded queue; a
//! task takes as many as are waiting (up to [`MAX_BATCH`] or about [`BATCH_BYTES`]) into one
//! request whenever one of its [`IN_FLIGHT`] slots is free, so forwarded commands batch the way
//! a group commit does: one request per command only while few are waiting.
//!
//! Each batch has a random id. When its answer is lost (the connection to NATS dropped while
//! waiting, or no answer came [`ANSWER_WAIT`] past the deadline), the forwarder waits for NATS
//! to be connected again and recalls the batch by id: the writer answers with the batch's
//! results, or "not run" (and then never runs it). Only when that fails too by the deadline
//! plus [`MARGIN`] is the fate unknown.

use super::wire::{self, BatchId, Reply};
use super::{
    ANSWER_WAIT, BATCH_BYTES, DEADLINE, FORWARDER_IDLE, IN_FLIGHT, Inner, MARGIN, MAX_BATCH,
    MAX_REQUEST_BYTES, QUEUE, unix_ms,
};
use confab_core::command::{Command, Outcome};
use confab_core::error::StoreError;
use confab_core::store::StoreResult;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// What became of a forwarded command.
pub(crate) enum Forwarded {
    /// The writer ran it (or its fate is unknown: `Unavailable`).
    Done(StoreResult<Outcome>),
    /// It certainly ran nowhere: the caller runs it.
    NotRun(Command),
    /// Nobody serves the writer's subject (it stopped, or died): the caller runs it.
    NoWriter(Command),
}

pub(crate) struct Pending {
    cmd: Command,
    json: Vec<u8>,
    deadline: Instant,
    deadline_ms: i64,
    reply: oneshot::Sender<Forwarded>,
}

/// The queues of the running forwarders, by target node, each with a number telling it
/// apart from a later one for the same node.
#[derive(Default)]
pub(crate) struct Forwarders {
    queues: HashMap<Arc<str>, (u64, mpsc::Sender<Pending>)>,
    started: u64,
}

impl Forwarders {
    /// Drops every queue: each forwarder ends once it has sent what it holds.
    pub(crate) fn clear(&mut self) {
        self.queues.clear();
    }
}

/// Room for the envelope around the commands of a request.
const ENVELOPE_BYTES: usize = 1024;

/// Sends `cmd` to `node` through its forwarder and waits for what became of it.
pub(crate) async fn forward(inner: &Arc<Inner>, node: Arc<str>, cmd: Command) -> Forwarded {
    let json = match serde_json::to_vec(&cmd) {
        Ok(json) if json.len() + ENVELOPE_BYTES <= MAX_REQUEST_BYTES => json,
        _ => return Forwarded::NotRun(cmd),
    };
    let Some(queue) = queue_to(inner, &node) else {
        return Forwarded::NotRun(cmd);
    };
    let (reply, answer) = oneshot::channel();
    let pending = Pending {
        cmd,
        json,
        deadline: Instant::now() + DEADLINE,
        deadline_ms: unix_ms() + DEADLINE.as_millis() as i64,
        reply,
    };
    if let Err(full) = queue.try_send(pending) {
        return Forwarded::NotRun(full.into_inner().cmd);
    }
    // The forwarder answers every command it takes by the deadline plus the margin; this
    // bound only guards against a forwarder that died.
    match tokio::time::timeout(DEADLINE + MARGIN + Duration::from_secs(1), answer).await {
        Ok(Ok(forwarded)) => forwarded,
        _ => Forwarded::Done(Err(StoreError::unavailable(
            "the forwarder to the writing node stopped",
        ))),
    }
}

/// The queue of the forwarder to `node`, started if there is none.
fn queue_to(inner: &Arc<Inner>, node: &Arc<str>) -> Option<mpsc::Sender<Pending>> {
    let mut forwarders = inner.forwarders.lock().ok()?;
    if let Some((_, q)) = forwarders.queues.get(node) {
        return Some(q.clone());
    }
    forwarders.started += 1;
    let id = forwarders.started;
    let (tx, rx) = mpsc::channel(QUEUE);
    forwarders.queues.insert(node.clone(), (id, tx.clone()));
    tokio::spawn(run(inner.clone(), node.clone(), id, rx));
    Some(tx)
}

/// One forwarder: batches from the queue, at most [`IN_FLIGHT`] requests at once.
async fn run(inner: Arc<Inner>, node: Arc<str>, id: u64, mut queue: mpsc::Receiver<Pending>) {
    let subject = inner.subject(&node);
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut carried: Option<Pending> = None;
    loop {
        // A slot first: while all are taken, commands gather in the queue for the next batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let first = match carried.take() {
            Some(p) => p,
            None => match tokio::time::timeout(FORWARDER_IDLE, queue.recv()).await {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(_) => {
                    if retire(&inner, &node, id) {
                        break;
                    }
                    continue;
                }
            },
        };
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(p) = next.take() {
            if p.deadline <= Instant::now() {
                // It waited out its deadline here: the writer would refuse it.
                let _ = p.reply.send(Forwarded::NotRun(p.cmd));
            } else if !batch.is_empty() && bytes + p.json.len() + 1 > BATCH_BYTES {
                carried = Some(p);
                break;
            } else {
                bytes += p.json.len() + 1;
                batch.push(p);
            }
            if batch.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            tokio::spawn(send(inner.clone(), subject.clone(), batch, slot));
        }
    }
    // Whatever is still queued was never sent.
    queue.close();
    for p in carried
        .into_iter()
        .chain(std::iter::from_fn(|| queue.try_recv().ok()))
    {
        let _ = p.reply.send(Forwarded::NotRun(p.cmd));
    }
}

/// Removes an idle forwarder's queue unless a newer forwarder owns the entry; answers
/// whether it may end (nothing can reach its queue any more).
fn retire(inner: &Inner, node: &Arc<str>, id: u64) -> bool {
    let Ok(mut forwarders) = inner.forwarders.lock() else {
        return false;
    };
    if forwarders.queues.get(node).is_some_and(|(i, _)| *i == id) {
        forwarders.queues.remove(node);
    }
    true
}

/// How long a recall waits before asking again a writer that is not back yet (or busy).
const RECALL_PAUSE: Duration = Duration::from_millis(50);

/// Sends one batch and answers each of its commands.
async fn send(
    inner: Arc<Inner>,
    subject: String,
    batch: Vec<Pending>,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    use async_nats::RequestErrorKind as K;
    use async_nats::connection::State;
    if inner.client.connection_state() != State::Connected {
        return not_run(batch);
    }
    let Some(id) = BatchId::random() else {
        return not_run(batch);
    };
    let now = Instant::now();
    let deadline = batch.iter().map(|p| p.deadline).min().unwrap_or(now);
    let deadline_ms = batch.iter().map(|p| p.deadline_ms).min().unwrap_or(0);
    let payload = wire::request(id, deadline_ms, batch.iter().map(|p| p.json.as_slice()));
    let request = async_nats::Request::new()
        .payload(payload.into())
        .timeout(Some(deadline.saturating_duration_since(now) + ANSWER_WAIT));
    let recall = Recall {
        id,
        deadline_ms,
        until: deadline + MARGIN,
    };
    // A connection lost from here on may lose the reply (or deliver the request late): the
    // recall then tells what became of the batch.
    let answer = tokio::select! {
        biased;
        a = inner.client.send_request(subject.clone(), request) => a,
        () = lost(&inner) => {
            let reply = recall.ask(&inner, &subject).await;
            return settle(&inner, batch, reply);
        }
    };
    let reply = match answer {
        Ok(msg) => wire::parse_reply(&msg.payload),
        Err(e) => match e.kind() {
            K::NoResponders => return no_writer(batch),
            K::MaxPayloadExceeded | K::InvalidSubject => return not_run(batch),
            K::TimedOut | K::Other => recall.ask(&inner, &subject).await,
        },
    };
    settle(&inner, batch, reply);
}

/// Answers each command of `batch` from the writer's reply (or why its fate is unknown).
fn settle(inner: &Inner, batch: Vec<Pending>, reply: Result<Reply, String>) {
    match reply {
        Ok(Reply::Results(results)) if results.len() == batch.len() => {
            inner
                .forwarded
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            inner.batches.fetch_add(1, Ordering::Relaxed);
            for (p, r) in batch.into_iter().zip(results) {
                let _ = p.reply.send(Forwarded::Done(r.into()));
            }
        }
        Ok(Reply::Expired | Reply::Busy | Reply::NotRun) => not_run(batch),
        Ok(Reply::Refused(why)) => {
            tracing::warn!(why, "the writing node refused a batch; writing locally");
            not_run(batch);
        }
        Ok(Reply::Running | Reply::Forgotten) => unknown(
            batch,
            "the writing node could not tell what became of the command",
        ),
        Ok(Reply::Results(_)) => answer_lost(batch, "an unreadable answer"),
        Err(why) => answer_lost(batch, &why),
    }
}

fn answer_lost(batch: Vec<Pending>, why: &str) {
    tracing::warn!(why, "the fate of a forwarded batch is unknown");
    unknown(
        batch,
        "the writing node had the command and its answer was lost",
    );
}

/// Resolves once the connection to NATS is lost after this call (never while it holds, nor
/// once the bus is gone).
async fn lost(inner: &Inner) {
    let mut connected = inner.connected.clone();
    connected.borrow_and_update();
    loop {
        if connected.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        if connected.borrow_and_update().is_none() {
            return;
        }
    }
}

/// The recall of a batch whose answer was lost.
struct Recall {
    id: BatchId,
    deadline_ms: i64,
    /// When the sender gives up on learning the batch's fate.
    until: Instant,
}

impl Recall {
    /// Waits for NATS to be connected, then asks the writer what became of the batch, until
    /// [`Recall::until`]. `Ok` with the batch's results or "not run" (or the writer's answer
    /// that it cannot tell); `Err` with why the fate stays unknown.
    async fn ask(&self, inner: &Inner, subject: &str) -> Result<Reply, String> {
        use async_nats::RequestErrorKind as K;
        let body = bytes::Bytes::from(wire::recall(self.id, self.deadline_ms));
        let mut connected = inner.connected.clone();
        loop {
            let left = self.until.saturating_duration_since(Instant::now());
            // (The watch's value is locked while borrowed: not kept past this statement.)
            let connected_again = matches!(
                tokio::time::timeout(left, connected.wait_for(Option::is_some)).await,
                Ok(Ok(_))
            );
            if !connected_again {
                return Err("NATS was not connected again in time".into());
            }
            let left = self.until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("no time left to recall the batch".into());
            }
            let request = async_nats::Request::new()
                .payload(body.clone())
                .timeout(Some(left));
            let answer = tokio::select! {
                biased;
                a = inner.client.send_request(subject.to_owned(), request) => a,
                () = lost(inner) => continue,
            };
            match answer {
                Ok(msg) => match wire::parse_reply(&msg.payload) {
                    // Alive but full: ask again in a moment.
                    Ok(Reply::Busy) => {}
                    Ok(Reply::Expired | Reply::Refused(_)) => {
                        return Err("the writing node refused the recall".into());
                    }
                    other => {
                        if let Ok(Reply::Results(_) | Reply::NotRun) = other {
                            inner.recalled.fetch_add(1, Ordering::Relaxed);
                        }
                        return other;
                    }
                },
                // Just after a reconnect the writer may not have subscribed again yet;
                // otherwise it is gone (it may have died with the batch half done).
                Err(e) if e.kind() == K::NoResponders => {
                    if !inner.just_reconnected() {
                        return Err("the writing node is gone".into());
                    }
                }
                Err(e) => return Err(format!("the recall got no answer: {e}")),
            }
            tokio::time::sleep(RECALL_PAUSE.min(left)).await;
        }
    }
}

fn not_run(batch: Vec<Pending>) {
    for p in batch {
        let _ = p.reply.send(Forwarded::NotRun(p.cmd));
    }
}

fn no_writer(batch: Vec<Pending>) {
    for p in batch {
        let _ = p.reply.send(Forwarded::NoWriter(p.cmd));
    }
}

fn unknown(batch: Vec<Pending>, why: &str) {
    for p in batch {
        let _ = p
            .reply
            .send(Forwarded::Done(Err(StoreError::unavailable(why))));
    }
}
