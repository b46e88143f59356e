//! Per-room delivery order. With several publishers (nodes) a room's changes can reach this
//! node out of order, twice, or not at all. For a room with local subscribers the hub routes
//! exactly the next position: one at or below the last routed is dropped, the next one is
//! routed, and one further ahead waits in the room's pending buffer while the missing range
//! is read from the store and routed first, in position order. Changes read from the store go
//! through the same routing as the bus's, so their membership effects (a joiner subscribed, a
//! kicked member cut off, a deleted room closed) apply in position order too.
//!
//! Store reads never run on the hub: a task reads one page and hands it back as a command, so
//! a slow read delays only its own room. Everything is bounded: the changes buffered per room
//! ([`PENDING`], beyond which a change is dropped and read back from the store with the
//! rest), the reads in flight per room (one), the reads running at once ([`READS`]), and the
//! page size ([`PAGE`]).

use super::{Hub, HubCmd};
use confab_core::bus::{ChangeData, RoomChange};
use confab_core::ids::{AppId, Pos, RoomNumber, UserId};
use confab_core::model::Change;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Changes that came ahead of a room's gap kept per room, at most.
const PENDING: usize = 1024;

/// Store reads for gaps and catch-ups running at once, at most (the others wait their turn).
pub(super) const READS: usize = 4;

/// Changes read from the store per page.
const PAGE: usize = 500;

/// The longest pause between two attempts to read a room whose reads fail.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A room being caught up from the store.
#[derive(Default)]
pub(super) struct Behind {
    /// The highest position known to be committed (a change seen on the bus, or the store's
    /// head): the room is caught up once it has been routed.
    target: Pos,
    /// Changes that came over the bus ahead of the next position, by position.
    pending: BTreeMap<Pos, Arc<RoomChange>>,
    /// A read of the store for this room is in flight.
    reading: bool,
    /// Reads in a row that failed or found nothing new (for the pause before the next).
    misses: u32,
    /// The position of a local user's joining that this node missed ([`super::joins`]): the
    /// room is read up to it even while nobody here follows the room yet.
    pub join: Pos,
}

impl Behind {
    pub fn reading(&self) -> bool {
        self.reading
    }

    /// `pos` is known to be committed.
    pub fn raise(&mut self, pos: Pos) {
        self.target = self.target.max(pos);
    }

    /// Whether a missed joining is still to be routed, `last` being the last position routed.
    pub fn joining(&self, last: Pos) -> bool {
        self.join > last
    }
}

/// Changes read from the store, in position order: `None` for a position that shows clients
/// nothing.
pub(crate) type Read = Vec<(Pos, Option<Arc<RoomChange>>)>;

/// What a store read hands back to the hub.
pub(crate) enum OrderCmd {
    /// The room's changes after `since`; `None` if the store could not be read.
    Filled {
        key: (AppId, RoomNumber),
        since: Pos,
        rows: Option<Read>,
    },
    /// Rooms' head positions read from the store (see `resync`).
    Heads {
        app: AppId,
        heads: Vec<(RoomNumber, Pos)>,
    },
    /// A head check has ended (every batch of it answered or failed).
    HeadsDone,
    /// Rooms found behind the store's head a moment ago, looked at again.
    Behind(Vec<((AppId, RoomNumber), Pos)>),
    /// The rooms a user had joined (see `joins`); `None` if the store could not be read.
    Joined {
        app: AppId,
        user: UserId,
        rooms: Option<Vec<super::joins::Joined>>,
    },
    /// A membership check has ended.
    JoinsDone,
    /// The periodic check of the apps' joinings (see `join_log`).
    Log(super::join_log::LogCmd),
}

/// The order-keeping state of the hub.
pub(super) struct Order {
    pub behind: std::collections::HashMap<(AppId, RoomNumber), Behind>,
    reads: Arc<Semaphore>,
}

impl Order {
    pub fn new() -> Self {
        Order {
            behind: std::collections::HashMap::new(),
            reads: Arc::new(Semaphore::new(READS)),
        }
    }
}

impl Hub {
    pub(super) async fn order_cmd(&mut self, cmd: OrderCmd) {
        match cmd {
            OrderCmd::Filled { key, since, rows } => self.filled(key, since, rows).await,
            OrderCmd::Heads { app, heads } => self.heads_read(app, heads),
            OrderCmd::HeadsDone => self.heads_done(),
            OrderCmd::Behind(rooms) => {
                for (key, head) in rooms {
                    self.catch_up(key, head);
                }
            }
            OrderCmd::Joined { app, user, rooms } => self.joined_read(app, user, rooms),
            OrderCmd::JoinsDone => self.joins_done(),
            OrderCmd::Log(cmd) => self.log_cmd(cmd),
        }
    }

    /// Before connections subscribe to `rooms`, whose positions they read from the store
    /// (`known`): a room nobody here followed starts from there (what was routed of it
    /// before may be long stale), and its head is checked once the node listens to it.
    pub(super) fn subscribing(&mut self, app: AppId, rooms: &[RoomNumber], known: &[Pos]) {
        let mut fresh = Vec::new();
        for (room, pos) in rooms.iter().zip(known) {
            let key = (app, *room);
            if self.rooms.get(&key).is_some_and(|s| !s.is_empty()) || self.joining(key) {
                // Followed already, or being read from a missed joining on: what the
                // connection read itself is delivered once (its cursor drops the rest).
                continue;
            }
            let last = self.routed.entry(key).or_default();
            *last = (*last).max(*pos);
            fresh.push(key);
        }
        self.check_heads_of(fresh);
    }

    /// Whether the room is being read from a local user's joining that was missed.
    pub(super) fn joining(&self, key: (AppId, RoomNumber)) -> bool {
        let last = self.routed.get(&key).copied().unwrap_or_default();
        self.order.behind.get(&key).is_some_and(|b| b.joining(last))
    }

