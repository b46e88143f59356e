//! The bus port: how node-wide real-time notices travel between the nodes' gateways. Room
//! changes (already durable in the store), read markers, typing and presence notes are published once
//! and received by every gateway that listens to their topic. What travels is the wire type of
//! [`wire`], never the internal event (which can hold an app's secrets). A bus may drop or lag;
//! receivers say so, and the gateway fills gaps from the store by position, so delivery stays
//! gapless whatever the bus does.

pub mod presence;
pub mod wire;

#[cfg(feature = "test-util")]
pub mod conformance;

use crate::ids::{AppId, RoomNumber, Seq, UserId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use presence::{NodeId, PresenceBody, PresenceNote, PresentUser};
pub use wire::{ChangeData, RoomChange, WIRE_VERSION, WireError, WireItem};

/// One notice on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum BusMessage {
    /// A committed change of a room, in position order per publisher.
    Change(Arc<RoomChange>),
    /// `user` has read `room` up to `seq` (committed, but outside the room's change stream).
    Read {
        app: AppId,
        room: RoomNumber,
        user: UserId,
        seq: Seq,
    },
    /// `user` is typing in `room` (ephemeral; never stored).
    Typing {
        app: AppId,
        room: RoomNumber,
        user: UserId,
    },
    /// What one node knows first-hand about who is online in an app ([`presence`]).
    Presence(Arc<PresenceNote>),
}

/// What a receiver can listen to. A node listens to the rooms its connections are subscribed
/// to, and to the apps it has connections of (for membership changes that may subscribe one of
/// them to a room it does not follow yet, and for presence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    App(AppId),
    Room(AppId, RoomNumber),
}

impl BusMessage {
    /// The room topic this message is published on, if any.
    pub fn room_topic(&self) -> Option<Topic> {
        match self {
            BusMessage::Change(c) => Some(Topic::Room(c.app, c.room)),
            BusMessage::Read { app, room, .. } | BusMessage::Typing { app, room, .. } => {
                Some(Topic::Room(*app, *room))
            }
            BusMessage::Presence(_) => None,
        }
    }

    /// The app topic this message is published on too, if any: membership changes and room
    /// deletions (they change who is subscribed where) and presence.
    pub fn app_topic(&self) -> Option<Topic> {
        match self {
            BusMessage::Change(c) if c.change.changes_membership() => Some(Topic::App(c.app)),
            BusMessage::Presence(p) => Some(Topic::App(p.app)),
            _ => None,
        }
    }

    /// Whether a receiver listening to `topics` gets this message (once, whichever of its
    /// topics matched).
    pub fn wanted_by(&self, listens: impl Fn(&Topic) -> bool) -> bool {
        self.room_topic().is_some_and(|t| listens(&t))
            || self.app_topic().is_some_and(|t| listens(&t))
    }
}

/// Why a receive gave no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The receiver lost messages: this many as far as it knows (at least one). After a
    /// reconnect or a slow-consumer notice the exact number is unknown.
    #[error("bus receiver lagged by {0} messages")]
    Lagged(u64),
    /// The bus is gone; no message will come any more.
    #[error("bus closed")]
    Closed,
}

/// A subscription to the topics it listens to. It starts listening to nothing.
#[async_trait::async_trait]
pub trait BusReceiver: Send {
    /// The next message of a topic listened to, published after the listening took effect.
    async fn recv(&mut self) -> Result<BusMessage, BusError>;
    /// Starts receiving `topic` (idempotent). On a networked bus it takes effect shortly
    /// after: what is published meanwhile may be missed (the gateway's gap filling repairs).
    fn listen(&mut self, topic: Topic);
    /// Stops receiving `topic` (idempotent); nothing of it is returned afterwards unless
    /// another listened topic carries it.
    fn unlisten(&mut self, topic: Topic);
}

/// A node-wide publish/subscribe channel.
pub trait Bus: Send + Sync + 'static {
    /// Publishes to every receiver listening to the message's topics. Never blocks and never
    /// fails: a bus drops (and counts) rather than waits.
    fn publish(&self, msg: BusMessage);
    fn subscribe(&self) -> Box<dyn BusReceiver>;
}
