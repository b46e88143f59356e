//! Presence on the bus. Each node publishes, per app, what it knows first-hand: which users
//! have a connection on it. Receivers keep one set per node and call a user online while any
//! live node lists them. Notes of one node in one app are numbered (`seq`), so a receiver that
//! missed one notices and asks for that node's whole set again; heartbeats carry the number
//! and the size of the set for the same check, and a node silent for three heartbeats is
//! gone. Only user ids and room numbers travel: nothing secret has a field here.

use crate::ids::{AppId, RoomNumber, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// A node's identity on the bus, drawn at random when it starts (a restarted node is a new
/// node: the old one's users expire with its heartbeats or are replaced by its answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u64);

/// A user with a connection on the publishing node, and the rooms whose members are told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresentUser {
    pub user: UserId,
    pub rooms: Vec<RoomNumber>,
}

/// One presence note of one node about one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceNote {
    pub app: AppId,
    pub node: NodeId,
    /// The node's count of `Changes` notes in this app so far: a `Changes` note carries the
    /// previous one's plus one; `State` and `Beat` carry the count they are current as of.
    pub seq: u64,
    pub body: PresenceBody,
}

/// What a presence note says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PresenceBody {
    /// Users whose first connection on the node opened, and users whose last one closed (after
    /// the node's grace period), since the node's previous note.
    Changes {
        at: Timestamp,
        online: Vec<PresentUser>,
        offline: Vec<UserId>,
    },
    /// One part of the node's whole set, in answer to `Ask`; `first` starts the set afresh,
    /// `last` completes it. Parts are bounded in size.
    State {
        first: bool,
        last: bool,
        users: Vec<PresentUser>,
    },
    /// The node is alive and has this many users online in the app.
    Beat { users: u64 },
    /// The publishing node asks for `State`: of every node (`of` empty) or of one.
    Ask { of: Option<NodeId> },
}
