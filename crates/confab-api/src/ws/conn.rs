//! One connection as the gateway shares it between its session and the fan-out lanes: the
//! socket, the frames accepted for it but not yet written, the deliveries its session still
//! has to look at, and per room the last position delivered.
//!
//! A lane writes a change straight to the socket when the connection is live, nothing waits
//! for its session, and the change is the next one of its room: the common case costs one
//! system call and wakes no task. Anything else (a gap to fill from the store, a membership
//! change, a heartbeat, a connection still replaying) goes to the inbox for the session. All
//! writes go through `unsent` under the same lock, so frames leave in the order accepted.
//! Both the inbox and `unsent` are bounded: a client that does not read is cut off, never
//! waited for.

use super::hub::{Effect, Out};
use bytes::Bytes;
use confab_core::ids::{AppId, Pos, RoomNumber, UserId};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{ErrorKind, IoSlice};
use std::sync::{Mutex, MutexGuard};
use std::task::{Poll, Waker};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Per room: the last position delivered, and whether the user is (still) a member.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor {
    pub pos: Pos,
    pub member: bool,
}

pub(crate) struct Conn {
    pub id: u64,
    pub app: AppId,
    pub user: UserId,
    pub tcp: TcpStream,
    /// Most frames in the inbox, and most frames in `unsent` written by lanes.
    cap: usize,
    state: Mutex<State>,
    /// Interrupts a session that waits for the socket to take its writes.
    kill: Notify,
}

#[derive(Default)]
struct State {
    /// Accepted, not yet written, in order; the first may be partly written.
    unsent: VecDeque<Bytes>,
    /// Whether the first of `unsent` is partly written.
    partial: bool,
    inbox: VecDeque<Out>,
    /// The session, when it waits.
    waiter: Option<Waker>,
    cursors: HashMap<RoomNumber, Cursor, BuildHasherDefault<RoomHasher>>,
    /// The session has sent `ready` and replayed: changes may go out without it.
    live: bool,
    /// The session is working through deliveries it took from the inbox.
    busy: bool,
    /// Closed, with the close code the session is to send (0: none).
    closed: Option<u16>,
}

/// What the session is woken for.
pub(crate) enum Wake {
    /// Deliveries, moved to the session's batch.
    Inbox,
    /// Frames wait for the socket.
    Unsent,
    /// The gateway closed the connection, with this code (0: none given).
    Closed(u16),
}

/// A queue keeps at most this much capacity once drained.
const KEEP: usize = 16;
/// Frames written with one system call, at most.
const WRITEV: usize = 64;

impl Conn {
    pub fn new(id: u64, app: AppId, user: UserId, tcp: TcpStream, cap: usize) -> Self {
        Conn {
            id,
            app,
            user,
            tcp,
            cap: cap.max(1),
            state: Mutex::new(State::default()),
            kill: Notify::new(),
        }
    }

