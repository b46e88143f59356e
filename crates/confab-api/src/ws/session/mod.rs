//! One connection: authenticate, subscribe, send `ready`, replay what the client missed, then
//! write live frames out while answering the client's requests. Per room the session keeps the
//! last position delivered: a live change at or below it is a duplicate and skipped; a change
//! above it plus one reveals a gap, filled from the store before the change is sent.

use super::Gateway;
use super::hub::{Conn, Effect, HubCmd, Out};
use super::protocol::{self, ClientFrame, ReadyRoom, ResumeMap, close};
use super::queue::Queue;
use crate::AppState;
use crate::error::ApiError;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use confab_core::event::EventBody;
use confab_core::ids::{AppId, Pos, RoomNumber, UserId};
use confab_core::model::MemberState;
use futures_util::task::AtomicWaker;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::Instrument;

mod requests;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Changes read from the store per page while replaying.
const PAGE: usize = 500;

/// Why a session ends: the close code to send (if any can still be sent).
struct End(u16, &'static str);

/// Per room: the last position delivered, and whether the user is (still) a member.
#[derive(Clone, Copy)]
struct Cursor {
    pos: Pos,
    member: bool,
}

/// Runs one connection. The session owns the socket from the start, so the task's future
/// holds it once (its size is most of an idle connection's memory).
pub(crate) fn run(
    socket: WebSocket,
    state: AppState,
    gw: Gateway,
) -> impl std::future::Future<Output = ()> + Send {
    let queue = Arc::new(Queue::new(gw.config().queue));
    Session {
        socket,
        state,
        gw,
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        queue,
        app: AppId(0),
        user: UserId(String::new()),
        cursors: HashMap::new(),
        readable: Arc::new(Readable::new()),
        typing: HashMap::new(),
        last_heard: Instant::now(),
    }
    .run()
}

/// Unregisters the connection from the hub however the session ends.
struct Detach(Gateway, u64);

impl Drop for Detach {
    fn drop(&mut self) {
        self.0.hub(HubCmd::Detach { conn: self.1 });
    }
}

async fn close_socket(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

/// Waits for the `auth` frame (within the configured time) and checks its token.
async fn authenticate(
    socket: &mut WebSocket,
    state: &AppState,
    gw: &Gateway,
) -> Result<((AppId, UserId), Option<ResumeMap>), End> {
    let first = tokio::time::timeout(gw.config().auth_timeout, next_text(socket))
        .await
        .map_err(|_| End(close::UNAUTHORIZED, "no auth in time"))??;
    let refuse = |e: ApiError, reference: Option<Value>| (e, reference);
    let outcome = match ClientFrame::parse(&first) {
        Ok(ClientFrame::Auth { token, resume }) => state
            .authenticate_user(&token)
            .await
            .map(|who| (who, resume))
            .map_err(|e| refuse(e, None)),
        Ok(_) => Err(refuse(
            ApiError::unauthorized("the first frame must be auth"),
            None,
        )),
        Err((e, reference)) => Err(refuse(
            ApiError::unauthorized(format!("the first frame must be auth ({})", e.message)),
            reference,
        )),
    };
    match outcome {
        Ok(v) => Ok(v),
        Err((e, reference)) => {
            let _ = socket
                .send(Message::Text(protocol::error(&e, &reference)))
                .await;
            Err(End(close::UNAUTHORIZED, "unauthorized"))
        }
    }
}

/// The next text frame, skipping control frames.
async fn next_text(socket: &mut WebSocket) -> Result<String, End> {
    loop {
        match socket.recv().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Binary(_))) => return Err(End(close::UNAUTHORIZED, "expected auth")),
            Some(Ok(Message::Close(_))) | None => return Err(End(0, "closed by client")),
            Some(Err(e)) => return Err(read_error(e)),
        }
    }
}

fn read_error(e: axum::Error) -> End {
    let text = e.to_string();
    if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
        End(close::TOO_BIG, "message too big")
    } else {
        End(0, "read error")
    }
}

struct Session {
    socket: WebSocket,
    state: AppState,
    gw: Gateway,
    id: u64,
    queue: Arc<Queue>,
    /// Set by authentication.
    app: AppId,
    user: UserId,
    cursors: HashMap<RoomNumber, Cursor>,
    readable: Arc<Readable>,
    /// When this connection last announced typing, per room.
    typing: HashMap<RoomNumber, Instant>,
    last_heard: Instant,
}

