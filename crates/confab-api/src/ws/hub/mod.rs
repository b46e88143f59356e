//! The dispatcher of one node. It consumes the bus in order and keeps the index room →
//! subscribed connections; the bus receiver listens to exactly the rooms of that index and to
//! the apps the node has connections of. Membership changes change the index in dispatch
//! order, so a kick takes effect before any later change of the room is routed. Each change
//! is framed from what the bus carries (no store read), serialized once as a complete
//! WebSocket frame, and handed with its receivers to the fan-out lanes ([`lane`]). A connection
//! that cannot take a frame (its queues are full) is cut off, never waited for. Per room the
//! hub routes positions in order, reading from the store what the bus lost ([`order`],
//! [`resync`]).

use super::WsConfig;
pub(crate) use super::conn::Conn;
use super::protocol::{self, close};
use bytes::Bytes;
use confab_core::Store;
use confab_core::bus::{Bus, BusError, BusMessage, BusReceiver, Topic};
use confab_core::ids::{AppId, Pos, RoomNumber, UserId};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

mod join_log;
mod joins;
mod lane;
mod order;
mod presence;
mod resync;
mod route;

use presence::UserEntry;

/// What a frame does to the receiving connection's subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// A notice outside any room's stream (presence, typing, read).
    Notice,
    /// Time for a heartbeat (no frame): ping, or close if the client has been silent.
    Heartbeat,
    None,
    /// This change made the connection's user a member: it starts the room's stream.
    Subscribe,
    /// This change ended the user's membership (or the room): the room's stream ends with it.
    Unsubscribe,
}

/// A frame left for one connection's session. The frame's bytes are shared by every
/// connection that receives it (built and serialized once).
pub(crate) struct Out {
    pub room: RoomNumber,
    pub pos: Pos,
    pub frame: Bytes,
    pub effect: Effect,
}

pub(crate) enum HubCmd {
    /// Registers a connection; answers false when the user has too many.
    Attach {
        conn: Arc<Conn>,
        reply: oneshot::Sender<bool>,
    },
    /// Subscribes a connection to rooms; answers, per room, the last position already routed.
    Subscribe {
        conn: u64,
        rooms: Vec<RoomNumber>,
        /// Per room, the position the session read from the store before subscribing.
        known: Vec<Pos>,
        reply: oneshot::Sender<Vec<Option<Pos>>>,
    },
    /// The session saw its user's membership of `room` end, by the change at `pos` (the
    /// index may have been stale).
    Unsubscribe {
        conn: u64,
        room: RoomNumber,
        pos: Pos,
    },
    Detach {
        conn: u64,
    },
    GraceOver {
        key: (AppId, UserId),
        generation: u64,
    },
    /// Live changes may have been lost before the bus: every room is checked against the
    /// store, and every connected user's joined rooms too.
    ResyncAll,
    /// What a store read for the order of rooms found ([`order`]).
    Order(order::OrderCmd),
    Shutdown,
}

/// Heartbeats of one interval are spread over this many ticks.
const BEAT_SLICES: u32 = 20;

struct ConnEntry {
    conn: Arc<Conn>,
    /// The rooms the connection follows, each with the position as of which its user is
    /// known to be a member (the session's read of its rooms, or the joining routed here): an
    /// end of membership the session reports from before it is already dealt with.
    rooms: HashMap<RoomNumber, Pos>,
}

struct Hub {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    config: WsConfig,
    me: mpsc::UnboundedSender<HubCmd>,
    conns: HashMap<u64, ConnEntry>,
    users: HashMap<(AppId, UserId), UserEntry>,
    rooms: HashMap<(AppId, RoomNumber), Vec<Arc<Conn>>>,
    /// The last position routed, for every room seen since start.
    routed: HashMap<(AppId, RoomNumber), Pos>,
    /// Rooms being caught up from the store, and the reads doing it.
    order: order::Order,
    checks: resync::HeadChecks,
    joins: joins::JoinChecks,
    join_log: join_log::JoinLog,
    /// Connections attached per app (the app's topic is listened to while there are any).
    apps: HashMap<AppId, usize>,
    /// Topics to start (true) or stop listening to, applied to the receiver in order.
    interest: Vec<(Topic, bool)>,
    lanes: lane::Lanes,
    presence: presence::State,
}

