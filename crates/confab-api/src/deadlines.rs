//! The deadline closer: a background loop that closes the polls whose `closes_at` has passed,
//! so their outcome is recorded (and a decided reschedule or relocate poll moves its meetup)
//! without waiting for anyone to touch them. Readers never wait for it: a poll past its
//! deadline already refuses votes and reads as closed. On a cluster every node runs one; the
//! closing command is idempotent, so two nodes closing the same poll log one closing.

use crate::AppState;
use confab_core::Command;
use confab_core::command::ClosePoll;
use confab_core::ids::Timestamp;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often the store is asked for due polls.
pub const EVERY: Duration = Duration::from_secs(1);
/// Most polls closed per round; the rest wait for the next one (oldest deadline first).
pub const BATCH: usize = 100;

/// The running loop; [`DeadlineCloser::stop`] ends it, and so does dropping it.
pub struct DeadlineCloser {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<()>,
}

impl DeadlineCloser {
    /// Starts the loop on the current runtime, one round every `every`.
    pub fn start(state: AppState, every: Duration) -> Self {
        let (stop, stopped) = oneshot::channel();
        let handle = tokio::spawn(run(state, every, stopped));
        DeadlineCloser { stop, handle }
    }

    /// Ends the loop after the round in progress, if any, and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.handle.await {
            tracing::warn!(error = %e, "the deadline closer ended badly");
        }
    }
}

async fn run(state: AppState, every: Duration, mut stopped: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // A send or the handle dropped: either way, stop.
            _ = &mut stopped => break,
            _ = tick.tick() => round(&state).await,
        }
    }
}

/// Closes what is due now. Failures are logged and retried next round.
async fn round(state: &AppState) {
    let due = match state.store.due_polls(Timestamp::now(), BATCH).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the polls past their deadline");
            return;
        }
    };
    for (app, room, poll) in due {
        let cmd = Command::ClosePoll(ClosePoll {
            app,
            actor: None,
            room,
            poll,
        });
        match state.execute(cmd).await {
            Ok(_) => tracing::debug!(
                app = app.0,
                room = room.0,
                poll = poll.0,
                "poll closed at its deadline"
            ),
            Err(e) => tracing::warn!(
                error = %e, app = app.0, room = room.0, poll = poll.0,
                "cannot close a poll past its deadline"
            ),
        }
    }
}
