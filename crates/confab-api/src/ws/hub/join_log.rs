//! Joins lost with no sign. A join's bus message can be lost without any lag notice on this
//! node: the publishing node's NATS connection was cut off from the others, say. In a room
//! nobody here follows, nothing later reveals the gap ([`super::joins`] only runs after a lag),
//! so the joiner would get nothing of the room until they reconnect. So every `join_check`
//! the hub reads, per app it has connections of, the joinings its log recorded since the last
//! read (`Store::joins`): the log's offset is the cursor, and offsets become visible in order,
//! so no clock is involved and nothing committed is skipped. A joining of a user connected
//! here whose live connections miss the room is confirmed from the store (their membership
//! now, the room's head) and fed to the same path as after a lag: the room is routed again
//! from just before the joining, so the join subscribes the connections, in position order.
//!
//! When the node starts following an app it takes the log's end as the cursor, less
//! [`MARGIN`] offsets: a connection's own read of its rooms and that first read race, and the
//! overlap covers joins committed in between.
//!
//! Bounded whatever the number of connections: one check at a time; per app and check at most
//! [`PAGES`] reads of [`SPAN`] offsets each (through the log's primary key; a busier log is
//! read on at the next check); at most [`CONFIRMS`] confirmations per check, [`READS`] at once.
//! A joining whose user's connection is still starting is looked at again at the next checks
//! ([`LOOKS`] in all, [`KEPT`] joinings at most).

use super::joins::Joined;
use super::order::OrderCmd;
use super::{Hub, HubCmd};
use confab_core::ids::{AppId, Offset, RoomNumber, UserId};
use confab_core::joinings::Joins;
use confab_core::model::MemberState;
use futures_util::stream::{self, StreamExt};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Offsets of an app's log looked at per read.
const SPAN: usize = 5_000;
/// Reads per app per check, at most.
const PAGES: usize = 20;
/// How far before the log's end a node starts reading an app's joinings.
const MARGIN: i64 = 1_000;
/// Joinings confirmed from the store per check, at most.
const CONFIRMS: usize = 256;
/// Confirmations read at once.
const READS: usize = 4;
/// Looks one joining gets, at most.
const LOOKS: u8 = 3;
/// Joinings kept for another look, at most.
const KEPT: usize = 10_000;
/// How long joinings just read are left to arrive over the bus before they are looked at:
/// most were delivered, and need no read of the store.
const GRACE: Duration = Duration::from_millis(250);

/// A user's joining of a room, to look at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Seen {
    app: AppId,
    user: UserId,
    room: RoomNumber,
}

/// What a read for the join check hands back to the hub.
pub(crate) enum LogCmd {
    /// Where the app's log ended when the node started following it (`None`: unread).
    Start { app: AppId, head: Option<Offset> },
    /// One read of an app's joinings.
    Read { app: AppId, joins: Joins },
    /// The check's reads have ended.
    Done,
    /// A joining confirmed: the user's membership of the room now (`None`: the store could
    /// not be read; `Some(None)`: not joined).
    Confirmed {
        seen: Box<(AppId, UserId, RoomNumber)>,
        looks: u8,
        joined: Option<Option<Joined>>,
    },
}

/// The join check's state.
#[derive(Default)]
pub(super) struct JoinLog {
    /// Per app with connections here: the offset up to which its joinings were looked at.
    cursors: HashMap<AppId, Offset>,
    /// Apps whose log end is being read.
    starting: HashSet<AppId>,
    running: bool,
    /// Joinings to confirm from the store, with the looks they had.
    suspects: HashMap<Seen, u8>,
    /// Joinings to look at again at the next check.
    kept: Vec<(Seen, u8)>,
}

impl Hub {
    /// The node started following `app`: its log's end is read, to start from.
    pub(super) fn join_log_start(&mut self, app: AppId) {
        if self.join_log.cursors.contains_key(&app) || !self.join_log.starting.insert(app) {
            return;
        }
        let (store, me) = (self.store.clone(), self.me.clone());
        tokio::spawn(async move {
            let head = match store.joins(app, None, 0).await {
                Ok(j) => Some(j.next),
                Err(e) => {
                    tracing::warn!(error = %e, app = app.0, "cannot read where an app's log ends");
                    None
                }
            };
            let _ = me.send(HubCmd::Order(OrderCmd::Log(LogCmd::Start { app, head })));
        });
    }

    /// No connection of `app` is left here.
    pub(super) fn join_log_forget(&mut self, app: AppId) {
        let l = &mut self.join_log;
        l.cursors.remove(&app);
        l.suspects.retain(|s, _| s.app != app);
        l.kept.retain(|(s, _)| s.app != app);
    }

