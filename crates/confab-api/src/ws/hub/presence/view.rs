//! The cluster's view of one app: each node's set of users, and from it who is online (on
//! at least one node) and in which rooms. Changes of that answer come out as [`Flip`]s.

use super::PART;
use bytes::Bytes;
use confab_core::bus::{NodeId, PresentUser};
use confab_core::ids::{RoomNumber, Timestamp, UserId};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// One node's set as this node knows it.
pub(super) struct NodeView {
    pub(super) seq: u64,
    pub(super) users: HashMap<UserId, Vec<RoomNumber>>,
    pub(super) heard: Instant,
    /// Whether the set is known whole (a `State` was read, or the node is this one).
    pub(super) known: bool,
    /// A `State` being read: the parts so far.
    pub(super) incoming: Option<HashMap<UserId, Vec<RoomNumber>>>,
    pub(super) asked: Option<Instant>,
}

impl NodeView {
    pub(super) fn new(known: bool) -> Self {
        NodeView {
            seq: 0,
            users: HashMap::new(),
            heard: Instant::now(),
            known,
            incoming: None,
            asked: None,
        }
    }
}

pub(super) struct Online {
    pub(super) nodes: u32,
    pub(super) rooms: Vec<RoomNumber>,
    pub(super) since: Timestamp,
}

/// Who is online in one app, from every node's set.
pub(super) struct View {
    /// When this node started following the app.
    pub(super) since: Instant,
    pub(super) nodes: HashMap<NodeId, NodeView>,
    pub(super) online: HashMap<UserId, Online>,
    pub(super) by_room: HashMap<RoomNumber, HashSet<UserId>>,
    /// Snapshot frames built this tick or since, dropped when the room's presence changes.
    pub(super) snapshots: HashMap<RoomNumber, Bytes>,
}

/// A user who came online or went offline in the cluster's view.
pub(crate) struct Flip {
    pub(super) user: UserId,
    pub(super) online: bool,
    pub(super) rooms: Vec<RoomNumber>,
    pub(super) at: Timestamp,
}

impl View {
    pub(super) fn new() -> Self {
        View {
            since: Instant::now(),
            nodes: HashMap::new(),
            online: HashMap::new(),
            by_room: HashMap::new(),
            snapshots: HashMap::new(),
        }
    }

    /// `node` lists `user` with `rooms` (their whole list on that node). A user already
    /// online whose rooms changed flips online in the rooms they gained and offline in those
    /// no node lists them in any more.
    pub(super) fn add(
        &mut self,
        node: NodeId,
        user: &UserId,
        rooms: &[RoomNumber],
        flips: &mut Vec<Flip>,
    ) {
        let nv = self
            .nodes
            .entry(node)
            .or_insert_with(|| NodeView::new(false));
        let new = nv.users.insert(user.clone(), rooms.to_vec()).is_none();
        let (union, seen) = self.rooms_of(user);
        let entry = self.online.entry(user.clone()).or_insert_with(|| Online {
            nodes: 0,
            rooms: Vec::new(),
            since: Timestamp::now(),
        });
        let had: HashSet<RoomNumber> = entry.rooms.iter().copied().collect();
        let mut gained = Vec::new();
        for r in &union {
            if !had.contains(r) {
                gained.push(*r);
                self.by_room.entry(*r).or_default().insert(user.clone());
                self.snapshots.remove(r);
            }
        }
        let lost = self.drop_rooms(user, &seen);
        let Some(entry) = self.online.get_mut(user) else {
            return;
        };
        entry.rooms.extend_from_slice(&gained);
        if new {
            entry.nodes += 1;
            if entry.nodes == 1 {
                entry.since = Timestamp::now();
                flips.push(Flip {
                    user: user.clone(),
                    online: true,
                    rooms: entry.rooms.clone(),
                    at: entry.since,
                });
                return;
            }
        }
        if !gained.is_empty() {
            flips.push(Flip {
                user: user.clone(),
                online: true,
                rooms: gained,
                at: entry.since,
            });
        }
        if !lost.is_empty() {
            flips.push(Flip {
                user: user.clone(),
                online: false,
                rooms: lost,
                at: Timestamp::now(),
            });
        }
    }

