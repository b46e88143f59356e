//! The I/O of one accepted HTTP connection: the TCP stream, a deadline on writes that make no
//! progress, and the connection's slot under `max_connections`.
//!
//! A peer that stops reading leaves hyper with a response it cannot send; without a deadline
//! the buffered answer (up to a page of events) and the descriptor stay pinned for as long as
//! the peer likes. The deadline only starts when a write would block, so the common path costs
//! one branch: no timer, no clock read, no allocation.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

/// A connection's place under the connection cap; the place frees when this drops.
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

/// An accepted TCP stream whose writes time out after `write_timeout` without progress.
pub struct Socket {
    tcp: TcpStream,
    write_timeout: Duration,
    /// Armed while a write is blocked; kept between stalls so a slow peer costs one timer
    /// allocation per connection, not one per stall.
    stall: Option<Pin<Box<Sleep>>>,
    stalled: bool,
    slot: Slot,
}

impl Socket {
    pub fn new(tcp: TcpStream, write_timeout: Duration, slot: OwnedSemaphorePermit) -> Self {
        Socket {
            tcp,
            write_timeout,
            stall: None,
            stalled: false,
            slot: Slot(slot),
        }
    }

    /// The stream and its slot, for a protocol that takes the connection over after an
    /// upgrade (the WebSocket gateway has its own handling of slow peers). Keep the slot for
    /// as long as the stream is open.
    pub fn into_parts(self) -> (TcpStream, Slot) {
        (self.tcp, self.slot)
    }

    /// Passes a write's result through, timing the stall when the write could not proceed.
    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stalled = false;
            return r;
        }
        if !self.stalled {
            self.stalled = true;
            let deadline = Instant::now() + self.write_timeout;
            match &mut self.stall {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.stall = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        if let Some(sleep) = &mut self.stall {
            ready!(sleep.as_mut().poll(cx));
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer read nothing within the write deadline",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_write(cx, buf);
        this.watch(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        this.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_flush(cx);
        this.watch(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.tcp).poll_shutdown(cx);
        this.watch(cx, r)
    }
}
