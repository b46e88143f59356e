//! Which rooms of an app are hot on this node: those that took at least one in
//! [`HOT_SHARE`] of the app's last [`WINDOW`] commands here.
//!
//! Routing pays where several nodes would otherwise take turns on the same room rows: a room
//! that many of an app's commands go to. Commands spread thinly over many rooms rarely meet
//! another node's batch on a room, and there the hop to the writer costs more than it saves
//! (measured with `confab-bench nodes`: over 64 rooms, nodes writing where commands arrive
//! did better than routing everything). So only a hot room's commands are forwarded; the
//! others are written where they arrive, kept correct by the rows' locks like every write.

use confab_core::ids::{AppId, RoomNumber};
use std::collections::{HashMap, VecDeque};

/// Commands of an app remembered per app.
const WINDOW: usize = 256;
/// A room is hot once it had at least one in this many of the app's remembered commands.
pub(crate) const HOT_SHARE: usize = 8;
/// Apps remembered at once; past this, the memory starts over (rooms are then hot again
/// until the window fills, which only routes more).
const MAX_APPS: usize = 10_000;

/// The last commands' rooms of one app.
#[derive(Default)]
struct Window {
    rooms: VecDeque<i64>,
    counts: HashMap<i64, usize>,
}

#[derive(Default)]
pub(crate) struct Heat {
    apps: HashMap<AppId, Window>,
}

impl Heat {
    /// Records a command of `app` in `room` and answers whether the room is hot: whether at
    /// least one in `share` of the app's remembered commands, this one included, went there
    /// (`share` 1 or less: every room is hot).
    pub(crate) fn hot(&mut self, app: AppId, room: RoomNumber, share: usize) -> bool {
        if share <= 1 {
            return true;
        }
        if self.apps.len() >= MAX_APPS && !self.apps.contains_key(&app) {
            self.apps.clear();
        }
        let w = self.apps.entry(app).or_default();
        if w.rooms.len() == WINDOW
            && let Some(old) = w.rooms.pop_front()
            && let Some(n) = w.counts.get_mut(&old)
        {
            *n -= 1;
            if *n == 0 {
                w.counts.remove(&old);
            }
        }
        w.rooms.push_back(room.0);
        let n = w.counts.entry(room.0).or_default();
        *n += 1;
        *n * share >= w.rooms.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_busy_room_is_hot_from_its_first_command() {
        let mut h = Heat::default();
        for _ in 0..1000 {
            assert!(h.hot(AppId(1), RoomNumber(7), HOT_SHARE));
        }
    }

    #[test]
    fn commands_spread_over_many_rooms_are_cold_and_a_busy_room_among_them_is_hot() {
        let mut h = Heat::default();
        let app = AppId(1);
        // Round robin over 64 rooms: once the first rooms are past, each has 1 in 64.
        let cold = (0..1000)
            .filter(|i| !h.hot(app, RoomNumber(i % 64), HOT_SHARE))
            .count();
        assert!(cold > 900, "{cold} of 1000 cold");
        // One room in four commands among them: hot, while the others stay cold.
        let mut hot_busy = 0;
        let mut hot_other = 0;
        for i in 0..1000 {
            if i % 4 == 0 {
                hot_busy += usize::from(h.hot(app, RoomNumber(1000), HOT_SHARE));
            } else {
                hot_other += usize::from(h.hot(app, RoomNumber(i % 64), HOT_SHARE));
            }
        }
        // Hot once it has 32 of the 256 remembered commands: from its 32nd on.
        assert!(hot_busy >= 210, "the busy room: {hot_busy} of 250 hot");
        assert!(hot_other < 20, "the others: {hot_other} of 750 hot");
    }

    #[test]
    fn apps_are_apart_and_a_share_of_one_routes_everything() {
        let mut h = Heat::default();
        for i in 0..500 {
            h.hot(AppId(1), RoomNumber(i % 64), HOT_SHARE);
        }
        assert!(h.hot(AppId(2), RoomNumber(3), HOT_SHARE));
        assert!(h.hot(AppId(1), RoomNumber(5), 1));
    }
}
