//! Presence following membership. The rooms a user is present in on this node are those
//! their connections here follow: a join the hub routes subscribes the joiner's connections
//! and, through [`Hub::presence_subscribed`], adds the room (a note tells the other nodes,
//! the room's members are told the user is online, the connections get a snapshot of the
//! room); an end of membership the hub routes (leave, kick, ban, the room deleted) takes the
//! room out here, so the room's members see the user offline in it unless another node still
//! lists them there. A user in their grace period (no connection left) loses the room too.

use super::super::Hub;
use confab_core::bus::PresentUser;
use confab_core::ids::{AppId, RoomNumber, UserId};

impl Hub {
    /// `user`'s membership of `room` ended: unless a connection of theirs here still follows
    /// the room (its own end is on its way), they are no longer present in it.
    pub(in crate::ws::hub) fn presence_left(
        &mut self,
        app: AppId,
        user: &UserId,
        room: RoomNumber,
    ) {
        let followed = self.users.get(&(app, user.clone())).is_some_and(|u| {
            u.conns.iter().any(|id| {
                self.conns
                    .get(id)
                    .is_some_and(|e| e.rooms.contains_key(&room))
            })
        });
        if followed {
            return;
        }
        let p = &mut self.presence;
        let Some(local) = p.local.get_mut(&app) else {
            return;
        };
        let Some(known) = local.users.get_mut(user) else {
            return;
        };
        let before = known.len();
        known.retain(|r| *r != room);
        if known.len() == before {
            return;
        }
        let rooms = known.clone();
        // Told to the other nodes as the user's whole list, like a first connection.
        local.offline.retain(|x| x != user);
        local.online.retain(|x| x.user != *user);
        local.online.push(PresentUser {
            user: user.clone(),
            rooms: rooms.clone(),
        });
        let mut flips = Vec::new();
        if let Some(view) = p.views.get_mut(&app) {
            view.add(p.node, user, &rooms, &mut flips);
        }
        self.presence_flips(app, flips);
    }

    /// A room was deleted: nobody is present in it any more (the users in their grace period
    /// included).
    pub(in crate::ws::hub) fn presence_room_gone(&mut self, app: AppId, room: RoomNumber) {
        let listed: Vec<UserId> = self
            .presence
            .local
            .get(&app)
            .map(|l| {
                l.users
                    .iter()
                    .filter(|(_, rooms)| rooms.contains(&room))
                    .map(|(u, _)| u.clone())
                    .collect()
            })
            .unwrap_or_default();
        for user in listed {
            self.presence_left(app, &user, room);
        }
    }
}