    pub(super) fn remove(&mut self, node: NodeId, user: &UserId, flips: &mut Vec<Flip>) {
        let Some(nv) = self.nodes.get_mut(&node) else {
            return;
        };
        if nv.users.remove(user).is_none() {
            return;
        }
        self.lower(user, flips);
    }

    /// The rooms of `user` on every node that lists them (in order, and as a set).
    fn rooms_of(&self, user: &UserId) -> (Vec<RoomNumber>, HashSet<RoomNumber>) {
        let mut list = Vec::new();
        let mut set = HashSet::new();
        for nv in self.nodes.values() {
            for r in nv.users.get(user).into_iter().flatten() {
                if set.insert(*r) {
                    list.push(*r);
                }
            }
        }
        (list, set)
    }

    /// Takes `user` out of the rooms not in `keep`; gives those rooms.
    fn drop_rooms(&mut self, user: &UserId, keep: &HashSet<RoomNumber>) -> Vec<RoomNumber> {
        let Some(entry) = self.online.get_mut(user) else {
            return Vec::new();
        };
        let mut lost = Vec::new();
        entry.rooms.retain(|r| {
            let stays = keep.contains(r);
            if !stays {
                lost.push(*r);
            }
            stays
        });
        for r in &lost {
            if let Some(set) = self.by_room.get_mut(r) {
                set.remove(user);
                if set.is_empty() {
                    self.by_room.remove(r);
                }
            }
            self.snapshots.remove(r);
        }
        lost
    }

    /// One node fewer lists `user`: offline if no node does, else offline in the rooms only
    /// that node listed them in.
    pub(super) fn lower(&mut self, user: &UserId, flips: &mut Vec<Flip>) {
        let Some(entry) = self.online.get_mut(user) else {
            return;
        };
        entry.nodes = entry.nodes.saturating_sub(1);
        if entry.nodes > 0 {
            let (_, keep) = self.rooms_of(user);
            let lost = self.drop_rooms(user, &keep);
            if !lost.is_empty() {
                flips.push(Flip {
                    user: user.clone(),
                    online: false,
                    rooms: lost,
                    at: Timestamp::now(),
                });
            }
            return;
        }
        let Some(gone) = self.online.remove(user) else {
            return;
        };
        for r in &gone.rooms {
            if let Some(set) = self.by_room.get_mut(r) {
                set.remove(user);
                if set.is_empty() {
                    self.by_room.remove(r);
                }
            }
            self.snapshots.remove(r);
        }
        flips.push(Flip {
            user: user.clone(),
            online: false,
            rooms: gone.rooms,
            at: Timestamp::now(),
        });
    }

