//! The fan-out lanes: one thread per core, each serving a fixed share of the connections (by
//! connection id), so a connection's frames keep their order while a big room's writes are
//! spread over the cores.
//!
//! The lanes are threads of their own, not runtime tasks, so a long fan-out never holds a
//! runtime worker: requests, sessions and the hub keep running beside it (the kernel shares
//! the cores). Within a lane, jobs for few connections (small rooms, notices) go before the
//! rest of a big job: a big job is written in slices, and the small jobs that came meanwhile
//! are written between two slices. So a room of 10,000 does not delay a room of two.
//!
//! Taking a small job before a big one may reorder two changes of one room only when its size
//! crosses the limit between them; the connection's cursor then sees the gap and its session
//! fills it from the store, so order still holds.
//!
//! A lane that falls behind takes a room's queued changes together: each connection then gets
//! them in one write (one TCP segment instead of several), so under load the node writes more
//! per second rather than less.

use super::{Conn, Effect, HubCmd};
use crate::ws::protocol::close;
use bytes::Bytes;
use confab_core::ids::{Pos, RoomNumber};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Jobs waiting for one lane, at most. When the lanes fall behind, the hub waits for them, the
/// bus backs up, and past its own bound the hub catches its rooms up from the store: memory
/// stays bounded however far the offered load exceeds what the node can write.
const LANE_JOBS: usize = 256;

/// A job for at most this many connections of a lane is small.
const SMALL: usize = 64;

/// A big job is written this many connections at a time, small jobs in between.
const SLICE: usize = 256;

/// Queued changes of one room written together, at most.
const RUN: usize = 16;

/// Work for one lane: a frame and those of the lane's connections that receive it.
struct Job {
    room: RoomNumber,
    pos: Pos,
    frame: Bytes,
    targets: Vec<(Arc<Conn>, Effect)>,
    /// Every target's effect is `None`: a plain change.
    plain: bool,
    /// Its place among the lane's jobs, given back when the job is done.
    _place: OwnedSemaphorePermit,
}

#[derive(Default)]
struct Queues {
    small: VecDeque<Job>,
    big: VecDeque<Job>,
    stop: bool,
}

struct Lane {
    queues: Mutex<Queues>,
    ready: Condvar,
    places: Arc<Semaphore>,
}

/// The lanes of one hub; they stop when this is dropped.
pub(super) struct Lanes {
    lanes: Vec<Arc<Lane>>,
}

impl Lanes {
    pub fn start(hub: &mpsc::UnboundedSender<HubCmd>) -> Lanes {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8));
        let lanes = (0..n)
            .filter_map(|i| {
                let lane = Arc::new(Lane {
                    queues: Mutex::new(Queues::default()),
                    ready: Condvar::new(),
                    places: Arc::new(Semaphore::new(LANE_JOBS)),
                });
                let (me, hub) = (lane.clone(), hub.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("confab-lane-{i}"))
                    .spawn(move || run(&me, &hub));
                match spawned {
                    Ok(_) => Some(lane),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start a fan-out lane");
                        None
                    }
                }
            })
            .collect();
        Lanes { lanes }
    }

    /// Hands a frame to the lanes of its receivers, waiting for room in a lane that is full.
    pub async fn dispatch(
        &self,
        room: RoomNumber,
        pos: Pos,
        frame: &Bytes,
        targets: impl Iterator<Item = (Arc<Conn>, Effect)>,
    ) {
        let n = self.lanes.len();
        if n == 0 {
            return;
        }
        let each = targets.size_hint().0 / n + 1;
        let mut per: Vec<Vec<(Arc<Conn>, Effect)>> =
            (0..n).map(|_| Vec::with_capacity(each)).collect();
        let mut plain = true;
        for (c, effect) in targets {
            plain &= effect == Effect::None;
            per[(c.id % n as u64) as usize].push((c, effect));
        }
        for (lane, targets) in self.lanes.iter().zip(per) {
            if targets.is_empty() {
                continue;
            }
            // Never closed: the lanes live as long as this.
            let Ok(place) = lane.places.clone().acquire_owned().await else {
                return;
            };
            let job = Job {
                room,
                pos,
                frame: frame.clone(),
                targets,
                plain,
                _place: place,
            };
            if let Ok(mut q) = lane.queues.lock() {
                if job.targets.len() <= SMALL {
                    q.small.push_back(job);
                } else {
                    q.big.push_back(job);
                }
            }
            lane.ready.notify_one();
        }
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        for lane in &self.lanes {
            if let Ok(mut q) = lane.queues.lock() {
                q.stop = true;
            }
            lane.ready.notify_one();
        }
    }
}

fn run(lane: &Lane, hub: &mpsc::UnboundedSender<HubCmd>) {
    while let Some(job) = next(lane) {
        if job.targets.len() <= SMALL {
            write(&job, &job.targets, hub);
            continue;
        }
        let run = take_run(lane, job);
        let len = run[0].targets.len();
        for start in (0..len).step_by(SLICE) {
            let end = (start + SLICE).min(len);
            match run.as_slice() {
                [one] => write(one, &one.targets[start..end], hub),
                _ => write_run(&run, start..end, hub),
            }
            while let Some(small) = lane
                .queues
                .lock()
                .ok()
                .and_then(|mut q| q.small.pop_front())
            {
                write(&small, &small.targets, hub);
            }
        }
    }
}

/// `job` and the plain changes of its room queued right behind it for the same connections.
fn take_run(lane: &Lane, job: Job) -> Vec<Job> {
    let mut run = vec![job];
    if !run[0].plain {
        return run;
    }
    let Ok(mut q) = lane.queues.lock() else {
        return run;
    };
    while run.len() < RUN {
        let first = &run[0];
        let same = q.big.front().is_some_and(|next| {
            next.plain
                && next.room == first.room
                && next.targets.len() == first.targets.len()
                && next
                    .targets
                    .iter()
                    .zip(&first.targets)
                    .all(|(a, b)| Arc::ptr_eq(&a.0, &b.0))
        });
        if !same {
            break;
        }
        if let Some(next) = q.big.pop_front() {
            run.push(next);
        }
    }
    run
}

/// Writes a run of one room's changes to the connections `range` of its (shared) targets.
fn write_run(run: &[Job], range: std::ops::Range<usize>, hub: &mpsc::UnboundedSender<HubCmd>) {
    let changes: Vec<(Pos, &Bytes)> = run.iter().map(|j| (j.pos, &j.frame)).collect();
    let room = run[0].room;
    for (c, _) in &run[0].targets[range] {
        if !c.offer_run(room, &changes) {
            c.close(close::SLOW_CONSUMER);
            let _ = hub.send(HubCmd::Detach { conn: c.id });
        }
    }
}

/// The next job, small ones first; `None` once the lanes stop.
fn next(lane: &Lane) -> Option<Job> {
    let mut q = lane.queues.lock().ok()?;
    loop {
        if q.stop {
            return None;
        }
        if let Some(job) = q.small.pop_front().or_else(|| q.big.pop_front()) {
            return Some(job);
        }
        q = lane.ready.wait(q).ok()?;
    }
}

/// Writes a job's frame to `targets`; a connection that cannot take it is cut off.
fn write(job: &Job, targets: &[(Arc<Conn>, Effect)], hub: &mpsc::UnboundedSender<HubCmd>) {
    for (c, effect) in targets {
        if !c.offer(job.room, job.pos, &job.frame, *effect) {
            c.close(close::SLOW_CONSUMER);
            let _ = hub.send(HubCmd::Detach { conn: c.id });
        }
    }
}
