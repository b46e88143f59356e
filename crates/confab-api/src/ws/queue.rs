//! A connection's outbound queue: bounded, never blocking the pusher, and small when idle (an
//! empty `VecDeque` allocates nothing; a tokio mpsc channel costs about a kilobyte per
//! connection). The waiting session's waker sits under the queue's own lock, so a push is one
//! lock and, only when the session waits, one wake-up (no second lock or atomic state of a
//! `Notify`). Closing the queue also tells a session stuck writing to a slow client to give up.

use super::hub::Out;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::task::{Poll, Waker};
use tokio::sync::Notify;

pub(crate) struct Queue {
    inner: Mutex<Inner>,
    cap: usize,
    closed: AtomicBool,
    kill: Notify,
    code: AtomicU16,
}

struct Inner {
    items: VecDeque<Out>,
    /// The session, when it waits for items.
    waiter: Option<Waker>,
}

/// A queue keeps at most this much capacity once drained.
const KEEP: usize = 16;

impl Queue {
    pub fn new(cap: usize) -> Self {
        Queue {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                waiter: None,
            }),
            cap: cap.max(1),
            closed: AtomicBool::new(false),
            kill: Notify::new(),
            code: AtomicU16::new(0),
        }
    }

    /// Queues `out`; `false` when the queue is full or closed.
    pub fn push(&self, out: Out) -> bool {
        let waiter = {
            let Ok(mut q) = self.inner.lock() else {
                return false;
            };
            if q.items.len() >= self.cap || self.closed.load(Ordering::Relaxed) {
                return false;
            }
            q.items.push_back(out);
            q.waiter.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
        true
    }

    /// Waits for items and moves them all into `into`; `false` once the queue is closed and
    /// drained.
    pub async fn wait_all(&self, into: &mut VecDeque<Out>) -> bool {
        std::future::poll_fn(|cx| {
            let Ok(mut q) = self.inner.lock() else {
                return Poll::Ready(false);
            };
            if take(&mut q, into) {
                return Poll::Ready(true);
            }
            // Looked at under the lock: `close` sets the flag before it takes the waiter.
            if self.closed.load(Ordering::Acquire) {
                return Poll::Ready(false);
            }
            match &mut q.waiter {
                Some(w) if w.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// Closes the queue; a non-zero `code` is the close code the session is to send, and also
    /// interrupts a write that waits on the client.
    pub fn close(&self, code: u16) {
        if code != 0 {
            self.code.store(code, Ordering::Relaxed);
            self.kill.notify_one();
        }
        self.closed.store(true, Ordering::Release);
        let waiter = self.inner.lock().ok().and_then(|mut q| q.waiter.take());
        if let Some(w) = waiter {
            w.wake();
        }
    }

    /// Resolves once the queue was closed with a code; gives the code.
    pub async fn killed(&self) -> u16 {
        self.kill.notified().await;
        self.code()
    }

    /// The close code asked for, 0 if none.
    pub fn code(&self) -> u16 {
        self.code.load(Ordering::Relaxed)
    }
}

/// Moves everything queued into `into` (which must be empty); `false` when nothing was queued.
fn take(q: &mut Inner, into: &mut VecDeque<Out>) -> bool {
    if q.items.is_empty() {
        return false;
    }
    std::mem::swap(&mut q.items, into);
    if q.items.capacity() > KEEP {
        q.items.shrink_to(KEEP);
    }
    true
}