    /// Replaces a node's set with `users`.
    pub(super) fn replace(
        &mut self,
        node: NodeId,
        users: HashMap<UserId, Vec<RoomNumber>>,
        flips: &mut Vec<Flip>,
    ) {
        let old: Vec<UserId> = self
            .nodes
            .get(&node)
            .map(|nv| {
                nv.users
                    .keys()
                    .filter(|u| !users.contains_key(*u))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for u in old {
            self.remove(node, &u, flips);
        }
        for (u, rooms) in &users {
            self.add(node, u, rooms, flips);
        }
    }

    /// Forgets a node that fell silent.
    pub(super) fn drop_node(&mut self, node: NodeId, flips: &mut Vec<Flip>) {
        if let Some(nv) = self.nodes.remove(&node) {
            for u in nv.users.keys() {
                self.lower(u, flips);
            }
        }
    }
}

/// Splits users into notes of about [`PART`] users plus rooms each.
pub(super) fn parts(users: Vec<PresentUser>) -> Vec<Vec<PresentUser>> {
    let mut out: Vec<Vec<PresentUser>> = Vec::new();
    let mut size = 0;
    let mut cur = Vec::new();
    for u in users {
        let n = 1 + u.rooms.len();
        if !cur.is_empty() && size + n > PART {
            out.push(std::mem::take(&mut cur));
            size = 0;
        }
        size += n;
        cur.push(u);
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(name: &str) -> UserId {
        UserId(name.into())
    }

    fn flips(f: &[Flip]) -> Vec<(String, bool)> {
        f.iter().map(|f| (f.user.0.clone(), f.online)).collect()
    }

    #[test]
    fn a_user_on_two_nodes_is_online_until_both_let_go() {
        let (a, b) = (NodeId(1), NodeId(2));
        let mut v = View::new();
        let mut f = Vec::new();
        v.add(a, &u("bob"), &[RoomNumber(1)], &mut f);
        v.add(b, &u("bob"), &[RoomNumber(2)], &mut f);
        // Online once, then in room 2 as well (node b lists him there).
        assert_eq!(flips(&f), [("bob".into(), true), ("bob".into(), true)]);
        assert_eq!(f[1].rooms, [RoomNumber(2)]);
        assert!(v.by_room[&RoomNumber(2)].contains(&u("bob")));
        f.clear();
        v.remove(a, &u("bob"), &mut f);
        // Still on node b, which lists him in room 2 only.
        assert_eq!(flips(&f), [("bob".into(), false)]);
        assert_eq!(f[0].rooms, [RoomNumber(1)]);
        assert!(v.online.contains_key(&u("bob")));
        f.clear();
        v.drop_node(b, &mut f);
        assert_eq!(flips(&f), [("bob".into(), false)]);
        assert_eq!(f[0].rooms, [RoomNumber(2)]);
        assert!(v.by_room.is_empty() && v.online.is_empty());
    }

    #[test]
    fn an_online_user_gaining_or_losing_a_room_flips_in_that_room_only() {
        let (a, b) = (NodeId(1), NodeId(2));
        let (r1, r2, r3) = (RoomNumber(1), RoomNumber(2), RoomNumber(3));
        let mut v = View::new();
        let mut f = Vec::new();
        v.add(a, &u("bob"), &[r1], &mut f);
        v.add(b, &u("bob"), &[r1, r3], &mut f);
        f.clear();
        v.add(a, &u("bob"), &[r1, r2], &mut f);
        assert_eq!(flips(&f), [("bob".into(), true)]);
        assert_eq!(f[0].rooms, [r2]);
        assert!(v.by_room[&r2].contains(&u("bob")));
        f.clear();
        // Node a drops r1 and r2; node b still lists r1, so only r2 is lost.
        v.add(a, &u("bob"), &[], &mut f);
        assert_eq!(flips(&f), [("bob".into(), false)]);
        assert_eq!(f[0].rooms, [r2]);
        assert!(!v.by_room.contains_key(&r2));
        assert!(v.by_room[&r1].contains(&u("bob")), "node b lists him in r1");
        assert!(v.online.contains_key(&u("bob")), "still online");
        f.clear();
        v.add(b, &u("bob"), &[r3], &mut f);
        assert_eq!(f[0].rooms, [r1]);
        assert!(!v.by_room.contains_key(&r1));
        assert_eq!(v.online[&u("bob")].rooms, [r3]);
    }

    #[test]
    fn a_state_replaces_a_nodes_set_and_flips_only_the_differences() {
        let a = NodeId(1);
        let mut v = View::new();
        let mut f = Vec::new();
        v.add(a, &u("ann"), &[RoomNumber(1)], &mut f);
        v.add(a, &u("bob"), &[RoomNumber(1)], &mut f);
        f.clear();
        let set = HashMap::from([
            (u("bob"), vec![RoomNumber(1)]),
            (u("cat"), vec![RoomNumber(1)]),
        ]);
        v.replace(a, set, &mut f);
        let mut got = flips(&f);
        got.sort();
        assert_eq!(got, [("ann".into(), false), ("cat".into(), true)]);
    }

    #[test]
    fn parts_are_bounded_and_never_lose_a_user() {
        let users: Vec<PresentUser> = (0..2500)
            .map(|i| PresentUser {
                user: u(&format!("u{i}")),
                rooms: vec![RoomNumber(1)],
            })
            .collect();
        let parts = parts(users);
        assert!(parts.iter().all(|p| p.len() * 2 <= PART));
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 2500);
        assert_eq!(
            super::parts(Vec::new()).len(),
            1,
            "an empty set is one empty part"
        );
    }
}