    fn lock(&self) -> Option<MutexGuard<'_, State>> {
        self.state.lock().ok()
    }

    /// A delivery from the hub or a lane: written now when it can be, else left to the
    /// session. `false` when the connection cannot take it (closed, or full): cut it off.
    pub fn offer(&self, room: RoomNumber, pos: Pos, frame: &Bytes, effect: Effect) -> bool {
        let Some(mut s) = self.lock() else {
            return false;
        };
        if s.closed.is_some() {
            return false;
        }
        if s.live && !s.busy && s.inbox.is_empty() {
            match effect {
                Effect::Notice => return self.send(s, frame, true),
                Effect::None => match s.cursors.get_mut(&room) {
                    Some(c) if c.member && pos <= c.pos => return true,
                    Some(c) if c.member && pos.0 == c.pos.0 + 1 => {
                        c.pos = pos;
                        return self.send(s, frame, true);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        if s.inbox.len() >= self.cap {
            return false;
        }
        s.inbox.push_back(Out {
            room,
            pos,
            frame: frame.clone(),
            effect,
        });
        let waiter = s.waiter.take();
        drop(s);
        if let Some(w) = waiter {
            w.wake();
        }
        true
    }

    /// Writes `frame` after what is unsent; with `capped`, refuses when `unsent` is full.
    /// `false` when the frame was refused or the socket failed.
    fn send(&self, mut s: MutexGuard<'_, State>, frame: &Bytes, capped: bool) -> bool {
        let sent = self.put(&mut s, &[frame], capped);
        finish(s, sent)
    }

    /// Writes `frames` (in one system call) after what is unsent, keeping what the socket does
    /// not take; with `capped`, refuses them all when `unsent` would overflow.
    fn put(&self, s: &mut State, frames: &[&Bytes], capped: bool) -> Sent {
        if !s.unsent.is_empty() {
            if capped && s.unsent.len() + frames.len() > self.cap {
                return Sent::Refused;
            }
            s.unsent.extend(frames.iter().map(|f| (*f).clone()));
            return Sent::Done;
        }
        let written = match frames {
            [one] => self.tcp.try_write(one),
            _ => {
                let slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
                self.tcp.try_write_vectored(&slices)
            }
        };
        let mut n = match written {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
            Err(_) => {
                s.closed.get_or_insert(0);
                return Sent::Failed;
            }
        };
        for f in frames {
            if n >= f.len() {
                n -= f.len();
            } else {
                // The rest waits for the socket; the first of it may be partly written.
                if s.unsent.is_empty() {
                    s.partial = n > 0;
                }
                s.unsent.push_back(f.slice(n..));
                n = 0;
            }
        }
        if s.unsent.is_empty() {
            Sent::Done
        } else {
            Sent::Pending
        }
    }

    /// Several changes of one room for this connection, in position order (a lane that fell
    /// behind takes a room's queued changes together): those that follow the room's cursor go
    /// out in one write, the rest to the session. `false` when the connection cannot take
    /// them: cut it off.
    pub fn offer_run(&self, room: RoomNumber, changes: &[(Pos, &Bytes)]) -> bool {
        let Some(mut s) = self.lock() else {
            return false;
        };
        if s.closed.is_some() {
            return false;
        }
        let mut taken = 0;
        let mut sent = Sent::Done;
        if s.live
            && !s.busy
            && s.inbox.is_empty()
            && let Some(c) = s.cursors.get(&room).copied()
            && c.member
        {
            let mut pos = c.pos;
            let mut frames = Vec::with_capacity(changes.len());
            for (p, frame) in changes {
                if *p <= pos {
                    taken += 1;
                } else if p.0 == pos.0 + 1 {
                    frames.push(*frame);
                    pos = *p;
                    taken += 1;
                } else {
                    break;
                }
            }
            s.cursors.insert(room, Cursor { pos, member: true });
            if !frames.is_empty() {
                sent = self.put(&mut s, &frames, true);
            }
        }
        if !matches!(sent, Sent::Done | Sent::Pending) {
            return finish(s, sent);
        }
        let rest = &changes[taken..];
        if s.inbox.len() + rest.len() > self.cap {
            return false;
        }
        for (pos, frame) in rest {
            s.inbox.push_back(Out {
                room,
                pos: *pos,
                frame: (*frame).clone(),
                effect: Effect::None,
            });
        }
        if !rest.is_empty() {
            sent = Sent::Pending;
        }
        finish(s, sent)
    }

    /// The session's own frames (answers, replayed changes): never refused for size, the
    /// session flushes when too much is unsent. `false` when the socket failed.
    pub fn write(&self, frame: &Bytes) -> bool {
        match self.lock() {
            Some(s) => self.send(s, frame, false),
            None => false,
        }
    }

    /// Writes a change of `room` unless it is at or below the room's cursor, and moves the
    /// cursor to it. `Ok(false)`: already delivered.
    pub fn write_change(
        &self,
        room: RoomNumber,
        pos: Pos,
        frame: &Bytes,
        member: bool,
    ) -> Result<bool, ()> {
        let Some(mut s) = self.lock() else {
            return Err(());
        };
        let c = s.cursors.entry(room).or_insert(Cursor {
            pos: Pos(0),
            member: true,
        });
        if pos <= c.pos {
            return Ok(false);
        }
        *c = Cursor { pos, member };
        if self.send(s, frame, false) {
            Ok(true)
        } else {
            Err(())
        }
    }

    pub fn cursor(&self, room: RoomNumber) -> Option<Cursor> {
        self.lock().and_then(|s| s.cursors.get(&room).copied())
    }

    pub fn set_cursor(&self, room: RoomNumber, cursor: Cursor) {
        if let Some(mut s) = self.lock() {
            s.cursors.insert(room, cursor);
        }
    }

    /// Whether the session has subscribed, replayed and gone live.
    pub fn is_live(&self) -> bool {
        self.lock().is_some_and(|s| s.live)
    }

    /// From now on changes may go out without the session.
    pub fn go_live(&self) {
        if let Some(mut s) = self.lock() {
            s.live = true;
        }
    }

    /// The session has dealt with the deliveries it took.
    pub fn done(&self) {
        if let Some(mut s) = self.lock() {
            s.busy = false;
        }
    }

    /// Frames accepted and not yet written.
    pub fn unsent(&self) -> usize {
        self.lock().map_or(0, |s| s.unsent.len())
    }

    /// Waits for something for the session to do; deliveries are moved into `into` (which
    /// must be empty).
    pub async fn wait(&self, into: &mut VecDeque<Out>) -> Wake {
        std::future::poll_fn(|cx| {
            let Some(mut s) = self.lock() else {
                return Poll::Ready(Wake::Closed(0));
            };
            if let Some(code) = s.closed {
                return Poll::Ready(Wake::Closed(code));
            }
            if !s.inbox.is_empty() {
                std::mem::swap(&mut s.inbox, into);
                if s.inbox.capacity() > KEEP {
                    s.inbox.shrink_to(KEEP);
                }
                s.busy = true;
                return Poll::Ready(Wake::Inbox);
            }
            if !s.unsent.is_empty() {
                return Poll::Ready(Wake::Unsent);
            }
            match &mut s.waiter {
                Some(w) if w.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// Writes everything unsent, waiting for the socket. With `interruptible`, gives up once
    /// the connection is closed (with its code); `Err(0)` when the socket failed.
    pub async fn flush(&self, interruptible: bool) -> Result<(), u16> {
        loop {
            {
                let Some(mut s) = self.lock() else {
                    return Err(0);
                };
                if interruptible && let Some(code) = s.closed.filter(|c| *c != 0) {
                    return Err(code);
                }
                while !s.unsent.is_empty() {
                    let slices: Vec<IoSlice<'_>> = s
                        .unsent
                        .iter()
                        .take(WRITEV)
                        .map(|b| IoSlice::new(b))
                        .collect();
                    match self.tcp.try_write_vectored(&slices) {
                        Ok(n) => advance(&mut s, n),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            s.closed.get_or_insert(0);
                            return Err(0);
                        }
                    }
                }
                if s.unsent.is_empty() {
                    if s.unsent.capacity() > KEEP {
                        s.unsent.shrink_to(KEEP);
                    }
                    return Ok(());
                }
            }
            if interruptible {
                tokio::select! {
                    biased;
                    r = self.tcp.writable() => r.map_err(|_| 0u16)?,
                    _ = self.kill.notified() => {}
                }
            } else {
                self.tcp.writable().await.map_err(|_| 0u16)?;
            }
        }
    }

    /// Drops the unsent frames (but the rest of one partly written): the client is cut off
    /// and only its close frame is still worth sending.
    pub fn discard_unsent(&self) {
        if let Some(mut s) = self.lock() {
            let keep = usize::from(s.partial);
            s.unsent.truncate(keep);
        }
    }

    /// Closes the connection; a non-zero `code` is the close code the session is to send,
    /// and also interrupts a session waiting for the socket.
    pub fn close(&self, code: u16) {
        let waiter = self.lock().and_then(|mut s| {
            match s.closed {
                Some(0) | None => s.closed = Some(code),
                Some(_) => {}
            }
            s.waiter.take()
        });
        if code != 0 {
            self.kill.notify_one();
        }
        if let Some(w) = waiter {
            w.wake();
        }
    }

    /// Ends the TCP connection (both ways), whoever still holds this `Conn`.
    pub fn shutdown(&self) {
        let _ = socket2::SockRef::from(&self.tcp).shutdown(std::net::Shutdown::Both);
    }
}

/// Hashes a room number with one multiplication: the cursor map is looked up for every
/// delivery, its keys are small integers the client cannot choose (the rooms the user is a
/// member of), so SipHash's defence against chosen keys buys nothing there.
#[derive(Default)]
struct RoomHasher(u64);

impl Hasher for RoomHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        // Fibonacci hashing: the high bits (which pick the control byte) depend on all of `v`.
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }
}

/// How a write went.
#[derive(Clone, Copy)]
enum Sent {
    /// All written.
    Done,
    /// Some wait (in `unsent`, or in the inbox): the session has something to do.
    Pending,
    /// `unsent` is full: nothing was taken.
    Refused,
    /// The socket failed; the connection is closed.
    Failed,
}

/// Releases the lock and wakes the session if it has something to do; `true` unless refused
/// or failed.
fn finish(mut s: MutexGuard<'_, State>, sent: Sent) -> bool {
    let waiter = match sent {
        Sent::Pending | Sent::Failed => s.waiter.take(),
        Sent::Done | Sent::Refused => None,
    };
    drop(s);
    if let Some(w) = waiter {
        w.wake();
    }
    matches!(sent, Sent::Done | Sent::Pending)
}

/// Marks `n` bytes of the unsent frames written.
fn advance(s: &mut State, mut n: usize) {
    while n > 0 {
        let Some(first) = s.unsent.front_mut() else {
            return;
        };
        if n >= first.len() {
            n -= first.len();
            s.unsent.pop_front();
            s.partial = false;
        } else {
            *first = first.slice(n..);
            s.partial = true;
            n = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A connection record over a real loopback socket, and the client's end of it.
    async fn pair(cap: usize) -> (Conn, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let conn = Conn::new(1, AppId(1), UserId("u".into()), server, cap);
        (conn, client)
    }

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n; 3])
    }

    #[tokio::test]
    async fn a_run_writes_what_follows_the_cursor_and_leaves_the_rest_to_the_session() {
        let (conn, mut client) = pair(4).await;
        let room = RoomNumber(1);
        let (f4, f6, f7, f8, f9) = (frame(4), frame(6), frame(7), frame(8), frame(9));
        conn.set_cursor(
            room,
            Cursor {
                pos: Pos(5),
                member: true,
            },
        );
        conn.go_live();
        // 4 was delivered already, 6 and 7 follow the cursor, 9 comes after a gap.
        let run = [(Pos(4), &f4), (Pos(6), &f6), (Pos(7), &f7), (Pos(9), &f9)];
        assert!(conn.offer_run(room, &run));
        let mut got = [0u8; 6];
        client.read_exact(&mut got).await.expect("read");
        assert_eq!(got, [6, 6, 6, 7, 7, 7]);
        assert_eq!(conn.cursor(room).map(|c| c.pos), Some(Pos(7)));
        let mut batch = VecDeque::new();
        assert!(matches!(conn.wait(&mut batch).await, Wake::Inbox));
        let left: Vec<Pos> = batch.drain(..).map(|o| o.pos).collect();
        assert_eq!(left, vec![Pos(9)]);
        // While the session works on its inbox, a run waits for it, whole.
        assert!(conn.offer_run(room, &[(Pos(8), &f8)]));
        conn.done();
        assert!(matches!(conn.wait(&mut batch).await, Wake::Inbox));
        let left: Vec<Pos> = batch.drain(..).map(|o| o.pos).collect();
        assert_eq!(left, vec![Pos(8)]);
        assert_eq!(conn.cursor(room).map(|c| c.pos), Some(Pos(7)));
    }

    #[tokio::test]
    async fn a_run_that_does_not_fit_the_inbox_is_refused() {
        let (conn, _client) = pair(2).await;
        let room = RoomNumber(1);
        let f = frame(1);
        // Not live yet: everything is for the session, and three do not fit in two places.
        assert!(!conn.offer_run(room, &[(Pos(1), &f), (Pos(2), &f), (Pos(3), &f)]));
        assert!(conn.offer_run(room, &[(Pos(1), &f), (Pos(2), &f)]));
        assert!(!conn.offer_run(room, &[(Pos(3), &f)]));
        conn.close(4008);
        assert!(!conn.offer_run(room, &[(Pos(3), &f)]));
    }
}
