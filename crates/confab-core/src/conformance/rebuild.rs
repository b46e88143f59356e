//! Rebuild equals live: a random sequence of commands, and the snapshot of everything a
//! client could read, compared before and after replaying the log.

use super::random_gatherings::{
    FAR_DEADLINE, Gathered, SNAPSHOT_NOW, gathered, gatherings, random_gathering,
};
use super::{app_with_users, group, search_all, user, whole_log};
use crate::command::{Command, Decision};
use crate::command::{
    CreateGroup, Decide, DeleteMessage, EditMessage, Invite, MarkRead, SendMessage, SetRole,
    UpdateProfile, UpdateRoom,
};
use crate::error::StoreError;
use crate::ids::{AppId, Pos, RoomNumber, Seq, Timestamp};
use crate::model::{HistoryQuery, MemberState, Role, Visibility};
use crate::search::Scope;
use crate::store::Store;
use std::sync::Arc;

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
pub(super) struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub(super) const USERS: u64 = 6;

fn random_command(rng: &mut Rng, app: AppId, rooms: i64, gathered: &Gathered) -> Command {
    let u = |rng: &mut Rng| user(&format!("u{}", rng.below(USERS)));
    let room = RoomNumber(1 + rng.below(rooms.max(1) as u64) as i64);
    let seq = |rng: &mut Rng| Seq(1 + rng.below(40) as i64);
    match rng.below(32) {
        0 => Command::CreateGroup(CreateGroup {
            app,
            actor: Some(u(rng)),
            name: Some(format!("r{}", rng.below(100))),
            image_url: None,
            visibility: if rng.below(2) == 0 {
                Visibility::Public
            } else {
                Visibility::Private
            },
            alias: (rng.below(3) == 0).then(|| format!("a{}", rng.below(5))),
            members: vec![u(rng), u(rng)],
        }),
        1 => Command::CreateDirect {
            app,
            actor: u(rng),
            with: u(rng),
        },
        2 | 3 => Command::Join {
            app,
            actor: u(rng),
            room,
        },
        4 => Command::Leave {
            app,
            actor: u(rng),
            room,
        },
        5 => Command::Invite(Invite {
            app,
            actor: u(rng),
            room,
            target: u(rng),
        }),
        6 => {
            let decision = [
                Decision::Approve,
                Decision::Reject,
                Decision::Kick,
                Decision::Ban,
                Decision::Unban,
            ][rng.below(5) as usize];
            Command::Decide(Decide {
                app,
                actor: u(rng),
                room,
                target: u(rng),
                decision,
            })
        }
        7 => Command::SetRole(SetRole {
            app,
            actor: u(rng),
            room,
            target: u(rng),
            role: if rng.below(2) == 0 {
                Role::Admin
            } else {
                Role::Member
            },
        }),
        8..=12 => Command::Send(SendMessage {
            app,
            actor: Some(u(rng)),
            room,
            text: format!("text {}", rng.below(1000)),
            reply_to: (rng.below(4) == 0).then(|| seq(rng)),
            client_id: (rng.below(4) == 0).then(|| format!("c{}", rng.below(20))),
        }),
        13 => Command::Edit(EditMessage {
            app,
            actor: u(rng),
            room,
            seq: seq(rng),
            text: format!("edited {}", rng.below(9)),
        }),
        14 => Command::Delete(DeleteMessage {
            app,
            actor: u(rng),
            room,
            seq: seq(rng),
        }),
        15 | 16 => Command::MarkRead(MarkRead {
            app,
            actor: u(rng),
            room,
            seq: seq(rng),
        }),
        17 => Command::UpdateRoom(UpdateRoom {
            app,
            actor: u(rng),
            room,
            name: Some(format!("renamed {}", rng.below(9))),
            image_url: None,
            visibility: None,
        }),
        18 if rng.below(4) == 0 => Command::DeleteRoom {
            app,
            actor: u(rng),
            room,
        },
        20..=31 => {
            let actor = u(rng);
            random_gathering(rng, app, (room, actor), gathered)
        }
        _ => Command::UpdateProfile(UpdateProfile {
            app,
            user: u(rng),
            name: Some(format!("n{}", rng.below(9))),
            image_url: None,
        }),
    }
}