impl Session {
    async fn run(mut self) {
        let resume = match Box::pin(authenticate(&mut self.socket, &self.state, &self.gw)).await {
            Ok(((app, user), resume)) => {
                self.app = app;
                self.user = user;
                resume
            }
            Err(End(code, reason)) => {
                Box::pin(close_socket(&mut self.socket, code, reason)).await;
                return;
            }
        };
        let span = tracing::debug_span!("ws", conn = self.id, user = %self.user);
        let end = Box::pin(self.connected(resume)).instrument(span).await;
        tracing::debug!(
            conn = self.id,
            code = end.0,
            reason = end.1,
            "connection ends"
        );
        if end.0 == close::SLOW_CONSUMER {
            // The client is not reading; a close frame may never get out. Try briefly.
            let close = close_socket(&mut self.socket, end.0, end.1);
            let _ = Box::pin(tokio::time::timeout(Duration::from_secs(1), close)).await;
        } else if end.0 != 0 {
            Box::pin(close_socket(&mut self.socket, end.0, end.1)).await;
        }
    }

    /// After authentication: register with the hub, then serve until the end.
    async fn connected(&mut self, resume: Option<ResumeMap>) -> End {
        let conn = Arc::new(Conn {
            id: self.id,
            app: self.app,
            user: self.user.clone(),
            queue: self.queue.clone(),
        });
        let (reply, answer) = oneshot::channel();
        self.gw.hub(HubCmd::Attach { conn, reply });
        if !answer.await.unwrap_or(false) {
            let e = ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                "this user has too many open connections",
            );
            let _ = self
                .socket
                .send(Message::Text(protocol::error(&e, &None)))
                .await;
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

    /// Subscribes to the user's rooms, sends `ready`, and replays what the client missed.
    async fn start(&mut self, resume: Option<ResumeMap>) -> Result<(), End> {
        let rooms = joined_rooms(&self.state, self.app, &self.user).await?;
        let (reply, answer) = oneshot::channel();
        self.gw.hub(HubCmd::Subscribe {
            conn: self.id,
            rooms: rooms.iter().map(|r| RoomNumber(r.room)).collect(),
            reply,
        });
        let routed = answer
            .await
            .map_err(|_| End(close::GOING_AWAY, "stopping"))?;
        self.write(protocol::ready(self.id, &self.user, &rooms))
            .await?;
        for r in &rooms {
            self.cursors.insert(
                RoomNumber(r.room),
                Cursor {
                    pos: Pos(r.pos),
                    member: true,
                },
            );
        }
        let resume = resume.map(|m| parse_resume(&m)).unwrap_or_default();
        for (i, r) in rooms.iter().enumerate() {
            let room = RoomNumber(r.room);
            // Changes routed before the subscription took effect are read from the store.
            let target = Pos(r
                .pos
                .max(routed.get(i).copied().flatten().map_or(0, |p| p.0)));
            let from = resume.get(&room).copied().unwrap_or(Pos(r.pos));
            self.replay(room, from, target).await?;
        }
        self.flush().await
    }

    /// Delivers the room's changes after `from`, knowing they exist up to at least `target`;
    /// a backlog above the cap is replaced by a `reset`.
    async fn replay(&mut self, room: RoomNumber, from: Pos, target: Pos) -> Result<(), End> {
        let Some(cursor) = self.cursors.get_mut(&room) else {
            return Ok(());
        };
        if !cursor.member {
            return Ok(());
        }
        let from = Pos(from.0.clamp(0, target.0));
        if target.0 <= from.0 {
            cursor.pos = cursor.pos.max(from);
            return Ok(());
        }
        if (target.0 - from.0) as u64 > self.gw.config().resume_cap {
            cursor.pos = target;
            return self.feed(protocol::reset(room, target)).await;
        }
        cursor.pos = from;
        self.fill(room, None).await
    }

    /// Sends the room's changes from the store after the cursor, up to `upto` (else to the
    /// end), stopping after a change that ends the user's membership.
    async fn fill(&mut self, room: RoomNumber, upto: Option<Pos>) -> Result<(), End> {
        loop {
            let Some(cursor) = self.cursors.get(&room).copied() else {
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
                self.feed(protocol::change(room, c)).await?;
                let exit = ends_membership(&c.body, &self.user);
                if let Some(cur) = self.cursors.get_mut(&room) {
                    cur.pos = c.pos;
                    if exit {
                        cur.member = false;
                    }
                }
                if exit {
                    self.gw.hub(HubCmd::Unsubscribe {
                        conn: self.id,
                        room,
                    });
                    return Ok(());
                }
            }
            if !page.has_more || empty {
                return Ok(());
            }
        }
    }

    /// The main loop: live frames out, client frames in, heartbeats.
    async fn serve(&mut self) -> Result<(), End> {
        let mut batch = std::collections::VecDeque::new();
        loop {
            tokio::select! {
                biased;
                more = self.queue.wait_all(&mut batch) => {
                    // The hub forgot this connection (cut off, resync, shutdown).
                    if !more {
                        let code = match self.queue.code() {
                            0 => close::GOING_AWAY,
                            code => code,
                        };
                        return Err(End(code, "closed by the server"));
                    }
                    // Everything queued goes out with one flush.
                    while let Some(out) = batch.pop_front() {
                        self.deliver(out).await?;
                    }
                    if batch.capacity() > 16 {
                        batch.shrink_to(16);
                    }
                    self.flush().await?;
                }
                msg = self.readable.recv(&mut self.socket) => {
                    self.last_heard = Instant::now();
                    match msg {
                        // Boxed: keeps every idle session's future small.
                        Some(Ok(Message::Text(t))) => Box::pin(self.request(t.as_str())).await?,
                        Some(Ok(Message::Binary(_))) => {
                            let e = ApiError::bad_request("invalid_frame", "frames are JSON text");
                            self.write(protocol::error(&e, &None)).await?;
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(_))) | None => return Err(End(0, "closed by client")),
                        Some(Err(e)) => return Err(read_error(e)),
                    }
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
            Effect::Notice => return self.feed(frame).await,
            Effect::Heartbeat => {
                if self.last_heard.elapsed() > self.gw.config().ping_interval * 2 {
                    return Err(End(close::HEARTBEAT, "no heartbeat"));
                }
                return self.feed_msg(Message::Ping(Default::default())).await;
            }
            _ => {}
        }
        let cursor = self.cursors.get(&room).copied();
        if cursor.is_some_and(|c| pos <= c.pos) {
            return Ok(());
        }
        match (effect, cursor) {
            (Effect::Subscribe, _) | (Effect::None, None) => {
                self.cursors.insert(room, Cursor { pos, member: true });
            }
            (_, Some(c)) if c.member => {
                if pos.0 > c.pos.0 + 1 {
                    // Boxed: rare, and it keeps every idle session's future small.
                    Box::pin(self.fill(room, Some(Pos(pos.0 - 1)))).await?;
                    let now = self.cursors.get(&room).copied();
                    if now.is_none_or(|c| !c.member || c.pos >= pos) {
                        return Ok(());
                    }
                }
                let member = effect != Effect::Unsubscribe;
                self.cursors.insert(room, Cursor { pos, member });
                if !member {
                    self.gw.hub(HubCmd::Unsubscribe {
                        conn: self.id,
                        room,
                    });
                }
            }
            (Effect::None, Some(_)) => return Ok(()),
            (_, _) => {
                self.cursors.insert(room, Cursor { pos, member: false });
            }
        }
        self.feed(frame).await
    }

    /// Queues a frame in the socket's write buffer (written out by the next flush).
    async fn feed(&mut self, frame: Utf8Bytes) -> Result<(), End> {
        self.feed_msg(Message::Text(frame)).await
    }

    async fn feed_msg(&mut self, msg: Message) -> Result<(), End> {
        // Write first: a kill is only looked at when the write has to wait.
        let queue = &self.queue;
        tokio::select! {
            biased;
            r = self.socket.feed(msg) => r.map_err(|_| End(0, "write failed")),
            code = queue.killed() => Err(End(code, "cut off")),
        }
    }

    async fn flush(&mut self) -> Result<(), End> {
        let queue = &self.queue;
        tokio::select! {
            biased;
            r = SinkExt::<Message>::flush(&mut self.socket) => r.map_err(|_| End(0, "write failed")),
            code = queue.killed() => Err(End(code, "cut off")),
        }
    }

    /// Sends one frame now.
    async fn write(&mut self, frame: Utf8Bytes) -> Result<(), End> {
        self.feed(frame).await?;
        self.flush().await
    }
}

/// Reads the socket only when it may have something: the read side is polled with a waker that
/// notes its wake-up before waking the session, so a session woken for outbound frames (10,000
/// of them per message in a big room) does not also poll the socket, the WebSocket layers and
/// the I/O driver's readiness for nothing.
struct Readable {
    /// The socket woke the session (or may hold more) since it was last read.
    woken: AtomicBool,
    session: AtomicWaker,
}

impl Readable {
    fn new() -> Self {
        // Starts "woken": the first poll registers with the socket.
        Readable {
            woken: AtomicBool::new(true),
            session: AtomicWaker::new(),
        }
    }

    /// The socket's next message, like `WebSocket::recv`.
    fn recv<'a>(
        self: &'a Arc<Self>,
        socket: &'a mut WebSocket,
    ) -> impl std::future::Future<Output = Option<Result<Message, axum::Error>>> + 'a {
        std::future::poll_fn(move |cx| {
            // Cleared before the poll: a wake-up during it is not lost.
            if self.woken.swap(false, Ordering::AcqRel) {
                self.session.register(cx.waker());
                let waker = Waker::from(self.clone());
                let polled = socket.poll_next_unpin(&mut Context::from_waker(&waker));
                if polled.is_ready() {
                    // More may be buffered already, with no wake-up to come for it.
                    self.woken.store(true, Ordering::Release);
                }
                polled
            } else {
                Poll::Pending
            }
        })
    }
}

impl Wake for Readable {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.session.wake();
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
