//! One node's receiver: a NATS subscription per topic listened to, each forwarded by a small
//! task into the receiver's bounded buffer (a broadcast channel with a single reader, so an
//! overflow is reported in place, before anything published after the lost messages).

use super::{Signals, subject};
use async_trait::async_trait;
use confab_core::bus::{BusError, BusMessage, BusReceiver, Topic};
use futures_util::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// Which subject a message came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Room,
    App,
}

pub(crate) struct NatsReceiver {
    client: async_nats::Client,
    prefix: Arc<str>,
    tx: broadcast::Sender<(Via, BusMessage)>,
    rx: broadcast::Receiver<(Via, BusMessage)>,
    topics: HashMap<Topic, JoinHandle<()>>,
    lag: watch::Receiver<u64>,
    signals: Arc<Signals>,
    alive: watch::Receiver<()>,
}

impl NatsReceiver {
    pub(crate) fn new(
        client: async_nats::Client,
        prefix: Arc<str>,
        inbox: usize,
        lag: watch::Receiver<u64>,
        signals: Arc<Signals>,
        alive: watch::Receiver<()>,
    ) -> Self {
        let (tx, rx) = broadcast::channel(inbox);
        NatsReceiver {
            client,
            prefix,
            tx,
            rx,
            topics: HashMap::new(),
            lag,
            signals,
            alive,
        }
    }

    /// Whether a message that came by `via` is for this receiver now. A change that travels
    /// on both its room's and its app's subject is taken from the room's when the room is
    /// listened to (there it is in order with the room's other changes), else from the app's.
    fn wanted(&self, via: Via, msg: &BusMessage) -> bool {
        let listens = |t: Option<Topic>| t.is_some_and(|t| self.topics.contains_key(&t));
        match via {
            Via::Room => listens(msg.room_topic()),
            Via::App => listens(msg.app_topic()) && !listens(msg.room_topic()),
        }
    }
}

#[async_trait]
impl BusReceiver for NatsReceiver {
    async fn recv(&mut self) -> Result<BusMessage, BusError> {
        loop {
            tokio::select! {
                biased;
                gone = self.alive.changed() => {
                    if gone.is_err() {
                        return Err(BusError::Closed);
                    }
                }
                lag = self.lag.changed() => {
                    if lag.is_err() {
                        return Err(BusError::Closed);
                    }
                    // How much was lost is unknown; the gateway resyncs whatever the number.
                    return Err(BusError::Lagged(1));
                }
                got = self.rx.recv() => match got {
                    Ok((via, msg)) => {
                        if self.wanted(via, &msg) {
                            return Ok(msg);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => return Err(BusError::Lagged(n)),
                    // The receiver holds a sender itself: never closed while it exists.
                    Err(broadcast::error::RecvError::Closed) => return Err(BusError::Closed),
                },
            }
        }
    }

    fn listen(&mut self, topic: Topic) {
        if self.topics.contains_key(&topic) {
            return;
        }
        let via = match topic {
            Topic::Room(..) => Via::Room,
            Topic::App(_) => Via::App,
        };
        let client = self.client.clone();
        let tx = self.tx.clone();
        let signals = self.signals.clone();
        let subject = subject(&self.prefix, topic);
        // The subscription is queued on the connection now when the client has room (it
        // nearly always has), not when the task first runs: whatever this node publishes
        // afterwards then reaches the server after it, so no local change falls in between.
        let now = client.subscribe(subject.clone()).now_or_never();
        let task = tokio::spawn(async move {
            let subscribed = match now {
                Some(done) => done,
                None => client.subscribe(subject.clone()).await,
            };
            let mut sub = match subscribed {
                Ok(sub) => sub,
                Err(e) => {
                    // Nothing of this topic will come: the gateway must resync rather than
                    // wait for it.
                    tracing::warn!(error = %e, subject, "cannot subscribe on NATS");
                    signals.lagged();
                    return;
                }
            };
            while let Some(m) = sub.next().await {
                match BusMessage::decode(&m.payload) {
                    // No receiver left only when this one is being dropped.
                    Ok(msg) => drop(tx.send((via, msg))),
                    Err(e) => tracing::warn!(error = %e, subject, "unreadable bus message"),
                }
            }
        });
        self.topics.insert(topic, task);
    }

    fn unlisten(&mut self, topic: Topic) {
        // Aborting drops the subscription, which unsubscribes it.
        if let Some(task) = self.topics.remove(&topic) {
            task.abort();
        }
    }
}

impl Drop for NatsReceiver {
    fn drop(&mut self) {
        for task in self.topics.values() {
            task.abort();
        }
    }
}