pub(crate) fn spawn(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    config: WsConfig,
    me: mpsc::UnboundedSender<HubCmd>,
    cmds: mpsc::UnboundedReceiver<HubCmd>,
) {
    let rx = bus.subscribe();
    let lanes = lane::Lanes::start(&me);
    let hub = Hub {
        store,
        bus,
        config: config.clone(),
        me,
        conns: HashMap::new(),
        users: HashMap::new(),
        rooms: HashMap::new(),
        routed: HashMap::new(),
        order: order::Order::new(),
        checks: resync::HeadChecks::default(),
        joins: joins::JoinChecks::default(),
        join_log: join_log::JoinLog::default(),
        apps: HashMap::new(),
        interest: Vec::new(),
        lanes,
        presence: presence::State::new(config.presence_heartbeat),
    };
    tokio::spawn(hub.run(rx, cmds));
}

impl Hub {
    async fn run(
        mut self,
        mut rx: Box<dyn BusReceiver>,
        mut cmds: mpsc::UnboundedReceiver<HubCmd>,
    ) {
        // One timer for the node's heartbeats rather than one per connection; each tick serves
        // one slice of the connections, so heartbeats flow evenly instead of in a burst.
        let every = self.config.ping_interval / BEAT_SLICES;
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut slice = 0u64;
        let period = self.config.head_check;
        let mut check = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let period = self.config.join_check;
        let mut join_check = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        join_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut presence = tokio::time::interval(presence::TICK);
        presence.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = beat.tick() => {
                    slice = (slice + 1) % u64::from(BEAT_SLICES);
                    self.heartbeat(slice);
                }
                _ = check.tick() => self.check_all_heads(),
                _ = join_check.tick() => self.check_join_log(),
                _ = presence.tick() => self.presence_tick().await,
                cmd = cmds.recv() => match cmd {
                    Some(HubCmd::Shutdown) | None => break,
                    Some(HubCmd::Order(o)) => self.order_cmd(o).await,
                    Some(cmd) => self.command(cmd),
                },
                msg = rx.recv() => match msg {
                    Ok(m) => self.on_bus(m).await,
                    Err(BusError::Lagged(n)) => {
                        tracing::warn!(lost = n, "gateway lagged behind the bus; rooms catch up from the store");
                        self.check_all_heads();
                        self.check_joins();
                    }
                    Err(BusError::Closed) => break,
                },
            }
            for (topic, on) in self.interest.drain(..) {
                if on {
                    rx.listen(topic);
                } else {
                    rx.unlisten(topic);
                }
            }
        }
        self.kill_all(close::GOING_AWAY);
    }

    fn kill_all(&mut self, code: u16) {
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            if let Some(e) = self.conns.get(&id) {
                e.conn.close(code);
            }
            self.detach(id);
        }
    }

    fn command(&mut self, cmd: HubCmd) {
        match cmd {
            HubCmd::Attach { conn, reply } => {
                let key = (conn.app, conn.user.clone());
                let entry = self.users.entry(key).or_insert_with(UserEntry::new);
                if entry.conns.len() >= self.config.connections_per_user {
                    let _ = reply.send(false);
                    return;
                }
                entry.attach(conn.id);
                let n = self.apps.entry(conn.app).or_insert(0);
                *n += 1;
                if *n == 1 {
                    self.interest.push((Topic::App(conn.app), true));
                    let flips = self.presence.listen_app(conn.app);
                    self.presence_flips(conn.app, flips);
                    self.join_log_start(conn.app);
                }
                self.conns.insert(
                    conn.id,
                    ConnEntry {
                        conn,
                        rooms: HashMap::new(),
                    },
                );
                let _ = reply.send(true);
            }
            HubCmd::Subscribe {
                conn,
                rooms,
                known,
                reply,
            } => {
                let Some(app) = self.conns.get(&conn).map(|e| e.conn.app) else {
                    let _ = reply.send(Vec::new());
                    return;
                };
                self.subscribing(app, &rooms, &known);
                let Some(entry) = self.conns.get_mut(&conn) else {
                    let _ = reply.send(Vec::new());
                    return;
                };
                let c = entry.conn.clone();
                let mut routed = Vec::with_capacity(rooms.len());
                for (i, room) in rooms.iter().enumerate() {
                    if !entry.rooms.contains_key(room) {
                        let pos = known.get(i).copied().unwrap_or_default();
                        entry.rooms.insert(*room, pos);
                        let subs = self.rooms.entry((c.app, *room)).or_default();
                        if subs.is_empty() {
                            self.interest.push((Topic::Room(c.app, *room), true));
                        }
                        subs.push(c.clone());
                    }
                    routed.push(self.routed.get(&(c.app, *room)).copied());
                }
                let _ = reply.send(routed);
                self.presence_subscribed(&c, rooms);
            }
            HubCmd::Unsubscribe { conn, room, pos } => {
                // An end older than what subscribed the connection (a rejoining routed since,
                // or the session's own read) is no longer true.
                if let Some(e) = self.conns.get_mut(&conn)
                    && e.rooms.get(&room).is_some_and(|since| *since < pos)
                {
                    e.rooms.remove(&room);
                    let (app, user) = (e.conn.app, e.conn.user.clone());
                    self.unsubscribe(app, room, conn);
                    self.presence_left(app, &user, room);
                }
            }
            HubCmd::Detach { conn } => self.detach(conn),
            HubCmd::GraceOver { key, generation } => self.grace_over(key, generation),
            HubCmd::ResyncAll => {
                self.check_all_heads();
                self.check_joins();
            }
            HubCmd::Order(_) | HubCmd::Shutdown => {}
        }
    }

    /// Forgets a connection; after the grace period its user may be announced offline.
    fn detach(&mut self, id: u64) {
        let Some(entry) = self.conns.remove(&id) else {
            return;
        };
        entry.conn.close(0);
        let app = entry.conn.app;
        for room in entry.rooms.keys() {
            self.unsubscribe(app, *room, id);
        }
        let mut last = false;
        if let Some(n) = self.apps.get_mut(&app) {
            *n -= 1;
            if *n == 0 {
                last = true;
                self.apps.remove(&app);
                self.presence.forget_app(app);
                self.join_log_forget(app);
            }
        }
        self.presence_detached(app, &entry.conn.user, id);
        if last {
            self.release_app(app);
        }
    }

    /// Stops listening to an app's topic once nothing here needs it: no connection of the
    /// app, and no user of it in their grace period (another node that asks this one for its
    /// set of online users must hear the ask to answer it).
    fn release_app(&mut self, app: AppId) {
        if !self.apps.contains_key(&app) && !self.presence.holds(app) {
            self.interest.push((Topic::App(app), false));
        }
    }

    fn unsubscribe(&mut self, app: AppId, room: RoomNumber, id: u64) {
        if let Some(subs) = self.rooms.get_mut(&(app, room)) {
            if let Some(i) = subs.iter().position(|c| c.id == id) {
                subs.swap_remove(i);
            }
            if subs.is_empty() {
                self.rooms.remove(&(app, room));
                self.interest.push((Topic::Room(app, room), false));
            }
        }
    }

    async fn on_bus(&mut self, msg: BusMessage) {
        match msg {
            BusMessage::Change(c) => self.on_change(c).await,
            BusMessage::Read {
                app,
                room,
                user,
                seq,
            } => self.read_marker(app, room, &user, seq).await,
            BusMessage::Typing { app, room, user } => {
                let Some(subs) = self.rooms.get(&(app, room)) else {
                    return;
                };
                let frame =
                    protocol::typing(room, &user, self.config.typing_ttl.as_millis() as u64);
                let targets = subs
                    .iter()
                    .filter(|c| c.user != user)
                    .map(|c| (c.clone(), Effect::Notice));
                self.dispatch(RoomNumber(0), Pos(0), &frame, targets).await;
            }
            BusMessage::Presence(note) => self.presence_note(&note),
        }
    }

    /// Hands a frame to the lanes of its receivers (waiting for a lane that is full).
    async fn dispatch(
        &self,
        room: RoomNumber,
        pos: Pos,
        frame: &Bytes,
        targets: impl Iterator<Item = (Arc<Conn>, Effect)>,
    ) {
        self.lanes.dispatch(room, pos, frame, targets).await;
    }

    /// Asks the connections of one slice for a heartbeat; one that cannot even queue it is
    /// cut off.
    fn heartbeat(&mut self, slice: u64) {
        let mut dead = Vec::new();
        let slices = u64::from(BEAT_SLICES);
        let none = Bytes::new();
        for e in self.conns.values().filter(|e| e.conn.id % slices == slice) {
            if !e
                .conn
                .offer(RoomNumber(0), Pos(0), &none, Effect::Heartbeat)
            {
                dead.push(e.conn.clone());
            }
        }
        self.cut_off(dead);
    }

    /// Cuts off connections whose queue is full (or whose session has ended).
    fn cut_off(&mut self, dead: Vec<Arc<Conn>>) {
        for c in dead {
            c.close(close::SLOW_CONSUMER);
            self.detach(c.id);
        }
    }
}
