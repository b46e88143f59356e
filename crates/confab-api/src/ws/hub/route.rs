//! Routing one committed change: who receives it (the subscription index changes with
//! membership changes, in dispatch order), reading it back from the store once, and handing
//! the same bytes to the lanes of every receiver.

use super::{Conn, Effect, Hub};
use crate::ws::protocol;
use confab_core::event::{Event, EventBody};
use confab_core::ids::{AppId, Pos, RoomNumber};
use confab_core::model::MemberState;
use std::sync::Arc;

impl Hub {
    pub(super) async fn route(&mut self, ev: Arc<Event>) {
        let app = ev.app;
        if let EventBody::ReadMarkerSet { room, user, seq } = &ev.body {
            let mut targets: Vec<(Arc<Conn>, Effect)> = Vec::new();
            if let Some(subs) = self.rooms.get(&(app, *room)) {
                if subs.len() <= self.config.presence_room_limit {
                    targets.extend(subs.iter().map(|c| (c.clone(), Effect::Notice)));
                } else {
                    let own = subs.iter().filter(|c| c.user == *user);
                    targets.extend(own.map(|c| (c.clone(), Effect::Notice)));
                }
            }
            if !targets.is_empty() {
                let frame = protocol::read(*room, user, *seq);
                self.dispatch(RoomNumber(0), Pos(0), &frame, targets.into_iter())
                    .await;
            }
            return;
        }
        let Some((room, pos)) = ev.body.room_pos() else {
            return;
        };
        let key = (app, room);
        if self.routed.get(&key).is_some_and(|p| pos <= *p) {
            return;
        }
        self.routed.insert(key, pos);
        // Most changes go to the room's subscribers as they are; only membership changes and
        // deletions change the index (and so need a list of their own).
        let plain = !matches!(
            ev.body,
            EventBody::Membership { .. } | EventBody::RoomDeleted { .. }
        );
        let deliveries = if plain {
            if !self.rooms.contains_key(&key) {
                return;
            }
            Vec::new()
        } else {
            let d = self.targets(app, room, &ev.body);
            if d.is_empty() {
                return;
            }
            d
        };
        // Read back as `/changes` shows it. On failure, nothing is sent: each connection sees
        // the gap at the room's next change and fills it from the store.
        let frame = match self.store.changes(app, room, Pos(pos.0 - 1), 1).await {
            Ok(page) => page
                .rows
                .into_iter()
                .next()
                .filter(|c| c.pos == pos)
                .map(|c| protocol::change(room, &c)),
            Err(e) => {
                tracing::warn!(error = %e, room = room.0, pos = pos.0, "cannot read a change");
                None
            }
        };
        let Some(frame) = frame else {
            return;
        };
        if plain {
            let subs = self.rooms.get(&key).map_or(&[][..], Vec::as_slice);
            let targets = subs.iter().map(|c| (c.clone(), Effect::None));
            self.dispatch(room, pos, &frame, targets).await;
        } else {
            self.dispatch(room, pos, &frame, deliveries.into_iter())
                .await;
        }
    }

    /// Who receives a room change, updating the subscription index as the change demands.
    fn targets(
        &mut self,
        app: AppId,
        room: RoomNumber,
        body: &EventBody,
    ) -> Vec<(Arc<Conn>, Effect)> {
        let key = (app, room);
        let subs: Vec<Arc<Conn>> = self.rooms.get(&key).cloned().unwrap_or_default();
        match body {
            EventBody::Membership { user, state, .. } => {
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
                            && e.rooms.insert(room)
                        {
                            self.rooms.entry(key).or_default().push(c.clone());
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
                            .is_some_and(|e| e.rooms.remove(&room));
                        if was {
                            self.unsubscribe(app, room, c.id);
                        } else {
                            // Not subscribed (an invitation, a refused application): still
                            // told, as a notice about themself.
                            out.push((c, Effect::Unsubscribe));
                        }
                    }
                }
                out
            }
            EventBody::RoomDeleted { .. } => {
                self.rooms.remove(&key);
                for c in &subs {
                    if let Some(e) = self.conns.get_mut(&c.id) {
                        e.rooms.remove(&room);
                    }
                }
                subs.into_iter().map(|c| (c, Effect::Unsubscribe)).collect()
            }
            _ => subs.into_iter().map(|c| (c, Effect::None)).collect(),
        }
    }
}
