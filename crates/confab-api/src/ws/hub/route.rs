//! Routing one committed change: who receives it (the subscription index changes with
//! membership changes, in dispatch order), framing it once from what the bus carried, and
//! handing the same bytes to the lanes of every receiver.

use super::{Conn, Effect, Hub};
use crate::ws::protocol;
use confab_core::bus::{ChangeData, RoomChange, Topic};
use confab_core::ids::{AppId, Pos, RoomNumber, Seq, UserId};
use confab_core::model::MemberState;
use std::sync::Arc;

impl Hub {
    /// A read marker goes to the room's connections (only to the reader's own in rooms too
    /// big for such notices).
    pub(super) async fn read_marker(
        &mut self,
        app: AppId,
        room: RoomNumber,
        user: &UserId,
        seq: Seq,
    ) {
        let mut targets: Vec<(Arc<Conn>, Effect)> = Vec::new();
        if let Some(subs) = self.rooms.get(&(app, room)) {
            if subs.len() <= self.config.presence_room_limit {
                targets.extend(subs.iter().map(|c| (c.clone(), Effect::Notice)));
            } else {
                let own = subs.iter().filter(|c| c.user == *user);
                targets.extend(own.map(|c| (c.clone(), Effect::Notice)));
            }
        }
        if !targets.is_empty() {
            let frame = protocol::read(room, user, seq);
            self.dispatch(RoomNumber(0), Pos(0), &frame, targets.into_iter())
                .await;
        }
    }

    pub(super) async fn route(&mut self, change: Arc<RoomChange>) {
        let (app, room, pos) = (change.app, change.room, change.pos);
        let key = (app, room);
        if self.routed.get(&key).is_some_and(|p| pos <= *p) {
            return;
        }
        self.routed.insert(key, pos);
        // Most changes go to the room's subscribers as they are; only membership changes and
        // deletions change the index (and so need a list of their own).
        if !change.change.changes_membership() {
            let Some(subs) = self.rooms.get(&key) else {
                return;
            };
            let frame = protocol::change_wire(&change);
            let targets = subs.iter().map(|c| (c.clone(), Effect::None));
            self.dispatch(room, pos, &frame, targets).await;
            return;
        }
        let deliveries = self.targets(app, room, pos, &change.change);
        if deliveries.is_empty() {
            return;
        }
        let frame = protocol::change_wire(&change);
        self.dispatch(room, pos, &frame, deliveries.into_iter())
            .await;
    }

    /// Who receives a room change, updating the subscription index as the change demands.
    fn targets(
        &mut self,
        app: AppId,
        room: RoomNumber,
        pos: Pos,
        body: &ChangeData,
    ) -> Vec<(Arc<Conn>, Effect)> {
        let key = (app, room);
        let subs: Vec<Arc<Conn>> = self.rooms.get(&key).cloned().unwrap_or_default();
        match body {
            ChangeData::Membership { user, state, .. } => {
                let mine: Vec<Arc<Conn>> = self
                    .users
                    .get(&(app, user.clone()))
                    .map(|u| {
                        u.conns
                            .iter()
                            .filter_map(|id| self.conns.get(id).map(|e| e.conn.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut out: Vec<(Arc<Conn>, Effect)> = Vec::with_capacity(subs.len() + 1);
                if *state == MemberState::Joined {
                    out.extend(subs.into_iter().map(|c| (c, Effect::None)));
                    for c in mine {
                        if let Some(e) = self.conns.get_mut(&c.id)
                            && !e.rooms.contains_key(&room)
                        {
                            e.rooms.insert(room, pos);
                            let subs = self.rooms.entry(key).or_default();
                            if subs.is_empty() {
                                self.interest.push((Topic::Room(app, room), true));
                            }
                            subs.push(c.clone());
                            // Present in the room from now on: its members are told, and
                            // the connection gets a snapshot of the room.
                            self.presence_subscribed(&c, vec![room]);
                            out.push((c, Effect::Subscribe));
                        }
                    }
                } else {
                    for c in subs {
                        let effect = if c.user == *user {
                            Effect::Unsubscribe
                        } else {
                            Effect::None
                        };
                        out.push((c, effect));
                    }
                    for c in mine {
                        let was = self
                            .conns
                            .get_mut(&c.id)
                            .is_some_and(|e| e.rooms.remove(&room).is_some());
                        if was {
                            self.unsubscribe(app, room, c.id);
                        } else {
                            // Not subscribed (an invitation, a refused application): still
                            // told, as a notice about themself.
                            out.push((c, Effect::Unsubscribe));
                        }
                    }
                    self.presence_left(app, user, room);
                }
                out
            }
            ChangeData::RoomDeleted { .. } => {
                if self.rooms.remove(&key).is_some() {
                    self.interest.push((Topic::Room(app, room), false));
                }
                for c in &subs {
                    if let Some(e) = self.conns.get_mut(&c.id) {
                        e.rooms.remove(&room);
                    }
                }
                self.presence_room_gone(app, room);
                subs.into_iter().map(|c| (c, Effect::Unsubscribe)).collect()
            }
            _ => subs.into_iter().map(|c| (c, Effect::None)).collect(),
        }
    }
}
