//! The in-process bus: one tokio broadcast channel, each receiver keeping what it listens to.
//! A receiver that falls more than the channel's capacity behind is told how many messages it
//! lost. Also here: what a node publishes for each committed event ([`wire_of`]).

use async_trait::async_trait;
use confab_core::Store;
use confab_core::bus::wire::new_message_item;
use confab_core::bus::{Bus, BusError, BusMessage, BusReceiver, Topic};
use confab_core::event::Event;
use confab_core::ids::Pos;
use std::collections::HashSet;
use tokio::sync::broadcast;

pub struct LocalBus {
    tx: broadcast::Sender<BusMessage>,
}

impl LocalBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        LocalBus { tx }
    }
}

impl Bus for LocalBus {
    fn publish(&self, msg: BusMessage) {
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.tx.send(msg);
    }

    fn subscribe(&self) -> Box<dyn BusReceiver> {
        Box::new(LocalReceiver {
            rx: self.tx.subscribe(),
            topics: HashSet::new(),
        })
    }
}

struct LocalReceiver {
    rx: broadcast::Receiver<BusMessage>,
    topics: HashSet<Topic>,
}

#[async_trait]
impl BusReceiver for LocalReceiver {
    async fn recv(&mut self) -> Result<BusMessage, BusError> {
        loop {
            match self.rx.recv().await {
                Ok(m) if m.wanted_by(|t| self.topics.contains(t)) => return Ok(m),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => return Err(BusError::Lagged(n)),
                Err(broadcast::error::RecvError::Closed) => return Err(BusError::Closed),
            }
        }
    }

    fn listen(&mut self, topic: Topic) {
        self.topics.insert(topic);
    }

    fn unlisten(&mut self, topic: Topic) {
        self.topics.remove(&topic);
    }
}

/// What this node publishes for an event it committed, if anything. A new message carries
/// its item from the event itself (no read-back on the hot path); other changes that touch an
/// item (edits, deletions, announcements) read it from the store once, here, so that no
/// receiving node has to. When that read fails the change still goes out, without its item:
/// its membership effects must reach every gateway (a kicked user must get nothing more), and
/// the item can be fetched over REST.
pub async fn wire_of(store: &dyn Store, ev: &Event) -> Option<BusMessage> {
    let item = match (new_message_item(ev), ev.body.room_pos(), ev.body.item_seq()) {
        (Some(item), _, _) => Some(item),
        (None, Some((room, pos)), Some(_)) => {
            match store.changes(ev.app, room, Pos(pos.0 - 1), 1).await {
                Ok(page) => page
                    .rows
                    .into_iter()
                    .next()
                    .filter(|c| c.pos == pos)
                    .and_then(|c| c.item),
                Err(e) => {
                    tracing::warn!(error = %e, room = room.0, pos = pos.0, "cannot read a change's item");
                    None
                }
            }
        }
        _ => None,
    };
    BusMessage::from_event(ev, item.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::bus::conformance as bc;
    use std::sync::Arc;

    fn bus(capacity: usize) -> Arc<dyn Bus> {
        Arc::new(LocalBus::new(capacity))
    }

    #[tokio::test]
    async fn every_variant_round_trips() {
        bc::round_trip_of_every_variant(bus(1024)).await;
    }

    #[tokio::test]
    async fn order_per_publisher() {
        bc::order_per_publisher(bus(1024), 500).await;
    }

    #[tokio::test]
    async fn only_what_is_listened() {
        bc::only_what_is_listened(bus(1024)).await;
    }

    #[tokio::test]
    async fn lag_is_reported() {
        bc::lag_is_reported(bus(16), 100).await;
    }

    #[tokio::test]
    async fn closed_is_reported() {
        bc::closed_is_reported(bus(16)).await;
    }
}
