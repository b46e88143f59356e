//! One connection: authenticate, subscribe, send `ready`, replay what the client missed, then
//! go live: from there on the fan-out lanes write the room's next changes straight to the
//! socket, and the session handles the rest (the client's requests, heartbeats, membership
//! changes, and gaps). Per room the connection keeps the last position delivered: a change at
//! or below it is a duplicate and skipped; a change above it plus one reveals a gap, filled
//! from the store before the change is sent.

use super::Gateway;
use super::conn::{Conn, Cursor, Wake};
use super::hub::{Effect, HubCmd, Out};
use super::protocol::{self, ClientFrame, ReadyRoom, ResumeMap, close};
use super::wire::{self, Decoder, Incoming, WireError};
use crate::AppState;
use crate::error::ApiError;
use bytes::Bytes;
use confab_core::event::EventBody;
use confab_core::ids::{AppId, Pos, RoomNumber, UserId};
use confab_core::model::MemberState;
use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tracing::Instrument;

mod requests;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Changes read from the store per page while replaying.
const PAGE: usize = 500;

/// How long a closing connection may take to write its last frames.
const LINGER: Duration = Duration::from_secs(1);

/// Why a session ends: the close code to send (if any can still be sent).
struct End(u16, &'static str);

impl From<WireError> for End {
    fn from(e: WireError) -> Self {
        End(e.close_code(), e.reason())
    }
}

/// Runs one connection, from the first byte after the handshake (`early`: bytes the client
/// sent along with its request).
pub(crate) async fn run(tcp: TcpStream, early: Bytes, state: AppState, gw: Gateway) {
    let mut decoder = Decoder::new(gw.config().max_message_bytes);
    decoder.extend(&early);
    // It may be a slice of the HTTP server's whole read buffer: not kept.
    drop(early);
    let who = Box::pin(authenticate(&tcp, &mut decoder, &state, &gw)).await;
    let ((app, user), resume) = match who {
        Ok(v) => v,
        Err(End(code, reason)) => {
            if code != 0 {
                let bye = wire::close(code, reason);
                let _ = tokio::time::timeout(LINGER, wire::write_all(&tcp, &bye)).await;
            }
            let _ = socket2::SockRef::from(&tcp).shutdown(std::net::Shutdown::Both);
            return;
        }
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(Conn::new(id, app, user.clone(), tcp, gw.config().queue));
    let mut session = Session {
        conn,
        decoder,
        state,
        gw,
        id,
        app,
        user,
        typing: HashMap::new(),
        last_heard: Instant::now(),
    };
    let span = tracing::debug_span!("ws", conn = session.id, user = %session.user);
    let end = Box::pin(session.connected(resume)).instrument(span).await;
    tracing::debug!(
        conn = session.id,
        code = end.0,
        reason = end.1,
        "connection ends"
    );
    let conn = &session.conn;
    if end.0 != 0 {
        if end.0 == close::SLOW_CONSUMER {
            // The client is not reading: what it has not taken is dropped.
            conn.discard_unsent();
        }
        conn.write(&wire::close(end.0, end.1));
        let _ = tokio::time::timeout(LINGER, conn.flush(false)).await;
    }
    conn.shutdown();
}

/// Unregisters the connection from the hub however the session ends.
struct Detach(Gateway, u64);

impl Drop for Detach {
    fn drop(&mut self) {
        self.0.hub(HubCmd::Detach { conn: self.1 });
    }
}

/// Waits for the `auth` frame (within the configured time) and checks its token.
async fn authenticate(
    tcp: &TcpStream,
    decoder: &mut Decoder,
    state: &AppState,
    gw: &Gateway,
) -> Result<((AppId, UserId), Option<ResumeMap>), End> {
    let first = tokio::time::timeout(gw.config().auth_timeout, first_text(tcp, decoder))
        .await
        .map_err(|_| End(close::UNAUTHORIZED, "no auth in time"))??;
    let outcome = match ClientFrame::parse(&first) {
        Ok(ClientFrame::Auth { token, resume }) => state
            .authenticate_user(&token)
            .await
            .map(|who| (who, resume))
            .map_err(|e| (e, None)),
        Ok(_) => Err((ApiError::unauthorized("the first frame must be auth"), None)),
        Err((e, reference)) => Err((
            ApiError::unauthorized(format!("the first frame must be auth ({})", e.message)),
            reference,
        )),
    };
    match outcome {
        Ok(v) => Ok(v),
        Err((e, reference)) => {
            let frame = protocol::error(&e, &reference);
            let _ = tokio::time::timeout(LINGER, wire::write_all(tcp, &frame)).await;
            Err(End(close::UNAUTHORIZED, "unauthorized"))
        }
    }
}

/// The first text message, answering pings on the way.
async fn first_text(tcp: &TcpStream, decoder: &mut Decoder) -> Result<String, End> {
    loop {
        while let Some(m) = decoder.next()? {
            match m {
                Incoming::Text(t) => return Ok(t),
                Incoming::Ping(p) => {
                    let pong = wire::frame(wire::OP_PONG, &p);
                    wire::write_all(tcp, &pong)
                        .await
                        .map_err(|_| End(0, "write failed"))?;
                }
                Incoming::Pong => {}
                Incoming::Binary => return Err(End(close::UNAUTHORIZED, "expected auth")),
                Incoming::Close => return Err(End(1000, "closed by client")),
            }
        }
        tcp.readable().await.map_err(|_| End(0, "read error"))?;
        match decoder.read_from(tcp) {
            Ok(0) => return Err(End(0, "closed by client")),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return Err(End(0, "read error")),
        }
    }
}

struct Session {
    conn: Arc<Conn>,
    decoder: Decoder,
    state: AppState,
    gw: Gateway,
    id: u64,
    app: AppId,
    user: UserId,
    /// When this connection last announced typing, per room.
    typing: HashMap<RoomNumber, Instant>,
    last_heard: Instant,
}

impl Session {
    /// After authentication: register with the hub, then serve until the end.
    async fn connected(&mut self, resume: Option<ResumeMap>) -> End {
        let (reply, answer) = oneshot::channel();
        self.gw.hub(HubCmd::Attach {
            conn: self.conn.clone(),
            reply,
        });
        if !answer.await.unwrap_or(false) {
            let e = ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                "this user has too many open connections",
            );
            self.conn.write(&protocol::error(&e, &None));
            return End(close::TOO_MANY_CONNECTIONS, "too many connections");
        }
        let _detach = Detach(self.gw.clone(), self.id);
        self.state.seen(self.app, &self.user);
        if let Err(end) = Box::pin(self.start(resume)).await {
            return end;
        }
        match self.serve().await {
            Ok(()) => End(0, "done"),
            Err(end) => end,
        }
    }

    /// Subscribes to the user's rooms, sends `ready`, replays what the client missed, and
    /// goes live.
    async fn start(&mut self, resume: Option<ResumeMap>) -> Result<(), End> {
        let rooms = joined_rooms(&self.state, self.app, &self.user).await?;
        for r in &rooms {
            let cursor = Cursor {
                pos: Pos(r.pos),
                member: true,
            };
            self.conn.set_cursor(RoomNumber(r.room), cursor);
        }
        let (reply, answer) = oneshot::channel();
        self.gw.hub(HubCmd::Subscribe {
            conn: self.id,
            rooms: rooms.iter().map(|r| RoomNumber(r.room)).collect(),
            known: rooms.iter().map(|r| Pos(r.pos)).collect(),
            reply,
        });
        let routed = answer
            .await
            .map_err(|_| End(close::GOING_AWAY, "stopping"))?;
        self.write(&protocol::ready(self.id, &self.user, &rooms))
            .await?;
        let asked = resume.is_some();
        let resume = resume.map(|m| parse_resume(&m)).unwrap_or_default();
        let plan: Vec<(RoomNumber, Pos, Pos)> = rooms
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let room = RoomNumber(r.room);
                // Changes routed before the subscription took effect are read from the store.
                let target = Pos(r
                    .pos
                    .max(routed.get(i).copied().flatten().map_or(0, |p| p.0)));
                let from = resume.get(&room).copied().unwrap_or(Pos(r.pos));
                (room, from, target)
            })
            .collect();
        // A reconnect that asks for a replay pays for it like a `resume` frame, or reconnecting
        // in a loop would replay without limit. Only the rooms it names count (the others
        // replay at most what arrived while subscribing). Over budget, each named room with a
        // backlog gets a `reset` (the client pages its history over REST) instead of the
        // replay: explicit, never a skip.
        let named = |room: &RoomNumber| resume.contains_key(room);
        let ranges = plan.iter().filter(|p| named(&p.0)).map(|p| (p.1, p.2));
        let over = asked && self.meter_replay(ranges).is_err();
        for (room, from, target) in plan {
            if over && from < target && named(&room) {
                self.reset(room, target).await?;
            } else {
                self.replay(room, from, target).await?;
            }
        }
        self.flush().await?;
        // Deliveries that came in meanwhile wait in the inbox; the lanes pass them by until
        // the session has dealt with them.
        self.conn.go_live();
        Ok(())
    }

    /// Delivers the room's changes after `from`, knowing they exist up to at least `target`;
    /// a backlog above the cap is replaced by a `reset`.
    async fn replay(&mut self, room: RoomNumber, from: Pos, target: Pos) -> Result<(), End> {
        let Some(cursor) = self.conn.cursor(room) else {
            return Ok(());
        };
        if !cursor.member {
            return Ok(());
        }
        let from = Pos(from.0.clamp(0, target.0));
        if target.0 <= from.0 {
            let pos = cursor.pos.max(from);
            self.conn.set_cursor(room, Cursor { pos, member: true });
            return Ok(());
        }
        if (target.0 - from.0) as u64 > self.gw.config().resume_cap {
            return self.reset(room, target).await;
        }
        let c = Cursor {
            pos: from,
            member: true,
        };
        self.conn.set_cursor(room, c);
        self.fill(room, None).await
    }

    /// Skips the room's backlog up to `target` with a `reset` frame.
    async fn reset(&mut self, room: RoomNumber, target: Pos) -> Result<(), End> {
        let c = Cursor {
            pos: target,
            member: true,
        };
        self.conn.set_cursor(room, c);
        self.feed(&protocol::reset(room, target)).await
    }

    /// Sends the room's changes from the store after the cursor, up to `upto` (else to the
    /// end), stopping after a change that ends the user's membership.
    async fn fill(&mut self, room: RoomNumber, upto: Option<Pos>) -> Result<(), End> {
        loop {
            let Some(cursor) = self.conn.cursor(room) else {
                return Ok(());
            };
            if !cursor.member || upto.is_some_and(|u| cursor.pos >= u) {
                return Ok(());
            }
            let limit = upto.map_or(PAGE, |u| ((u.0 - cursor.pos.0) as usize).min(PAGE));
            let page = self
                .state
                .store
                .changes(self.app, room, cursor.pos, limit)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "cannot read changes");
                    End(1011, "storage unavailable")
                })?;
            let empty = page.rows.is_empty();
            for c in &page.rows {
                if upto.is_some_and(|u| c.pos > u) {
                    return Ok(());
                }
                let exit = ends_membership(&c.body, &self.user);
                // A lane may have delivered it meanwhile (the connection is live).
                let written = self
                    .conn
                    .write_change(room, c.pos, &protocol::change(room, c), !exit)
                    .map_err(|()| End(0, "write failed"))?;
                if written {
                    self.flush_if_full().await?;
                }
                if exit {
                    self.gw.hub(HubCmd::Unsubscribe {
                        conn: self.id,
                        room,
                        pos: c.pos,
                    });
                    return Ok(());
                }
            }
            if !page.has_more || empty {
                return Ok(());
            }
        }
    }

    /// The main loop: deliveries the lanes left, client frames, heartbeats.
    async fn serve(&mut self) -> Result<(), End> {
        let mut batch = VecDeque::new();
        loop {
            let conn = self.conn.clone();
            tokio::select! {
                biased;
                wake = conn.wait(&mut batch) => match wake {
                    // The hub forgot this connection (cut off, resync, shutdown).
                    Wake::Closed(code) => {
                        let code = if code == 0 { close::GOING_AWAY } else { code };
                        return Err(End(code, "closed by the server"));
                    }
                    Wake::Unsent => self.flush().await?,
                    Wake::Inbox => {
                        while let Some(out) = batch.pop_front() {
                            self.deliver(out).await?;
                        }
                        if batch.capacity() > 16 {
                            batch.shrink_to(16);
                        }
                        self.conn.done();
                        self.flush().await?;
                    }
                },
                r = conn.tcp.readable() => {
                    r.map_err(|_| End(0, "read error"))?;
                    // Boxed: keeps every idle session's future small.
                    Box::pin(self.read()).await?;
                }
            }
        }
    }

    /// Reads what the client sent and answers it.
    async fn read(&mut self) -> Result<(), End> {
        loop {
            match self.decoder.read_from(&self.conn.tcp) {
                Ok(0) => return Err(End(0, "closed by client")),
                Ok(_) => self.last_heard = Instant::now(),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(_) => return Err(End(0, "read error")),
            }
            while let Some(m) = self.decoder.next()? {
                match m {
                    Incoming::Text(t) => self.request(&t).await?,
                    Incoming::Binary => {
                        let e = ApiError::bad_request("invalid_frame", "frames are JSON text");
                        self.write(&protocol::error(&e, &None)).await?;
                    }
                    Incoming::Ping(p) => self.write(&wire::frame(wire::OP_PONG, &p)).await?,
                    Incoming::Pong => {}
                    Incoming::Close => return Err(End(1000, "closed by client")),
                }
            }
        }
    }

    async fn deliver(&mut self, out: Out) -> Result<(), End> {
        let Out {
            room,
            pos,
            frame,
            effect,
        } = out;
        match effect {
            Effect::Notice => return self.feed(&frame).await,
            Effect::Heartbeat => {
                if self.last_heard.elapsed() > self.gw.config().ping_interval * 2 {
                    return Err(End(close::HEARTBEAT, "no heartbeat"));
                }
                return self.feed(&wire::frame(wire::OP_PING, b"")).await;
            }
            _ => {}
        }
        let cursor = self.conn.cursor(room);
        if cursor.is_some_and(|c| pos <= c.pos) {
            return Ok(());
        }
        match (effect, cursor) {
            (Effect::Subscribe, _) | (Effect::None, None) => {
                self.conn.set_cursor(room, Cursor { pos, member: true });
            }
            (_, Some(c)) if c.member => {
                if pos.0 > c.pos.0 + 1 {
                    // Boxed: rare, and it keeps every idle session's future small.
                    Box::pin(self.fill(room, Some(Pos(pos.0 - 1)))).await?;
                    let now = self.conn.cursor(room);
                    if now.is_none_or(|c| !c.member || c.pos >= pos) {
                        return Ok(());
                    }
                }
                let member = effect != Effect::Unsubscribe;
                self.conn.set_cursor(room, Cursor { pos, member });
                if !member {
                    self.gw.hub(HubCmd::Unsubscribe {
                        conn: self.id,
                        room,
                        pos,
                    });
                }
            }
            (Effect::None, Some(_)) => return Ok(()),
            (_, _) => {
                self.conn.set_cursor(room, Cursor { pos, member: false });
            }
        }
        self.feed(&frame).await
    }

    /// Writes a frame, or leaves it for the next flush when the socket is busy; waits for
    /// the socket only when much is unsent.
    async fn feed(&mut self, frame: &Bytes) -> Result<(), End> {
        if !self.conn.write(frame) {
            return Err(End(0, "write failed"));
        }
        self.flush_if_full().await
    }

    async fn flush_if_full(&mut self) -> Result<(), End> {
        if self.conn.unsent() >= 64 {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), End> {
        self.conn.flush(true).await.map_err(|code| match code {
            0 => End(0, "write failed"),
            code => End(code, "cut off"),
        })
    }

    /// Sends one frame now.
    async fn write(&mut self, frame: &Bytes) -> Result<(), End> {
        self.feed(frame).await?;
        self.flush().await
    }
}

/// The rooms the user has joined, with their current positions.
async fn joined_rooms(state: &AppState, app: AppId, user: &UserId) -> Result<Vec<ReadyRoom>, End> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .store
            .rooms_of_user(app, user, MemberState::Joined, after, 200)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot list rooms");
                End(1011, "storage unavailable")
            })?;
        for s in &page.rows {
            out.push(ReadyRoom {
                room: s.room.number.0,
                pos: s.room.last_pos.0,
                last_seq: s.room.last_seq.0,
            });
        }
        match page.rows.last() {
            Some(s) if page.has_more => after = Some((s.activity, s.room.number)),
            _ => break,
        }
    }
    Ok(out)
}

/// Whether this change ends `user`'s membership of its room (or the room itself).
fn ends_membership(body: &EventBody, user: &UserId) -> bool {
    match body {
        EventBody::Membership { user: u, state, .. } => u == user && *state != MemberState::Joined,
        EventBody::RoomDeleted { .. } => true,
        _ => false,
    }
}

fn parse_resume(map: &ResumeMap) -> HashMap<RoomNumber, Pos> {
    map.iter()
        .filter_map(|(k, v)| Some((RoomNumber(k.parse().ok()?), Pos((*v).max(0)))))
        .collect()
}
