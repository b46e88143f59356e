//! A connection's outbound queue: bounded, never blocking the pusher, and small when idle (an
//! empty `VecDeque` allocates nothing; a tokio mpsc channel costs about a kilobyte per
//! connection). Closing it also tells a session stuck writing to a slow client to give up.

use super::hub::Out;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use tokio::sync::Notify;

pub(crate) struct Queue {
    items: Mutex<VecDeque<Out>>,
    cap: usize,
    ready: Notify,
    closed: AtomicBool,
    kill: Notify,
    code: AtomicU16,
}

/// A queue keeps at most this much capacity once drained.
const KEEP: usize = 16;

impl Queue {
    pub fn new(cap: usize) -> Self {
        Queue {
            items: Mutex::new(VecDeque::new()),
            cap: cap.max(1),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
            kill: Notify::new(),
            code: AtomicU16::new(0),
        }
    }

    /// Queues `out`; `false` when the queue is full or closed.
    pub fn push(&self, out: Out) -> bool {
        {
            let Ok(mut q) = self.items.lock() else {
                return false;
            };
            if q.len() >= self.cap || self.closed.load(Ordering::Relaxed) {
                return false;
            }
            q.push_back(out);
        }
        self.ready.notify_one();
        true
    }

    /// Moves everything queued into `into` (which must be empty) with one lock; `false` when
    /// nothing was queued.
    pub fn take_all(&self, into: &mut VecDeque<Out>) -> bool {
        let Ok(mut q) = self.items.lock() else {
            return false;
        };
        if q.is_empty() {
            return false;
        }
        std::mem::swap(&mut *q, into);
        if q.capacity() > KEEP {
            q.shrink_to(KEEP);
        }
        true
    }

    /// Waits for items and moves them all into `into`; `false` once the queue is closed and
    /// drained.
    pub async fn wait_all(&self, into: &mut VecDeque<Out>) -> bool {
        loop {
            if self.take_all(into) {
                return true;
            }
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            // A push between the check and here leaves a permit: no wake-up is lost.
            self.ready.notified().await;
        }
    }

    /// Closes the queue; a non-zero `code` is the close code the session is to send, and also
    /// interrupts a write that waits on the client.
    pub fn close(&self, code: u16) {
        if code != 0 {
            self.code.store(code, Ordering::Relaxed);
            self.kill.notify_one();
        }
        self.closed.store(true, Ordering::Release);
        self.ready.notify_one();
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
