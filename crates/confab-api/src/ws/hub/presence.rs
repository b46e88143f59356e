//! Presence in the hub: who is online across every node, and telling the connections of this
//! node without a storm.
//!
//! **Across nodes.** This node publishes, per app, what it knows first-hand (its users with a
//! connection here: [`Local`]) as numbered `Changes` notes, one per tick at most, and a `Beat`
//! every `presence_heartbeat`. Per listened app it keeps a [`View`]: each node's set (its own
//! included) and, per user, on how many nodes they are. A user is online while any node lists
//! them. A note out of sequence, or a beat whose number or count disagrees, makes this node ask
//! that node for its whole set (`Ask` → `State`, in bounded parts); a node that starts
//! listening to an app asks every node. A node silent for three beats is gone: its users are
//! offline unless another node lists them.
//! A node keeps listening to an app's topic while it lists a user of the app (one in their
//! grace period, with no connection of the app left, included), so that it still answers asks.
//! A user's rooms here follow their membership as the hub routes it ([`membership`]): a
//! change of them is a `Changes` note with the whole list, and other nodes' views flip the
//! user online or offline in the rooms gained or lost.
//!
//! **No storm.** A connection gets, once subscribed, one `presence_list` snapshot per room
//! with anyone online, built once per room and tick and shared by every connection that asks
//! in that tick. Later changes wait per room and go out as one frame to the room's
//! connections: at once when the room has few connections for the changes waiting, else when
//! the room has been quiet for [`QUIET`] or at most [`MAX_DELAY`] after the first. Each frame
//! written so carries at least one change per [`SHARE`] receivers, so N users connecting
//! together cost at most about `SHARE`·N frames, plus one snapshot each, plus one quiet-time
//! flush, instead of N²/2.

use super::{Conn, Effect, Hub};
use crate::ws::protocol::{self, PresenceEntry};
use confab_core::Command;
use confab_core::bus::{NodeId, PresenceBody, PresentUser};
use confab_core::ids::{AppId, Pos, RoomNumber, UserId};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};
use view::{Flip, NodeView, View};

mod membership;
mod notes;
mod view;

/// How often waiting notices, snapshots, notes and beats are looked at.
pub(super) const TICK: Duration = Duration::from_millis(100);
/// A room's waiting changes go out once no other came for this long ...
const QUIET: Duration = Duration::from_millis(250);
/// ... or this long after the first, whichever is first.
const MAX_DELAY: Duration = Duration::from_secs(2);
/// ... or at once when they are at least one per this many receivers.
const SHARE: usize = 2;
/// Users plus rooms per note: a node's set travels in parts of about this size.
const PART: usize = 1000;
/// Beats missed before a node is taken for gone.
const MISSED_BEATS: u32 = 3;
/// Snapshots of an app this node has just started to follow wait this long, so that the
/// other nodes' answers to its ask are in them.
const SETTLE: Duration = Duration::from_millis(500);

/// One user's connections on this node and their presence as this node publishes it.
pub(super) struct UserEntry {
    pub(super) conns: Vec<u64>,
    /// Published online here (and not offline since).
    online: bool,
    /// Bumped on every attach and last close, so a stale grace timer does nothing.
    generation: u64,
}

impl UserEntry {
    pub(super) fn new() -> Self {
        UserEntry {
            conns: Vec::new(),
            online: false,
            generation: 0,
        }
    }

    /// A connection of the user opened: a pending "offline" is called off.
    pub(super) fn attach(&mut self, conn: u64) {
        self.conns.push(conn);
        self.generation += 1;
    }
}

/// This node's first-hand presence in one app.
#[derive(Default)]
struct Local {
    /// `Changes` notes published so far.
    seq: u64,
    users: HashMap<UserId, Vec<RoomNumber>>,
    /// Changes not published yet (a user is in one list at most: the last change wins).
    online: Vec<PresentUser>,
    offline: Vec<UserId>,
}

