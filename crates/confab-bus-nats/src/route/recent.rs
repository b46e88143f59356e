//! The writer's memory of the batches sent to it, by id: running, done (with its encoded
//! reply) or refused (recalled before it came, so it never runs). It lets a sender that lost
//! an answer ask for it again, and keeps a batch that comes twice from running twice.
//!
//! Bounded by count, bytes and age, oldest first. What is forgotten leaves a horizon: a batch
//! not remembered but old enough that its entry may have been forgotten (queued before the
//! newest forgotten entry was made) is refused as expired, and a recall of such an id is
//! answered "forgotten" rather than "not run". Under the usual load the horizon is two
//! minutes back, where every batch has expired anyway; only a flood that turns the table
//! over within seconds makes it refuse batches (which their senders then run themselves).

use super::DEADLINE;
use super::wire::BatchId;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::watch;

/// Most batches remembered.
const MAX_ENTRIES: usize = 8 * 1024;
/// Most bytes of replies remembered.
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// How long a batch is remembered (ms).
const KEEP_MS: i64 = 120_000;
/// How far apart the nodes' clocks may be (as the deadline already assumes).
const CLOCK_SLACK_MS: i64 = 2_000;

/// What the writer knows of a batch id.
#[derive(Clone)]
pub(crate) enum Known {
    /// Running now: its reply once it finishes (`None` until then; closed if it never does).
    Running(watch::Receiver<Option<Bytes>>),
    /// Ran: its encoded reply.
    Done(Bytes),
    /// Recalled before it came: it never runs.
    Refused,
}

/// What to do with a batch that came.
pub(crate) enum Begin {
    /// Run it, then hand its reply to [`Recent::finish`].
    Run(Running),
    /// Seen before: answer from what is known; never run it again.
    Known(Known),
    /// Past its deadline, or older than what this writer still remembers: nothing runs.
    Expired,
}

/// A batch being run. Dropped without [`Recent::finish`] (its task ended early), its waiters
/// learn that no reply comes.
pub(crate) struct Running {
    id: BatchId,
    reply: watch::Sender<Option<Bytes>>,
}

struct Entry {
    /// When it was first seen (Unix ms, this node's clock).
    at_ms: i64,
    known: Known,
}

#[derive(Default)]
struct Table {
    entries: HashMap<BatchId, Entry>,
    /// Ids in the order they were first seen.
    order: VecDeque<BatchId>,
    /// Bytes of the replies held.
    bytes: usize,
    /// When the newest forgotten entry was made (Unix ms).
    forgotten_ms: i64,
}

#[derive(Default)]
pub(crate) struct Recent {
    table: Mutex<Table>,
}

impl Recent {
    /// A batch `id` with `deadline_ms` came at `now_ms`: run it, answer it from memory, or
    /// refuse it.
    pub(crate) fn begin(&self, id: BatchId, deadline_ms: i64, now_ms: i64) -> Begin {
        // A poisoned lock cannot tell what ran: refuse (nothing runs, the sender runs it).
        let Ok(mut table) = self.table.lock() else {
            return Begin::Expired;
        };
        if let Some(e) = table.entries.get(&id) {
            return Begin::Known(e.known.clone());
        }
        if now_ms > deadline_ms || table.may_have_forgotten(deadline_ms) {
            return Begin::Expired;
        }
        let (reply, waiting) = watch::channel(None);
        table.insert(id, Known::Running(waiting), now_ms);
        Begin::Run(Running { id, reply })
    }

    /// Keeps the reply of a batch that ran, and hands it to whoever waits for it.
    pub(crate) fn finish(&self, run: Running, reply: Bytes, now_ms: i64) {
        if let Ok(mut guard) = self.table.lock() {
            let table = &mut *guard;
            if let Some(e) = table.entries.get_mut(&run.id)
                && matches!(e.known, Known::Running(_))
            {
                e.known = Known::Done(reply.clone());
                table.bytes += reply.len();
                table.evict(now_ms);
            }
        }
        run.reply.send_replace(Some(reply));
    }

    /// A sender asks what became of batch `id` (with `deadline_ms`): what is known, or, for
    /// an id never seen, `Refused` (recorded: the batch never runs if it comes later). `None`
    /// when the writer cannot tell (the batch may have been forgotten).
    pub(crate) fn recall(&self, id: BatchId, deadline_ms: i64, now_ms: i64) -> Option<Known> {
        let mut table = self.table.lock().ok()?;
        if let Some(e) = table.entries.get(&id) {
            return Some(e.known.clone());
        }
        if table.may_have_forgotten(deadline_ms) {
            return None;
        }
        table.insert(id, Known::Refused, now_ms);
        Some(Known::Refused)
    }
}

impl Table {
    /// Whether a batch with this deadline may have come before the newest forgotten entry
    /// was made (its sender queued it at most [`DEADLINE`] before the deadline).
    fn may_have_forgotten(&self, deadline_ms: i64) -> bool {
        let queued_ms = deadline_ms.saturating_sub(DEADLINE.as_millis() as i64);
        queued_ms <= self.forgotten_ms.saturating_add(CLOCK_SLACK_MS)
    }

    fn insert(&mut self, id: BatchId, known: Known, now_ms: i64) {
        self.entries.insert(
            id,
            Entry {
                at_ms: now_ms,
                known,
            },
        );
        self.order.push_back(id);
        self.evict(now_ms);
    }