/// Everything a client could read from an app, as text lines.
pub async fn snapshot(store: &Arc<dyn Store>, app: AppId) -> Vec<String> {
    let mut out = vec![format!(
        "stats {:?}",
        store.app_stats(app).await.expect("stats")
    )];
    let rooms = store
        .apps()
        .await
        .expect("apps")
        .into_iter()
        .filter(|a| a.id == app)
        .count();
    out.push(format!("apps {rooms}"));
    for i in 0..USERS {
        let u = user(&format!("u{i}"));
        out.push(format!(
            "user {:?}",
            store.user(app, &u).await.expect("user")
        ));
        for state in [
            MemberState::Joined,
            MemberState::Invited,
            MemberState::Applied,
            MemberState::Banned,
        ] {
            let page = store
                .rooms_of_user(app, &u, state, None, 500)
                .await
                .expect("rooms");
            for s in page.rows {
                out.push(format!(
                    "{u} {state:?} {:?} {:?} unread={} alerts={} last={:?}",
                    s.room, s.member, s.unread_count, s.alerts_count, s.last_item
                ));
            }
        }
        let alerts = store
            .alerts(app, &u, SNAPSHOT_NOW, None, 500)
            .await
            .expect("alerts");
        assert!(!alerts.has_more);
        out.push(format!("alerts {u} {:?}", alerts.rows));
        let mine = store
            .my_meetups(app, &u, SNAPSHOT_NOW, None, 500)
            .await
            .expect("my meetups");
        assert!(!mine.has_more);
        out.push(format!("my meetups {u} {:?}", mine.rows));
    }
    let due = store
        .due_polls(Timestamp(FAR_DEADLINE.0 + 1), 5000)
        .await
        .expect("due polls");
    let due: Vec<_> = due.into_iter().filter(|(a, _, _)| *a == app).collect();
    out.push(format!("due polls {due:?}"));
    for n in 1..=200 {
        let room = RoomNumber(n);
        let Some(access) = store.access(app, room, None).await.expect("access") else {
            continue;
        };
        out.push(format!("room {:?}", access.room));
        let members = store
            .members(app, room, None, None, 500)
            .await
            .expect("members");
        out.push(format!("members {:?}", members.rows));
        let (items, _, _) = store
            .history(
                app,
                room,
                HistoryQuery::Range(Seq(1), access.room.last_seq),
                5000,
            )
            .await
            .expect("history");
        for i in items {
            out.push(format!("item {n} {i:?}"));
        }
        let changes = store
            .changes(app, room, Pos(0), 5000)
            .await
            .expect("changes");
        for c in changes.rows {
            out.push(format!("change {n} {c:?}"));
        }
        out.extend(gatherings(store, app, room).await);
    }
    for i in 0..USERS {
        for q in ["ext 1", "edi", "7"] {
            let hits = search_all(store, app, Scope::Joined(user(&format!("u{i}"))), q).await;
            out.push(format!("search u{i} {q:?} {hits:?}"));
        }
    }
    out
}

/// After a long random sequence of commands (accepted and refused), replaying the log gives
/// exactly the read models the live path built.
pub async fn rebuild_equals_live(store: Arc<dyn Store>, seed: u64, steps: usize) {
    let app = app_with_users(&store, "p", USERS as usize).await;
    group(&store, app, "u0", &["u1", "u2"], Visibility::Public).await;
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut accepted = 0;
    for _ in 0..steps {
        let rooms = store.app_stats(app).await.expect("stats").rooms_count + 2;
        let cmd = random_command(&mut rng, app, rooms, &gathered(&store, app).await);
        match store.execute(cmd).await {
            Ok(_) => accepted += 1,
            Err(StoreError::Domain(_)) => {}
            Err(e) => panic!("backend failure on seed {seed}: {e}"),
        }
    }
    assert!(
        accepted > steps / 5,
        "the sequence should mostly be accepted; got {accepted}"
    );
    // The sequence must exercise every kind of gathering event, or rebuild checks nothing of it.
    let log = whole_log(&store, app).await;
    for kind in [
        "meetup_created",
        "meetup_updated",
        "meetup_cancelled",
        "rsvp_changed",
        "poll_created",
        "vote_cast",
        "vote_withdrawn",
        "poll_closed",
    ] {
        let n = log.iter().filter(|e| e.body.type_name() == kind).count();
        assert!(n > 0, "seed {seed}: no {kind} in the random sequence");
    }
    let live = snapshot(&store, app).await;
    let replayed = store.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    assert!(replayed > accepted as u64);
    let rebuilt = snapshot(&store, app).await;
    for (i, (a, b)) in live.iter().zip(rebuilt.iter()).enumerate() {
        assert_eq!(a, b, "seed {seed}: line {i} differs after rebuild");
    }
    assert_eq!(live.len(), rebuilt.len(), "seed {seed}");
}