    /// Every `join_check`: reads the joinings of every followed app since the last check.
    pub(super) fn check_join_log(&mut self) {
        let unstarted: Vec<AppId> = self
            .apps
            .keys()
            .filter(|a| !self.join_log.cursors.contains_key(a))
            .copied()
            .collect();
        for app in unstarted {
            self.join_log_start(app);
        }
        if self.join_log.running {
            return;
        }
        for (seen, looks) in std::mem::take(&mut self.join_log.kept) {
            self.look_at(seen, looks);
        }
        let reads: Vec<(AppId, Offset)> = self
            .join_log
            .cursors
            .iter()
            .map(|(a, o)| (*a, *o))
            .collect();
        if reads.is_empty() {
            self.confirm_suspects();
            return;
        }
        self.join_log.running = true;
        let (store, me) = (self.store.clone(), self.me.clone());
        tokio::spawn(async move {
            let mut found = Vec::new();
            for (app, mut after) in reads {
                for _ in 0..PAGES {
                    match store.joins(app, Some(after), SPAN).await {
                        Ok(joins) => {
                            after = joins.next;
                            let more = joins.has_more;
                            found.push((app, joins));
                            if !more {
                                break;
                            }
                        }
                        Err(e) => {
                            // Read again from the same offset at the next check.
                            tracing::warn!(error = %e, app = app.0, "cannot read an app's joinings");
                            break;
                        }
                    }
                }
            }
            if found.iter().any(|(_, j)| !j.rows.is_empty()) {
                tokio::time::sleep(GRACE).await;
            }
            for (app, joins) in found {
                let _ = me.send(HubCmd::Order(OrderCmd::Log(LogCmd::Read { app, joins })));
            }
            let _ = me.send(HubCmd::Order(OrderCmd::Log(LogCmd::Done)));
        });
    }

    pub(super) fn log_cmd(&mut self, cmd: LogCmd) {
        match cmd {
            LogCmd::Start { app, head } => {
                self.join_log.starting.remove(&app);
                if let Some(head) = head
                    && self.apps.contains_key(&app)
                {
                    let from = Offset((head.0 - MARGIN).max(0));
                    self.join_log.cursors.entry(app).or_insert(from);
                }
            }
            LogCmd::Read { app, joins } => {
                if !self.apps.contains_key(&app) {
                    return;
                }
                let cursor = self.join_log.cursors.entry(app).or_insert(joins.next);
                *cursor = (*cursor).max(joins.next);
                for j in joins.rows {
                    let seen = Seen {
                        app,
                        user: j.user,
                        room: j.room,
                    };
                    self.look_at(seen, 0);
                }
            }
            LogCmd::Done => {
                self.join_log.running = false;
                self.confirm_suspects();
            }
            LogCmd::Confirmed {
                seen,
                looks,
                joined,
            } => {
                let (app, user, room) = *seen;
                let again = match joined {
                    None => true,
                    Some(None) => false,
                    Some(Some(joined)) => {
                        let live = self.live_conns(app, &user);
                        !live.is_empty() && self.missed_join(app, &live, joined)
                    }
                };
                if again {
                    self.keep(Seen { app, user, room }, looks + 1);
                }
            }
        }
    }

    /// A joining from the log: if a live connection of its user here misses the room, it is
    /// confirmed from the store; if one is still starting, it is looked at again later.
    fn look_at(&mut self, seen: Seen, looks: u8) {
        let Some(u) = self.users.get(&(seen.app, seen.user.clone())) else {
            return;
        };
        let (mut missing, mut starting) = (false, false);
        for e in u.conns.iter().filter_map(|id| self.conns.get(id)) {
            if e.rooms.contains_key(&seen.room) {
                continue;
            }
            if e.conn.is_live() {
                missing = true;
            } else {
                starting = true;
            }
        }
        if missing {
            let l = self.join_log.suspects.entry(seen).or_insert(looks);
            *l = (*l).max(looks);
        } else if starting {
            self.keep(seen, looks + 1);
        }
    }

    fn keep(&mut self, seen: Seen, looks: u8) {
        let l = &mut self.join_log;
        if looks < LOOKS && l.kept.len() < KEPT {
            l.kept.push((seen, looks));
        }
    }

    /// Reads, for some of the suspects, the user's membership of the room and the room's
    /// head; the rest wait for the next check.
    fn confirm_suspects(&mut self) {
        if self.join_log.suspects.is_empty() {
            return;
        }
        let batch: Vec<(Seen, u8)> = {
            let s = &mut self.join_log.suspects;
            let keys: Vec<Seen> = s.keys().take(CONFIRMS).cloned().collect();
            keys.into_iter()
                .filter_map(|k| s.remove_entry(&k))
                .collect()
        };
        let (store, me) = (self.store.clone(), self.me.clone());
        tokio::spawn(async move {
            stream::iter(batch)
                .for_each_concurrent(READS, |(seen, looks)| {
                    let (store, me) = (store.clone(), me.clone());
                    async move {
                        let joined = match store
                            .access(seen.app, seen.room, Some(&seen.user))
                            .await
                        {
                            Ok(access) => Some(access.and_then(|a| {
                                let m = a.member.filter(|m| m.state == MemberState::Joined)?;
                                Some((a.room.number, m.since, a.room.last_pos))
                            })),
                            Err(e) => {
                                tracing::warn!(error = %e, app = seen.app.0, "cannot read a membership");
                                None
                            }
                        };
                        let seen = Box::new((seen.app, seen.user, seen.room));
                        let cmd = LogCmd::Confirmed {
                            seen,
                            looks,
                            joined,
                        };
                        let _ = me.send(HubCmd::Order(OrderCmd::Log(cmd)));
                    }
                })
                .await;
        });
    }
}