    /// Forgets the oldest entries while there are too many, too large, or too old.
    fn evict(&mut self, now_ms: i64) {
        while let Some(&id) = self.order.front() {
            let Some(e) = self.entries.get(&id) else {
                self.order.pop_front();
                continue;
            };
            let over = self.entries.len() > MAX_ENTRIES
                || self.bytes > MAX_BYTES
                || e.at_ms < now_ms.saturating_sub(KEEP_MS);
            if !over {
                return;
            }
            self.order.pop_front();
            if let Some(e) = self.entries.remove(&id) {
                self.forgotten_ms = self.forgotten_ms.max(e.at_ms);
                if let Known::Done(reply) = &e.known {
                    self.bytes = self.bytes.saturating_sub(reply.len());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn id(n: u128) -> BatchId {
        BatchId(n)
    }

    fn done(r: &Recent, n: u128, at: i64, reply: Bytes) {
        let Begin::Run(run) = r.begin(id(n), at + 2_000, at) else {
            panic!("batch {n} runs");
        };
        r.finish(run, reply, at);
    }

    #[test]
    fn a_batch_runs_once_and_its_reply_is_kept() {
        let r = Recent::default();
        let Begin::Run(run) = r.begin(id(1), NOW + 2_000, NOW) else {
            panic!("a new batch runs");
        };
        let Begin::Known(Known::Running(mut waiting)) = r.begin(id(1), NOW + 2_000, NOW) else {
            panic!("the same batch again while it runs does not run");
        };
        r.finish(run, Bytes::from_static(b"reply"), NOW);
        assert_eq!(waiting.borrow_and_update().as_deref(), Some(&b"reply"[..]));
        for known in [
            r.recall(id(1), NOW + 2_000, NOW + 100),
            match r.begin(id(1), NOW + 2_000, NOW + 100) {
                Begin::Known(k) => Some(k),
                _ => None,
            },
        ] {
            assert!(matches!(known, Some(Known::Done(b)) if b == b"reply"[..]));
        }
        // Even past its deadline, a batch that ran answers with its reply, never "expired".
        assert!(matches!(
            r.begin(id(1), NOW + 2_000, NOW + 60_000),
            Begin::Known(Known::Done(_))
        ));
    }

    #[test]
    fn a_recalled_unknown_batch_never_runs_and_a_late_one_is_refused() {
        let r = Recent::default();
        assert!(matches!(
            r.recall(id(2), NOW + 2_000, NOW),
            Some(Known::Refused)
        ));
        assert!(matches!(
            r.begin(id(2), NOW + 2_000, NOW + 10),
            Begin::Known(Known::Refused)
        ));
        assert!(matches!(r.begin(id(3), NOW - 1, NOW), Begin::Expired));
    }

    #[test]
    fn a_dropped_run_tells_its_waiters_no_reply_comes() {
        let r = Recent::default();
        let Begin::Run(run) = r.begin(id(4), NOW + 2_000, NOW) else {
            panic!("runs");
        };
        let Some(Known::Running(waiting)) = r.recall(id(4), NOW + 2_000, NOW) else {
            panic!("running");
        };
        drop(run);
        assert!(waiting.has_changed().is_err(), "closed");
        assert!(waiting.borrow().is_none());
    }

    #[test]
    fn the_table_is_bounded_and_what_it_forgot_is_never_run_or_called_not_run() {
        let r = Recent::default();
        let n = MAX_ENTRIES as u128 + 10;
        for k in 0..n {
            done(&r, k, NOW + k as i64, Bytes::from_static(b"x"));
        }
        let table = r.table.lock().expect("lock");
        assert_eq!(table.entries.len(), MAX_ENTRIES);
        assert_eq!(table.order.len(), MAX_ENTRIES);
        assert_eq!(table.bytes, MAX_ENTRIES);
        drop(table);
        // Batch 0 was forgotten: sent again, it is refused as expired (it may have run), and
        // a recall of it cannot tell.
        assert!(matches!(
            r.begin(id(0), NOW + 2_000, NOW + 20),
            Begin::Expired
        ));
        assert!(r.recall(id(0), NOW + 2_000, NOW + 20).is_none());
        // A batch queued well after what was forgotten runs.
        assert!(matches!(
            r.begin(id(n + 1), NOW + n as i64 + 5_000, NOW + n as i64 + 3_000),
            Begin::Run(_)
        ));

        // Entries older than two minutes go, and the horizon stays two minutes back.
        let later = NOW + KEEP_MS + 60_000;
        done(&r, n + 2, later, Bytes::from_static(b"y"));
        let table = r.table.lock().expect("lock");
        assert_eq!(table.entries.len(), 1);
        assert_eq!(table.bytes, 1);
        drop(table);
        assert!(matches!(
            r.begin(id(n + 3), later + 2_000, later),
            Begin::Run(_)
        ));
    }

    #[test]
    fn replies_are_bounded_by_bytes() {
        let r = Recent::default();
        let big = Bytes::from(vec![b'x'; 2 * 1024 * 1024]);
        // 80 MiB over 100 s: within the age bound, over the bytes bound.
        for k in 0..40 {
            done(&r, k, NOW + k as i64 * 2_500, big.clone());
        }
        let table = r.table.lock().expect("lock");
        assert!(table.bytes <= MAX_BYTES, "{}", table.bytes);
        assert_eq!(table.bytes, table.entries.len() * big.len());
        assert!(table.entries.len() < 40);
    }
}
