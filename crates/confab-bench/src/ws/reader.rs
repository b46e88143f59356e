//! The reading side of a client worker: one thread, one epoll instance (mio) for all of the
//! worker's connections once they are authenticated. On readiness it reads the socket into the
//! connection's own buffer, checks each frame (complete), answers pings, records bench messages
//! and checks each room's changes come in order, in place: no task, waker, allocation, UTF-8 or
//! JSON pass per frame, so the load generator takes as little as it can of the two cores it
//! shares with the server.

use super::clients::{Last, Seen, frame, record};
use anyhow::Context;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Wakes the thread to pick up new connections.
const NEW: Token = Token(usize::MAX);

/// A connection's buffer; it grows only for a frame larger than this.
const READ: usize = 4096;

/// Connections waiting to be picked up, each with the bytes read past its `ready`.
type Incoming = Mutex<Vec<(std::net::TcpStream, Vec<u8>)>>;

/// A handle to the reader thread: connections are added as they become ready.
pub(super) struct Reader {
    incoming: Arc<Incoming>,
    waker: Waker,
}

struct Conn {
    tcp: TcpStream,
    /// Allocated once; `len` bytes of it are filled.
    buf: Vec<u8>,
    len: usize,
    last: Last,
}

impl Reader {
    pub fn start(seen: Arc<Seen>) -> anyhow::Result<Reader> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), NEW)?;
        let incoming = Arc::new(Mutex::new(Vec::new()));
        let queue = incoming.clone();
        std::thread::Builder::new()
            .name("ws-reader".into())
            .spawn(move || run(poll, &queue, &seen))?;
        Ok(Reader { incoming, waker })
    }

    /// Hands over an authenticated connection with what was read past its `ready`.
    pub fn add(&self, tcp: std::net::TcpStream, rest: Vec<u8>) -> anyhow::Result<()> {
        self.incoming
            .lock()
            .ok()
            .context("reader queue poisoned")?
            .push((tcp, rest));
        self.waker.wake()?;
        Ok(())
    }
}

fn run(mut poll: Poll, incoming: &Incoming, seen: &Seen) {
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            eprintln!("[ws-clients] poll failed: {e}");
            return;
        }
        for ev in &events {
            if ev.token() == NEW {
                let new = incoming.lock().map(|mut v| std::mem::take(&mut *v));
                for (tcp, rest) in new.unwrap_or_default() {
                    let i = conns.len();
                    let mut buf = vec![0; READ.max(rest.len())];
                    buf[..rest.len()].copy_from_slice(&rest);
                    let mut c = Conn {
                        tcp: TcpStream::from_std(tcp),
                        buf,
                        len: rest.len(),
                        last: Last::default(),
                    };
                    // Registered before anything else is read: epoll reports data that is
                    // already there when the socket is added.
                    let ok =
                        register(poll.registry(), &mut c.tcp, Token(i)).is_ok() && c.frames(seen);
                    conns.push(ok.then_some(c));
                    if !ok {
                        seen.closed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                continue;
            }
            let slot = &mut conns[ev.token().0];
            if let Some(c) = slot
                && !c.read(seen)
            {
                let _ = poll.registry().deregister(&mut c.tcp);
                *slot = None;
                seen.closed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn register(registry: &Registry, tcp: &mut TcpStream, token: Token) -> std::io::Result<()> {
    registry.register(tcp, token, Interest::READABLE)
}

impl Conn {
    /// Reads what the socket has; `false` once the connection is over.
    fn read(&mut self, seen: &Seen) -> bool {
        loop {
            if self.len == self.buf.len() {
                // Only for a frame larger than the buffer.
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let room = self.buf.len() - self.len;
            match self.tcp.read(&mut self.buf[self.len..]) {
                Ok(0) => return false,
                Ok(n) => {
                    self.len += n;
                    if !self.frames(seen) {
                        return false;
                    }
                    // A short read emptied the socket: the next data brings a new edge.
                    if n < room {
                        return true;
                    }
                }
                Err(e) => match e.kind() {
                    ErrorKind::WouldBlock => return true,
                    ErrorKind::Interrupted => {}
                    _ => return false,
                },
            }
        }
    }

    /// Handles the complete frames in the buffer; `false` on a close frame or bad text.
    fn frames(&mut self, seen: &Seen) -> bool {
        let mut at = 0;
        while let Some((op, start, end)) = frame(&self.buf[at..self.len]) {
            let payload = &self.buf[at + start..at + end];
            match op {
                0x8 => return false,
                0x9 => {
                    // Pong, masked with a zero key; small enough for the socket buffer.
                    let mut pong = vec![0x8A, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                    pong.extend_from_slice(payload);
                    if payload.len() >= 126 || self.tcp.write_all(&pong).is_err() {
                        return false;
                    }
                }
                0x1 => record(payload, &mut self.last, seen),
                _ => {}
            }
            at += end;
        }
        self.buf.copy_within(at..self.len, 0);
        self.len -= at;
        true
    }
}