/// Changes waiting to be told to one room's connections.
struct Pending {
    changes: Vec<PresenceEntry>,
    first: Instant,
    last: Instant,
}

/// The hub's presence state.
pub(super) struct State {
    node: NodeId,
    beat_every: Duration,
    last_beat: Instant,
    local: HashMap<AppId, Local>,
    views: HashMap<AppId, View>,
    asks: Vec<(AppId, Option<NodeId>)>,
    pending: HashMap<(AppId, RoomNumber), Pending>,
    snapshots: Vec<(Arc<Conn>, Vec<RoomNumber>)>,
}

impl State {
    pub(super) fn new(beat_every: Duration) -> Self {
        // A random identity (a randomly keyed hasher's output): a restarted node is new.
        let node = NodeId(
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
        );
        State {
            node,
            beat_every,
            last_beat: Instant::now(),
            local: HashMap::new(),
            views: HashMap::new(),
            asks: Vec::new(),
            pending: HashMap::new(),
            snapshots: Vec::new(),
        }
    }

    /// The node started listening to `app`: it builds its view from its own set and asks the
    /// other nodes for theirs.
    pub(super) fn listen_app(&mut self, app: AppId) -> Vec<Flip> {
        let mut flips = Vec::new();
        let mut view = View::new();
        view.nodes.insert(self.node, NodeView::new(true));
        if let Some(local) = self.local.get(&app) {
            for (u, rooms) in &local.users {
                view.add(self.node, u, rooms, &mut flips);
            }
        }
        self.views.insert(app, view);
        self.asks.push((app, None));
        flips
    }

    /// Whether this node lists users of `app` as online (some may be in their grace period,
    /// with no connection left).
    pub(super) fn holds(&self, app: AppId) -> bool {
        self.local.get(&app).is_some_and(|l| !l.users.is_empty())
    }

    /// No connection of `app` is left here: the view of the app is dropped (this node's own
    /// set stays until the graces end, and is still told to nodes that ask).
    pub(super) fn forget_app(&mut self, app: AppId) {
        self.views.remove(&app);
        self.pending.retain(|(a, _), _| *a != app);
    }
}

impl Hub {
    /// A connection's subscription took effect: its user is online here (if not yet), and
    /// the connection gets a snapshot of its rooms at the next tick.
    pub(super) fn presence_subscribed(&mut self, c: &Arc<Conn>, rooms: Vec<RoomNumber>) {
        let key = (c.app, c.user.clone());
        let Some(u) = self.users.get_mut(&key) else {
            return;
        };
        let first = !u.online;
        u.online = true;
        let p = &mut self.presence;
        let local = p.local.entry(c.app).or_default();
        let known = local.users.entry(c.user.clone()).or_default();
        let mut added = first;
        for r in &rooms {
            if !known.contains(r) {
                known.push(*r);
                added = true;
            }
        }
        if added {
            let rooms = known.clone();
            local.offline.retain(|x| *x != c.user);
            local.online.retain(|x| x.user != c.user);
            local.online.push(PresentUser {
                user: c.user.clone(),
                rooms: rooms.clone(),
            });
            let mut flips = Vec::new();
            if let Some(view) = p.views.get_mut(&c.app) {
                view.add(p.node, &c.user, &rooms, &mut flips);
            }
            self.presence_flips(c.app, flips);
        }
        self.presence.snapshots.push((c.clone(), rooms));
    }

