//! The bus port: how node-wide real-time notices travel. Committed events (already durable in
//! the store) and ephemeral notices (typing, presence) are published once and received by the
//! gateway of every node. A bus may drop or lag; receivers say so, and the gateway fills gaps
//! from the store by position, so delivery stays gapless whatever the bus does.

use crate::event::Event;
use crate::ids::{AppId, RoomNumber, Timestamp, UserId};
use std::sync::Arc;

/// One notice on the bus.
#[derive(Debug, Clone, PartialEq)]
pub enum BusMessage {
    /// An event that has been committed to the store, in commit order per publisher.
    Committed(Arc<Event>),
    /// `user` is typing in `room` (ephemeral; never stored).
    Typing {
        app: AppId,
        room: RoomNumber,
        user: UserId,
    },
    /// `user` came online or went offline (ephemeral; `last_seen_at` is stored separately).
    /// `rooms` are the user's rooms, whose members are told.
    Presence {
        app: AppId,
        user: UserId,
        online: bool,
        last_seen_at: Timestamp,
        rooms: Vec<RoomNumber>,
    },
}

/// Why a receive gave no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The receiver fell behind and this many messages were lost to it.
    #[error("bus receiver lagged by {0} messages")]
    Lagged(u64),
    /// The bus is gone; no message will come any more.
    #[error("bus closed")]
    Closed,
}

/// A subscription to everything published after it was made.
#[async_trait::async_trait]
pub trait BusReceiver: Send {
    async fn recv(&mut self) -> Result<BusMessage, BusError>;
}

/// A node-wide publish/subscribe channel.
pub trait Bus: Send + Sync + 'static {
    /// Publishes to every current subscriber; never blocks (a bus drops rather than waits).
    fn publish(&self, msg: BusMessage);
    fn subscribe(&self) -> Box<dyn BusReceiver>;
}
