//! Catching rooms up when the bus may have lost their changes. A lost change is noticed when
//! a later one of its room arrives ([`super::order`]); this covers the rest: the last change
//! of a quiet room, a reconnect or slow-consumer notice of the bus (`Lagged`), a change
//! committed by another node while this one was starting to listen to the room. The hub reads
//! the store's head position of its rooms (all rooms with local subscribers on a timer and
//! after a lag; a room just subscribed to at once), and a room whose head is past what was
//! routed is read up to it like a gap. A room behind by more than `resume_cap` is not read:
//! its connections are told to resync (4009) and resume, as a client would after a long
//! absence.
//!
//! A room seen behind is looked at again [`GRACE`] later and read only if it still is: a busy
//! room's head is often a few changes past what was routed because they are still on the
//! bus, and reading them from the store too would only double the work.
//!
//! One head check runs at a time, in batches of [`BATCH`] rooms per read; what is asked for
//! meanwhile is checked when it ends.

use super::order::OrderCmd;
use super::{Hub, HubCmd};
use crate::ws::protocol::close;
use confab_core::ids::{AppId, Pos, RoomNumber};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// Rooms per head read.
const BATCH: usize = 500;

/// How long a room seen behind is given to catch up through the bus.
const GRACE: Duration = Duration::from_millis(250);

/// The head checks asked for and running.
#[derive(Default)]
pub(super) struct HeadChecks {
    running: bool,
    /// Check every room with local subscribers next.
    all: bool,
    /// Rooms to check next (just subscribed to).
    fresh: HashSet<(AppId, RoomNumber)>,
    /// Rooms the running check found behind, with the head it read.
    behind: Vec<((AppId, RoomNumber), Pos)>,
}

impl Hub {
    /// Checks every room with local subscribers (on the timer, and after the bus lost
    /// messages).
    pub(super) fn check_all_heads(&mut self) {
        // Rooms nobody here follows any more need no catching up (unless a missed joining
        // is being routed).
        let (rooms, routed) = (&self.rooms, &self.routed);
        self.order.behind.retain(|key, b| {
            let last = routed.get(key).copied().unwrap_or_default();
            rooms.contains_key(key) || b.reading() || b.joining(last)
        });
        self.checks.all = true;
        self.start_head_check();
    }

    /// Checks rooms that just got their first local subscriber: a change committed elsewhere
    /// while this node was starting to listen to them would otherwise wait for the timer.
    pub(super) fn check_heads_of(&mut self, keys: impl IntoIterator<Item = (AppId, RoomNumber)>) {
        self.checks.fresh.extend(keys);
        self.start_head_check();
    }

    fn start_head_check(&mut self) {
        if self.checks.running {
            return;
        }
        let mut groups: BTreeMap<AppId, Vec<RoomNumber>> = BTreeMap::new();
        if self.checks.all {
            for (app, room) in self.rooms.keys() {
                groups.entry(*app).or_default().push(*room);
            }
        } else {
            for key in &self.checks.fresh {
                if self.rooms.contains_key(key) {
                    groups.entry(key.0).or_default().push(key.1);
                }
            }
        }
        self.checks.all = false;
        self.checks.fresh.clear();
        if groups.is_empty() {
            return;
        }
        self.checks.running = true;
        let (store, me) = (self.store.clone(), self.me.clone());
        tokio::spawn(async move {
            for (app, rooms) in groups {
                for batch in rooms.chunks(BATCH) {
                    match store.heads(app, batch).await {
                        Ok(heads) => {
                            let _ = me.send(HubCmd::Order(OrderCmd::Heads { app, heads }));
                        }
                        // The next check tries again.
                        Err(e) => tracing::warn!(error = %e, app = app.0, "cannot read room heads"),
                    }
                }
            }
            let _ = me.send(HubCmd::Order(OrderCmd::HeadsDone));
        });
    }

    pub(super) fn heads_read(&mut self, app: AppId, heads: Vec<(RoomNumber, Pos)>) {
        for (room, head) in heads {
            let key = (app, room);
            if self.routed.get(&key).is_none_or(|last| *last < head) {
                self.checks.behind.push((key, head));
            }
        }
    }

    pub(super) fn heads_done(&mut self) {
        self.checks.running = false;
        let behind = std::mem::take(&mut self.checks.behind);
        if !behind.is_empty() {
            let me = self.me.clone();
            tokio::spawn(async move {
                tokio::time::sleep(GRACE).await;
                let _ = me.send(HubCmd::Order(OrderCmd::Behind(behind)));
            });
        }
        if self.checks.all || !self.checks.fresh.is_empty() {
            self.start_head_check();
        }
    }

    /// Reads a room up to `head` if it is behind; past the resume cap, its connections
    /// resync instead.
    pub(super) fn catch_up(&mut self, key: (AppId, RoomNumber), head: Pos) {
        if !self.rooms.contains_key(&key) {
            return;
        }
        let last = self.routed.get(&key).copied().unwrap_or_default();
        if head <= last {
            return;
        }
        if (head.0 - last.0) as u64 > self.config.resume_cap {
            self.too_far(key, head);
            return;
        }
        let b = self.order.behind.entry(key).or_default();
        b.raise(head);
        self.read_ahead(key, Duration::ZERO);
    }

    /// The room's connections are told to resync (4009): each resumes from its own position
    /// (and gets a `reset` if that is too far back too).
    fn too_far(&mut self, key: (AppId, RoomNumber), head: Pos) {
        let conns = self.rooms.get(&key).cloned().unwrap_or_default();
        tracing::warn!(
            app = key.0.0,
            room = key.1.0,
            connections = conns.len(),
            "a room is too far behind the store; its connections resync"
        );
        for c in conns {
            c.close(close::RESYNC);
            self.detach(c.id);
        }
        self.order.behind.remove(&key);
        self.routed.insert(key, head);
    }
}
