//! Presence notes on the bus: this node's own (changes, answers to asks) and the other
//! nodes' (applied to the view, with an ask when one was missed).

use super::super::Hub;
use super::PART;
use super::view::{NodeView, parts};
use confab_core::bus::{BusMessage, PresenceBody, PresenceNote, PresentUser};
use confab_core::ids::{AppId, Timestamp, UserId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

impl Hub {
    /// A presence note from another node.
    pub(in crate::ws::hub) fn presence_note(&mut self, note: &PresenceNote) {
        let p = &mut self.presence;
        if note.node == p.node {
            return;
        }
        if let PresenceBody::Ask { of } = &note.body {
            if of.is_none_or(|n| n == p.node) {
                self.answer(note.app, of.is_some());
            }
            return;
        }
        let Some(view) = p.views.get_mut(&note.app) else {
            return;
        };
        let mut flips = Vec::new();
        let nv = view
            .nodes
            .entry(note.node)
            .or_insert_with(|| NodeView::new(false));
        nv.heard = Instant::now();
        let mut ask = false;
        match &note.body {
            PresenceBody::Changes {
                online, offline, ..
            } => {
                ask = !nv.known || note.seq != nv.seq + 1;
                nv.seq = note.seq;
                for u in online {
                    view.add(note.node, &u.user, &u.rooms, &mut flips);
                }
                for u in offline {
                    view.remove(note.node, u, &mut flips);
                }
            }
            PresenceBody::State { first, last, users } => {
                if *first {
                    nv.incoming = Some(HashMap::new());
                }
                if let Some(inc) = nv.incoming.as_mut() {
                    inc.extend(users.iter().map(|u| (u.user.clone(), u.rooms.clone())));
                }
                if *last && let Some(users) = nv.incoming.take() {
                    nv.known = true;
                    nv.seq = note.seq;
                    nv.asked = None;
                    view.replace(note.node, users, &mut flips);
                }
            }
            PresenceBody::Beat { users } => {
                ask = !nv.known || note.seq != nv.seq || *users != nv.users.len() as u64;
            }
            PresenceBody::Ask { .. } => {}
        }
        if ask {
            // At most one ask per node per beat: the answer may be on its way.
            let nv = view.nodes.get_mut(&note.node);
            if let Some(nv) = nv
                && nv.asked.is_none_or(|t| t.elapsed() >= p.beat_every)
            {
                nv.asked = Some(Instant::now());
                p.asks.push((note.app, Some(note.node)));
            }
        }
        self.presence_flips(note.app, flips);
    }

    /// Publishes this node's whole set in `app`, in parts (even when empty if asked by name).
    fn answer(&self, app: AppId, named: bool) {
        let p = &self.presence;
        let Some(local) = p.local.get(&app).filter(|l| named || !l.users.is_empty()) else {
            if named {
                self.publish_note(
                    app,
                    0,
                    PresenceBody::State {
                        first: true,
                        last: true,
                        users: Vec::new(),
                    },
                );
            }
            return;
        };
        let users: Vec<PresentUser> = local
            .users
            .iter()
            .map(|(u, r)| PresentUser {
                user: u.clone(),
                rooms: r.clone(),
            })
            .collect();
        let parts = parts(users);
        let n = parts.len();
        for (i, users) in parts.into_iter().enumerate() {
            self.publish_note(
                app,
                local.seq,
                PresenceBody::State {
                    first: i == 0,
                    last: i + 1 == n,
                    users,
                },
            );
        }
    }

    pub(super) fn publish_note(&self, app: AppId, seq: u64, body: PresenceBody) {
        self.bus
            .publish(BusMessage::Presence(Arc::new(PresenceNote {
                app,
                node: self.presence.node,
                seq,
                body,
            })));
    }

    /// This node's changes since the last tick, one note (or a few parts) per app.
    pub(super) fn publish_changes(&mut self) {
        let mut notes = Vec::new();
        for (app, local) in self.presence.local.iter_mut() {
            if local.online.is_empty() && local.offline.is_empty() {
                continue;
            }
            let online = parts(std::mem::take(&mut local.online));
            let mut offline: Vec<Vec<UserId>> = std::mem::take(&mut local.offline)
                .chunks(PART)
                .map(<[UserId]>::to_vec)
                .collect();
            let at = Timestamp::now();
            for users in online {
                local.seq += 1;
                notes.push((
                    *app,
                    local.seq,
                    users,
                    offline.pop().unwrap_or_default(),
                    at,
                ));
            }
            for users in offline {
                local.seq += 1;
                notes.push((*app, local.seq, Vec::new(), users, at));
            }
        }
        for (app, seq, online, offline, at) in notes {
            self.publish_note(
                app,
                seq,
                PresenceBody::Changes {
                    at,
                    online,
                    offline,
                },
            );
        }
    }
}