    /// A connection closed: after the grace period its user may be offline here.
    pub(super) fn presence_detached(&mut self, app: AppId, user: &UserId, id: u64) {
        let key = (app, user.clone());
        let Some(u) = self.users.get_mut(&key) else {
            return;
        };
        u.conns.retain(|c| *c != id);
        if !u.conns.is_empty() {
            return;
        }
        if !u.online {
            self.users.remove(&key);
            return;
        }
        u.generation += 1;
        let generation = u.generation;
        let me = self.me.clone();
        let grace = self.config.presence_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = me.send(super::HubCmd::GraceOver { key, generation });
        });
    }

    /// The grace period after a user's last connection here ended: unless they came back,
    /// they are offline here (and everywhere, unless another node lists them).
    pub(super) fn grace_over(&mut self, key: (AppId, UserId), generation: u64) {
        let Some(u) = self.users.get(&key) else {
            return;
        };
        if u.generation != generation || !u.conns.is_empty() {
            return;
        }
        self.users.remove(&key);
        let (app, user) = key;
        let store = self.store.clone();
        let u = user.clone();
        tokio::spawn(async move {
            if let Err(e) = store.execute(Command::RecordSeen { app, user: u }).await {
                tracing::debug!(error = %e, "could not record last_seen_at");
            }
        });
        let p = &mut self.presence;
        if let Some(local) = p.local.get_mut(&app) {
            local.users.remove(&user);
            local.online.retain(|x| x.user != user);
            local.offline.push(user.clone());
        }
        let mut flips = Vec::new();
        if let Some(view) = p.views.get_mut(&app) {
            view.remove(p.node, &user, &mut flips);
        }
        self.presence_flips(app, flips);
        self.release_app(app);
    }

    /// Queues the notices of the cluster view's changes for the rooms this node serves.
    pub(super) fn presence_flips(&mut self, app: AppId, flips: Vec<Flip>) {
        let now = Instant::now();
        for f in flips {
            for room in &f.rooms {
                let Some(subs) = self.rooms.get(&(app, *room)) else {
                    continue;
                };
                if subs.len() > self.config.presence_room_limit {
                    continue;
                }
                let pending = self
                    .presence
                    .pending
                    .entry((app, *room))
                    .or_insert_with(|| Pending {
                        changes: Vec::new(),
                        first: now,
                        last: now,
                    });
                pending.last = now;
                pending.changes.retain(|e| e.user != f.user);
                pending.changes.push(PresenceEntry {
                    user: f.user.clone(),
                    online: f.online,
                    at: f.at,
                });
            }
        }
    }

    /// Every tick: publish this node's notes and beats, take silent nodes out, and send the
    /// snapshots and the notices that are due.
    pub(super) async fn presence_tick(&mut self) {
        self.publish_changes();
        let mut flips: Vec<(AppId, Vec<Flip>)> = Vec::new();
        let p = &mut self.presence;
        if p.last_beat.elapsed() >= p.beat_every {
            p.last_beat = Instant::now();
            p.local.retain(|_, l| {
                !l.users.is_empty() || !l.online.is_empty() || !l.offline.is_empty()
            });
            let beats: Vec<(AppId, u64, u64)> = p
                .local
                .iter()
                .map(|(a, l)| (*a, l.seq, l.users.len() as u64))
                .collect();
            for (app, seq, users) in beats {
                self.publish_note(app, seq, PresenceBody::Beat { users });
            }
            let p = &mut self.presence;
            let silent = p.beat_every * MISSED_BEATS;
            for (app, view) in p.views.iter_mut() {
                let gone: Vec<NodeId> = view
                    .nodes
                    .iter()
                    .filter(|(n, nv)| **n != p.node && nv.heard.elapsed() > silent)
                    .map(|(n, _)| *n)
                    .collect();
                let mut f = Vec::new();
                for n in gone {
                    tracing::debug!(
                        node = n.0,
                        app = app.0,
                        "a node fell silent; its users are offline"
                    );
                    view.drop_node(n, &mut f);
                }
                flips.push((*app, f));
            }
        }
        for (app, f) in flips {
            self.presence_flips(app, f);
        }
        for (app, of) in std::mem::take(&mut self.presence.asks) {
            self.publish_note(app, 0, PresenceBody::Ask { of });
        }
        let fresh = self.send_snapshots().await;
        self.send_notices(&fresh).await;
    }

    /// One snapshot frame per room with anyone online, shared by the connections that
    /// subscribed since the last tick.
    /// Gives the connections and rooms that got their snapshot now or still wait for it: a
    /// snapshot shows the present, so the changes waiting for the room are not for them.
    async fn send_snapshots(&mut self) -> HashSet<(u64, RoomNumber)> {
        let queued = std::mem::take(&mut self.presence.snapshots);
        let mut fresh = HashSet::new();
        for (conn, rooms) in queued {
            fresh.extend(rooms.iter().map(|r| (conn.id, *r)));
            let young = self
                .presence
                .views
                .get(&conn.app)
                .is_some_and(|v| v.since.elapsed() < SETTLE);
            if young {
                self.presence.snapshots.push((conn, rooms));
                continue;
            }
            for room in rooms {
                let key = (conn.app, room);
                // The connection may have left the room since.
                let follows = self
                    .conns
                    .get(&conn.id)
                    .is_some_and(|e| e.rooms.contains_key(&room));
                if !follows
                    || self
                        .rooms
                        .get(&key)
                        .is_none_or(|s| s.len() > self.config.presence_room_limit)
                {
                    continue;
                }
                let Some(view) = self.presence.views.get_mut(&conn.app) else {
                    continue;
                };
                let frame = match view.snapshots.get(&room) {
                    Some(f) => f.clone(),
                    None => {
                        let Some(users) = view.by_room.get(&room) else {
                            continue;
                        };
                        // Nobody else online: nothing to tell (the receiver knows of itself).
                        if users.len() == 1 && users.contains(&conn.user) {
                            continue;
                        }
                        let entries: Vec<PresenceEntry> = users
                            .iter()
                            .filter_map(|u| {
                                view.online.get(u).map(|o| PresenceEntry {
                                    user: u.clone(),
                                    online: true,
                                    at: o.since,
                                })
                            })
                            .collect();
                        let f = protocol::presence_list(room, true, &entries);
                        view.snapshots.insert(room, f.clone());
                        f
                    }
                };
                let target = std::iter::once((conn.clone(), Effect::Notice));
                self.dispatch(RoomNumber(0), Pos(0), &frame, target).await;
            }
        }
        fresh
    }

    /// The rooms whose waiting changes are due, each as one frame to its connections.
    async fn send_notices(&mut self, fresh: &HashSet<(u64, RoomNumber)>) {
        let now = Instant::now();
        let mut due = Vec::new();
        for (key, p) in &self.presence.pending {
            let receivers = self.rooms.get(key).map_or(0, Vec::len);
            if p.changes.len() * SHARE >= receivers
                || now.duration_since(p.last) >= QUIET
                || now.duration_since(p.first) >= MAX_DELAY
            {
                due.push(*key);
            }
        }
        for key in due {
            let Some(p) = self.presence.pending.remove(&key) else {
                continue;
            };
            let Some(subs) = self.rooms.get(&key) else {
                continue;
            };
            if let [one] = p.changes.as_slice() {
                // A single change keeps the frame of earlier versions; its user's own
                // connections are not told about themself.
                let frame = protocol::presence(key.1, &one.user, one.online, one.at);
                let targets: Vec<(Arc<Conn>, Effect)> = subs
                    .iter()
                    .filter(|c| c.user != one.user && !fresh.contains(&(c.id, key.1)))
                    .map(|c| (c.clone(), Effect::Notice))
                    .collect();
                self.dispatch(RoomNumber(0), Pos(0), &frame, targets.into_iter())
                    .await;
            } else {
                let frame = protocol::presence_list(key.1, false, &p.changes);
                let targets: Vec<(Arc<Conn>, Effect)> = subs
                    .iter()
                    .filter(|c| !fresh.contains(&(c.id, key.1)))
                    .map(|c| (c.clone(), Effect::Notice))
                    .collect();
                self.dispatch(RoomNumber(0), Pos(0), &frame, targets.into_iter())
                    .await;
            }
        }
    }
}
