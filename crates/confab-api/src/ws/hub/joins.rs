//! Joins the bus lost. A change that makes a local user a member of a room subscribes the
//! user's connections when the hub routes it. Membership changes reach a node on its apps'
//! topics, so when one is lost (a bus lag) in a room nobody here follows, no later change of
//! that room arrives to reveal the gap, and the room catch-up ([`super::resync`]) covers only
//! rooms with local subscribers: the joiner would get nothing of the room until they
//! reconnect. So after a lag the hub also reads, for every user with a live connection here,
//! the rooms they have joined. A room one of them joined that nobody here follows is caught up
//! from just before the joining (`Member::since`): the join is then routed like any other, in
//! position order, and subscribes the user's connections, which get the join and everything
//! after it, once each.
//!
//! A lost end of membership needs nothing of this: the member's own connection follows the
//! room, so the room's catch-up routes the kick or leave in order.
//!
//! Bounded: one check at a time, started at most once per [`EVERY`] (a check asked for
//! meanwhile runs after it), [`READS`] users read at once, in pages of [`PAGE`] rooms.

use super::order::OrderCmd;
use super::{Hub, HubCmd};
use crate::ws::protocol::close;
use confab_core::ids::{AppId, Pos, RoomNumber, UserId};
use confab_core::model::MemberState;
use futures_util::stream::{self, StreamExt};
use std::time::{Duration, Instant};

/// Users whose rooms are read at once.
const READS: usize = 4;

/// Rooms read per page.
const PAGE: usize = 200;

/// The shortest time between the starts of two checks: a node lagging again and again (slow
/// consumer notices under load) reads its users' rooms at most this often.
const EVERY: Duration = Duration::from_secs(5);

/// A room the user has joined: its number, the position of the joining, and the room's head
/// when it was read.
pub(crate) type Joined = (RoomNumber, Pos, Pos);

/// The membership checks asked for and running.
#[derive(Default)]
pub(super) struct JoinChecks {
    running: bool,
    /// Another check is to run once this one ends.
    again: bool,
    /// When the last check started reading.
    last: Option<Instant>,
}

impl Hub {
    /// After the bus may have lost changes: reads the joined rooms of the users connected
    /// here, and subscribes them to those whose join this node missed.
    pub(super) fn check_joins(&mut self) {
        if self.joins.running {
            self.joins.again = true;
            return;
        }
        let users: Vec<(AppId, UserId)> = self
            .users
            .iter()
            .filter(|(_, u)| !u.conns.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        if users.is_empty() {
            return;
        }
        self.joins.running = true;
        let now = Instant::now();
        let pause = self
            .joins
            .last
            .map_or(Duration::ZERO, |t| EVERY.saturating_sub(now - t));
        self.joins.last = Some(now + pause);
        let (store, me) = (self.store.clone(), self.me.clone());
        tokio::spawn(async move {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            stream::iter(users)
                .for_each_concurrent(READS, |(app, user)| {
                    let (store, me) = (store.clone(), me.clone());
                    async move {
                        let rooms = joined(&*store, app, &user).await;
                        let _ = me.send(HubCmd::Order(OrderCmd::Joined { app, user, rooms }));
                    }
                })
                .await;
            let _ = me.send(HubCmd::Order(OrderCmd::JoinsDone));
        });
    }

    pub(super) fn joins_done(&mut self) {
        self.joins.running = false;
        if std::mem::take(&mut self.joins.again) {
            self.check_joins();
        }
    }

    /// The rooms `user` had joined when read (`None`: the store could not be read): those
    /// their live connections here miss are joined now.
    pub(super) fn joined_read(&mut self, app: AppId, user: UserId, rooms: Option<Vec<Joined>>) {
        let Some(rooms) = rooms else {
            self.joins.again = true;
            return;
        };
        let live = self.live_conns(app, &user);
        if live.is_empty() {
            return;
        }
        for joined in rooms {
            if self.missed_join(app, &live, joined) {
                self.joins.again = true;
            }
        }
    }

    /// Makes the live connections `live` of a user get a room they joined (`joined`, as read
    /// from the store) if they miss it. Answers whether it cannot be decided yet (something
    /// newer than what was read has been routed): the caller looks again later.
    pub(super) fn missed_join(&mut self, app: AppId, live: &[u64], joined: Joined) -> bool {
        let (room, since, head) = joined;
        let key = (app, room);
        let missing: Vec<u64> = live
            .iter()
            .copied()
            .filter(|id| {
                self.conns
                    .get(id)
                    .is_some_and(|e| !e.rooms.contains_key(&room))
            })
            .collect();
        if missing.is_empty() || since.0 < 1 {
            return false;
        }
        let last = self.routed.get(&key).copied().unwrap_or_default();
        if last > head {
            // Something newer than what was read has been routed (maybe the end of this
            // membership): the next check decides.
            return true;
        }
        let followed = self.rooms.get(&key).is_some_and(|s| !s.is_empty());
        if followed && last < since {
            // The room's own catch-up routes the join.
            return false;
        }
        if followed || (head.0 - since.0) as u64 >= self.config.resume_cap {
            // The join was routed here while this connection missed it, or the room moved
            // on too far since: the client resumes, as after a long absence.
            tracing::warn!(
                app = app.0,
                room = room.0,
                "a connection missed a join; it resyncs"
            );
            for id in missing {
                if let Some(e) = self.conns.get(&id) {
                    e.conn.close(close::RESYNC);
                }
                self.detach(id);
            }
            return false;
        }
        self.replay_join(key, since, head);
        false
    }

    /// The live connections of a user on this node (a connection still starting has not
    /// subscribed yet: its own read of the rooms covers it).
    pub(super) fn live_conns(&self, app: AppId, user: &UserId) -> Vec<u64> {
        self.users
            .get(&(app, user.clone()))
            .map_or_else(Vec::new, |u| {
                u.conns
                    .iter()
                    .copied()
                    .filter(|id| self.conns.get(id).is_some_and(|e| e.conn.is_live()))
                    .collect()
            })
    }

    /// Routes the room again from just before `since`, a joining this node missed, up to
    /// `head`: the join subscribes the joiner's connections on its way.
    fn replay_join(&mut self, key: (AppId, RoomNumber), since: Pos, head: Pos) {
        let b = self.order.behind.entry(key).or_default();
        if b.join >= since {
            return;
        }
        b.join = since;
        b.raise(head);
        // Nobody here follows the room (see `missed_join`), so what came before the joining
        // concerns no connection here: the read starts at the joining, not at the room's
        // first change (a room this node never routed would otherwise be read whole).
        self.routed.insert(key, Pos(since.0 - 1));
        self.read_ahead(key, Duration::ZERO);
    }
}

/// The rooms `user` has joined, with the position of each joining and the room's head.
async fn joined(store: &dyn confab_core::Store, app: AppId, user: &UserId) -> Option<Vec<Joined>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = match store
            .rooms_of_user(app, user, MemberState::Joined, after, PAGE)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, app = app.0, "cannot read a user's rooms");
                return None;
            }
        };
        out.extend(
            page.rows
                .iter()
                .map(|s| (s.room.number, s.member.since, s.room.last_pos)),
        );
        match page.rows.last() {
            Some(s) if page.has_more => after = Some((s.activity, s.room.number)),
            _ => return Some(out),
        }
    }
}