    /// A room change from the bus: routed if it is the next position (or the room has no
    /// local subscriber, whose order nobody here waits on, and no missed joining to route),
    /// dropped if already routed, held while the gap before it is read otherwise.
    pub(super) async fn on_change(&mut self, change: Arc<RoomChange>) {
        let key = (change.app, change.room);
        let ordered = self.rooms.contains_key(&key) || self.joining(key);
        match self.routed.get(&key).copied() {
            Some(last) if change.pos <= last => return,
            Some(last) if change.pos.0 > last.0 + 1 && ordered => {
                self.hold(key, change);
                return;
            }
            _ => {}
        }
        self.route(change).await;
        self.drain(key).await;
    }

    /// Keeps a change that came ahead of a gap, and has the gap read.
    fn hold(&mut self, key: (AppId, RoomNumber), change: Arc<RoomChange>) {
        let b = self.order.behind.entry(key).or_default();
        let pos = change.pos;
        if b.pending.len() < PENDING {
            b.target = b.target.max(Pos(pos.0 - 1));
            b.pending.insert(pos, change);
        } else {
            // Committed, so the store has it: read back with the rest of the range.
            b.target = b.target.max(pos);
        }
        self.read_ahead(key, Duration::ZERO);
    }

    /// Asks the store for the room's changes after the last routed, unless a read is
    /// already in flight.
    pub(super) fn read_ahead(&mut self, key: (AppId, RoomNumber), pause: Duration) {
        let since = self.routed.get(&key).copied().unwrap_or_default();
        let Some(b) = self.order.behind.get_mut(&key) else {
            return;
        };
        if b.reading {
            return;
        }
        b.reading = true;
        // Up to the first change held (or the target): what comes after it is on its way.
        let upto = b.pending.keys().next().map_or(b.target, |p| Pos(p.0 - 1));
        let limit = (upto.0 - since.0).clamp(1, PAGE as i64) as usize;
        let (store, reads, me) = (
            self.store.clone(),
            self.order.reads.clone(),
            self.me.clone(),
        );
        tokio::spawn(async move {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            // The semaphore is never closed; a failure only means no read is made.
            let Ok(_permit) = reads.acquire_owned().await else {
                return;
            };
            let (app, room) = key;
            let rows = match store.changes(app, room, since, limit).await {
                Ok(page) => Some(
                    page.rows
                        .into_iter()
                        .map(|c| (c.pos, from_store(app, room, c)))
                        .collect(),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, app = app.0, room = room.0, "cannot read a room's missing changes");
                    None
                }
            };
            let _ = me.send(HubCmd::Order(OrderCmd::Filled { key, since, rows }));
        });
    }

    /// A page read from the store: its changes are routed in position order, then those held
    /// that now follow; another page is asked for while the room is still behind.
    pub(super) async fn filled(
        &mut self,
        key: (AppId, RoomNumber),
        since: Pos,
        rows: Option<Read>,
    ) {
        let Some(b) = self.order.behind.get_mut(&key) else {
            return;
        };
        b.reading = false;
        let before = self.routed.get(&key).copied().unwrap_or_default();
        if let Some(rows) = rows {
            for (pos, change) in rows {
                let last = self.routed.get(&key).copied().unwrap_or(since);
                if pos <= last {
                    continue;
                }
                if pos.0 != last.0 + 1 {
                    // The store is gapless per room; this page started elsewhere.
                    break;
                }
                match change {
                    Some(c) => self.route(c).await,
                    None => {
                        self.routed.insert(key, pos);
                    }
                }
            }
        }
        self.drain(key).await;
        let now = self.routed.get(&key).copied().unwrap_or_default();
        let Some(b) = self.order.behind.get_mut(&key) else {
            return;
        };
        if !self.rooms.contains_key(&key) && !b.joining(now) {
            // Nobody here follows the room any more (left, kicked, deleted), or the missed
            // joining was routed and none of the joiner's connections is left.
            self.order.behind.remove(&key);
            return;
        }
        if now > before {
            b.misses = 0;
        } else {
            b.misses = b.misses.saturating_add(1);
        }
        let pause = if b.misses == 0 {
            Duration::ZERO
        } else {
            (Duration::from_millis(50) * 2u32.saturating_pow(b.misses.min(8))).min(MAX_BACKOFF)
        };
        self.read_ahead(key, pause);
    }

    /// Routes the held changes that now follow the last routed, and forgets the room's
    /// catch-up once it has reached its target.
    async fn drain(&mut self, key: (AppId, RoomNumber)) {
        loop {
            let last = self.routed.get(&key).copied().unwrap_or_default();
            let Some(b) = self.order.behind.get_mut(&key) else {
                return;
            };
            while b.pending.first_key_value().is_some_and(|(p, _)| *p <= last) {
                b.pending.pop_first();
            }
            let next = match b.pending.first_key_value() {
                Some((p, _)) if p.0 == last.0 + 1 => b.pending.pop_first().map(|(_, c)| c),
                _ => None,
            };
            match next {
                Some(c) => self.route(c).await,
                None => {
                    if b.pending.is_empty() && last >= b.target && !b.reading {
                        self.order.behind.remove(&key);
                    }
                    return;
                }
            }
        }
    }
}

/// A change read from the store, as the bus would have carried it (the same frame follows).
fn from_store(app: AppId, room: RoomNumber, c: Change) -> Option<Arc<RoomChange>> {
    let change = ChangeData::from_body(&c.body)?;
    Some(Arc::new(RoomChange {
        app,
        room,
        pos: c.pos,
        seq: c.body.item_seq(),
        at: c.at,
        change,
        item: c.item.as_ref().map(Into::into),
    }))
}
