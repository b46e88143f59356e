//! The store conformance suite: every `Store` implementation must pass it. A backend's tests
//! invoke [`conformance_tests!`] with an expression that makes a fresh, empty store.
//!
//! The suite talks to the store only through the `Store` trait, so what it checks is what the
//! API would see.

use crate::command::{Command, Decision, Outcome};
use crate::command::{
    CreateApp, CreateGroup, Decide, DeleteMessage, EditMessage, Invite, MarkRead, SendMessage,
    SetRole, UpdateProfile, UpdateRoom, UpsertUser,
};
use crate::error::StoreError;
use crate::ids::{AppId, Offset, Pos, RoomNumber, Seq, Timestamp, UserId};
use crate::model::{HistoryQuery, MemberState, Role, Visibility};
use crate::search::{Hit, Query, Scope};
use crate::store::Store;
use std::sync::Arc;

use random_gatherings::{
    FAR_DEADLINE, Gathered, SNAPSHOT_NOW, gathered, gatherings, random_gathering,
};

mod alerts;
mod heads;
mod identities;
mod meetups;
mod poll_closing;
mod polls;
mod random_gatherings;
mod support;
pub use alerts::{alerts_follow_votes_and_closing, close_versus_vote, two_last_votes_close_once};
pub use heads::{joins_follow_the_log, member_since_is_the_joining, room_heads_follow_writes};
pub use identities::{
    identity_links_insert_or_keep, identity_providers_are_per_app, rebuild_keeps_identity_state,
};
pub use meetups::{
    cancelled_meetups_refuse_rsvps, meetup_edits_by_organizer_or_admin,
    meetups_are_numbered_and_announced, meetups_list_upcoming_first, my_meetups_across_rooms,
    rsvps_count_joined_members,
};
pub use poll_closing::{
    cancelling_a_meetup_closes_its_polls, decided_polls_move_the_meetup,
    poll_deadline_closes_at_once, polls_close_by_creator_organizer_or_admin,
};
pub use polls::{
    last_vote_closes_the_poll, poll_voters_are_fixed_at_creation, refused_votes_leave_no_trace,
    votes_replace_and_withdraw,
};

/// Generates one `#[tokio::test]` per conformance case. `$make` is an async expression giving
/// a fresh `Arc<dyn Store>` (it may capture a temp dir by returning a guard alongside: see the
/// SQLite store's tests).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_identity_providers_are_per_app() {
            let (store, _guard) = $make.await;
            $crate::conformance::identity_providers_are_per_app(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_identity_links_insert_or_keep() {
            let (store, _guard) = $make.await;
            $crate::conformance::identity_links_insert_or_keep(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_rebuild_keeps_identity_state() {
            let (store, _guard) = $make.await;
            $crate::conformance::rebuild_keeps_identity_state(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_seqs_are_gapless_under_concurrency() {
            let (store, _guard) = $make.await;
            $crate::conformance::seqs_are_gapless_under_concurrency(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_refused_commands_change_nothing() {
            let (store, _guard) = $make.await;
            $crate::conformance::refused_commands_change_nothing(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_idempotent_sends() {
            let (store, _guard) = $make.await;
            $crate::conformance::idempotent_sends(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_event_log_is_gapless_per_app() {
            let (store, _guard) = $make.await;
            $crate::conformance::event_log_is_gapless_per_app(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_search_follows_writes() {
            let (store, _guard) = $make.await;
            $crate::conformance::search_follows_writes(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_search_pages_newest_first() {
            let (store, _guard) = $make.await;
            $crate::conformance::search_pages_newest_first(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_search_among_many() {
            let (store, _guard) = $make.await;
            $crate::conformance::search_among_many(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_deleted_text_leaves_the_log() {
            let (store, _guard) = $make.await;
            $crate::conformance::deleted_text_leaves_the_log(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_seqs_past_32_bits_name_nothing() {
            let (store, _guard) = $make.await;
            $crate::conformance::seqs_past_32_bits_name_nothing(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_room_heads_follow_writes() {
            let (store, _guard) = $make.await;
            $crate::conformance::room_heads_follow_writes(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_joins_follow_the_log() {
            let (store, _guard) = $make.await;
            $crate::conformance::joins_follow_the_log(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_member_since_is_the_joining() {
            let (store, _guard) = $make.await;
            $crate::conformance::member_since_is_the_joining(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_meetups_are_numbered_and_announced() {
            let (store, _guard) = $make.await;
            $crate::conformance::meetups_are_numbered_and_announced(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_meetups_list_upcoming_first() {
            let (store, _guard) = $make.await;
            $crate::conformance::meetups_list_upcoming_first(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_meetup_edits_by_organizer_or_admin() {
            let (store, _guard) = $make.await;
            $crate::conformance::meetup_edits_by_organizer_or_admin(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_cancelled_meetups_refuse_rsvps() {
            let (store, _guard) = $make.await;
            $crate::conformance::cancelled_meetups_refuse_rsvps(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_rsvps_count_joined_members() {
            let (store, _guard) = $make.await;
            $crate::conformance::rsvps_count_joined_members(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_my_meetups_across_rooms() {
            let (store, _guard) = $make.await;
            $crate::conformance::my_meetups_across_rooms(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_poll_voters_are_fixed_at_creation() {
            let (store, _guard) = $make.await;
            $crate::conformance::poll_voters_are_fixed_at_creation(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_votes_replace_and_withdraw() {
            let (store, _guard) = $make.await;
            $crate::conformance::votes_replace_and_withdraw(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_refused_votes_leave_no_trace() {
            let (store, _guard) = $make.await;
            $crate::conformance::refused_votes_leave_no_trace(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_last_vote_closes_the_poll() {
            let (store, _guard) = $make.await;
            $crate::conformance::last_vote_closes_the_poll(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_decided_polls_move_the_meetup() {
            let (store, _guard) = $make.await;
            $crate::conformance::decided_polls_move_the_meetup(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_polls_close_by_creator_organizer_or_admin() {
            let (store, _guard) = $make.await;
            $crate::conformance::polls_close_by_creator_organizer_or_admin(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_poll_deadline_closes_at_once() {
            let (store, _guard) = $make.await;
            $crate::conformance::poll_deadline_closes_at_once(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_cancelling_a_meetup_closes_its_polls() {
            let (store, _guard) = $make.await;
            $crate::conformance::cancelling_a_meetup_closes_its_polls(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_alerts_follow_votes_and_closing() {
            let (store, _guard) = $make.await;
            $crate::conformance::alerts_follow_votes_and_closing(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_two_last_votes_close_once() {
            let (store, _guard) = $make.await;
            $crate::conformance::two_last_votes_close_once(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_close_versus_vote() {
            let (store, _guard) = $make.await;
            $crate::conformance::close_versus_vote(store).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn conformance_rebuild_equals_live() {
            for seed in [1u64, 7, 42, 2026] {
                let (store, _guard) = $make.await;
                $crate::conformance::rebuild_equals_live(store, seed, 600).await;
            }
        }
    };
}

fn user(s: &str) -> UserId {
    UserId(s.to_owned())
}

/// Creates an app with `n` users `u0..u{n-1}`; returns its id.
pub async fn app_with_users(store: &Arc<dyn Store>, name: &str, n: usize) -> AppId {
    let out = store
        .execute(Command::CreateApp(CreateApp {
            name: name.into(),
            token: format!("tok-{name}"),
            secret_hash: format!("hash-{name}"),
            // Each app has its own key, as the API makes them (key ids are unique).
            signing_key: format!("key-{name}"),
        }))
        .await
        .expect("create app");
    let Outcome::App(app) = out else {
        panic!("expected an app, got {out:?}")
    };
    for i in 0..n {
        let cmd = Command::UpsertUser(UpsertUser {
            app: app.id,
            user: user(&format!("u{i}")),
            name: None,
            image_url: None,
            email: None,
        });
        store.execute(cmd).await.expect("upsert user");
    }
    app.id
}

async fn group(
    store: &Arc<dyn Store>,
    app: AppId,
    owner: &str,
    members: &[&str],
    visibility: Visibility,
) -> RoomNumber {
    let out = store
        .execute(Command::CreateGroup(CreateGroup {
            app,
            actor: Some(user(owner)),
            name: Some("room".into()),
            image_url: None,
            visibility,
            alias: None,
            members: members.iter().map(|m| user(m)).collect(),
        }))
        .await
        .expect("create group");
    match out {
        Outcome::Room { room, .. } => room.number,
        other => panic!("expected a room, got {other:?}"),
    }
}

fn send(app: AppId, actor: &str, room: RoomNumber, text: &str) -> Command {
    Command::Send(SendMessage {
        app,
        actor: Some(user(actor)),
        room,
        text: text.into(),
        reply_to: None,
        client_id: None,
    })
}

/// Many concurrent sends get distinct seqs that, with the room's announcements, fill 1..n.
pub async fn seqs_are_gapless_under_concurrency(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "a", 4).await;
    let room = group(&store, app, "u0", &["u1", "u2", "u3"], Visibility::Private).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let who = format!("u{}", i % 4);
            match store.execute(send(app, &who, room, &format!("m{i}"))).await {
                Ok(Outcome::Item {
                    item,
                    created: true,
                }) => item.seq,
                other => panic!("send failed: {other:?}"),
            }
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.expect("task"));
    }
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 200, "every send got its own seq");
    let access = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room");
    let (items, _, _) = store
        .history(
            app,
            room,
            HistoryQuery::Range(Seq(1), access.room.last_seq),
            1000,
        )
        .await
        .expect("history");
    let got: Vec<i64> = items.iter().map(|i| i.seq.0).collect();
    let want: Vec<i64> = (1..=access.room.last_seq.0).collect();
    assert_eq!(got, want, "timeline is gapless");
    assert_eq!(access.room.messages_count, 200);
}

/// A refused command appends nothing and changes no read model, even when it shares a
/// transaction with accepted ones.
pub async fn refused_commands_change_nothing(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "a", 3).await;
    let room = group(&store, app, "u0", &["u1"], Visibility::Private).await;
    let before = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room")
        .room;
    let events_before = store
        .events(app, Offset(0), 10_000)
        .await
        .expect("events")
        .rows
        .len();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        // u2 is not a member: every one of its sends must be refused; u1's go through.
        let who = if i % 2 == 0 { "u2" } else { "u1" };
        tasks.push(tokio::spawn(async move {
            (who, store.execute(send(app, who, room, "x")).await)
        }));
    }
    for t in tasks {
        let (who, r) = t.await.expect("task");
        match (who, r) {
            ("u2", Err(StoreError::Domain(e))) => {
                assert_eq!(e.code, crate::ErrorCode::RoomNotFound)
            }
            ("u1", Ok(Outcome::Item { .. })) => {}
            other => panic!("unexpected result {other:?}"),
        }
    }
    let after = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room")
        .room;
    assert_eq!(after.last_seq.0, before.last_seq.0 + 25);
    assert_eq!(after.last_pos.0, before.last_pos.0 + 25);
    let events_after = store
        .events(app, Offset(0), 10_000)
        .await
        .expect("events")
        .rows
        .len();
    assert_eq!(events_after, events_before + 25);
    let kick_owner = Command::Decide(Decide {
        app,
        actor: user("u1"),
        room,
        target: user("u0"),
        decision: Decision::Kick,
    });
    assert!(store.execute(kick_owner).await.is_err());
    let unchanged = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room")
        .room;
    assert_eq!(unchanged, after);
}

/// The same client id twice gives the same item; with another text it is refused.
pub async fn idempotent_sends(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "a", 2).await;
    let room = group(&store, app, "u0", &["u1"], Visibility::Public).await;
    let cmd = |text: &str| {
        Command::Send(SendMessage {
            app,
            actor: Some(user("u1")),
            room,
            text: text.into(),
            reply_to: None,
            client_id: Some("c-1".into()),
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let c = cmd("hello");
        tasks.push(tokio::spawn(async move { store.execute(c).await }));
    }
    let mut seqs = Vec::new();
    let mut created = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(Outcome::Item { item, created: c }) => {
                seqs.push(item.seq);
                created += usize::from(c);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    seqs.dedup();
    assert_eq!(seqs.len(), 1, "one item for one client id");
    assert_eq!(created, 1, "created exactly once");
    let err = store.execute(cmd("other text")).await.expect_err("refused");
    assert!(
        matches!(err, StoreError::Domain(ref e) if e.code == crate::ErrorCode::ClientIdReused),
        "{err:?}"
    );
    // Another sender may use the same client id for their own message.
    let other = Command::Send(SendMessage {
        app,
        actor: Some(user("u0")),
        room,
        text: "hi".into(),
        reply_to: None,
        client_id: Some("c-1".into()),
    });
    assert!(matches!(
        store.execute(other).await,
        Ok(Outcome::Item { created: true, .. })
    ));
}

/// Each app's log has offsets 1..n with no gap, and no event of another app.
pub async fn event_log_is_gapless_per_app(store: Arc<dyn Store>) {
    let a = app_with_users(&store, "a", 2).await;
    let b = app_with_users(&store, "b", 2).await;
    let ra = group(&store, a, "u0", &["u1"], Visibility::Public).await;
    let rb = group(&store, b, "u0", &["u1"], Visibility::Public).await;
    for i in 0..30 {
        store
            .execute(send(a, "u0", ra, &format!("a{i}")))
            .await
            .expect("send a");
        store
            .execute(send(b, "u1", rb, &format!("b{i}")))
            .await
            .expect("send b");
    }
    for app in [a, b] {
        let mut after = Offset(0);
        let mut offsets = Vec::new();
        loop {
            let page = store.events(app, after, 7).await.expect("events");
            for e in &page.rows {
                assert_eq!(e.app, app);
                offsets.push(e.offset.0);
            }
            match page.rows.last() {
                Some(last) if page.has_more => after = last.offset,
                _ => break,
            }
        }
        let want: Vec<i64> = (1..=offsets.len() as i64).collect();
        assert_eq!(offsets, want);
    }
}

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const USERS: u64 = 6;

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

/// Every hit of a query, following cursors to the end (pages of 7, to cross page boundaries).
/// It asks twice: at once, and after background indexing settled; both answers must agree.
pub async fn search_all(store: &Arc<dyn Store>, app: AppId, scope: Scope, q: &str) -> Vec<Hit> {
    let first = search_pages(store, app, scope.clone(), q).await;
    store.settle().await.expect("settle");
    let settled = search_pages(store, app, scope, q).await;
    assert_eq!(first, settled, "search {q:?} before and after indexing");
    settled
}

async fn search_pages(store: &Arc<dyn Store>, app: AppId, scope: Scope, q: &str) -> Vec<Hit> {
    let query = Query::parse(q).expect("query");
    let mut out: Vec<Hit> = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .search(app, scope.clone(), query.clone(), before, 7)
            .await
            .expect("search");
        out.extend(page.rows);
        match out.last() {
            Some(last) if page.has_more => before = Some(last.cursor()),
            _ => return out,
        }
    }
}

fn texts(hits: &[Hit]) -> Vec<(i64, i64, String)> {
    hits.iter()
        .map(|h| {
            (
                h.room.0,
                h.item.seq.0,
                h.item.text.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// A message is found as soon as its send returns; edits and deletes show at once; rooms
/// the user left or that were deleted are not searched; every matching rule holds.
pub async fn search_follows_writes(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "s", 3).await;
    let r1 = group(&store, app, "u0", &["u1"], Visibility::Private).await;
    let r2 = group(&store, app, "u0", &[], Visibility::Private).await;
    let joined = |u: &str| Scope::Joined(user(u));
    let seq_of = |out: Outcome| match out {
        Outcome::Item { item, .. } => item.seq,
        other => panic!("expected an item, got {other:?}"),
    };
    let hello = seq_of(
        store
            .execute(send(app, "u0", r1, "Hello world"))
            .await
            .expect("command"),
    );
    store
        .execute(send(app, "u1", r1, "wassup!!!!"))
        .await
        .expect("command");
    store
        .execute(send(app, "u0", r2, "Grüße aus München"))
        .await
        .expect("command");

    let found = |hits: Vec<Hit>| texts(&hits).into_iter().map(|t| t.2).collect::<Vec<_>>();
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "ello").await),
        ["Hello world"]
    );
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "WASS").await),
        ["wassup!!!!"]
    );
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "ünch").await),
        ["Grüße aus München"]
    );
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "MÜNCHEN").await),
        ["Grüße aus München"]
    );
    // Short terms (below the trigram size) and several terms (all must occur).
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "!!").await),
        ["wassup!!!!"]
    );
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "wor he").await),
        ["Hello world"]
    );
    assert!(
        search_all(&store, app, joined("u0"), "hello moon")
            .await
            .is_empty()
    );
    // Spans are in characters of the original text.
    let hit = &search_all(&store, app, joined("u0"), "ünch").await[0];
    assert_eq!(hit.spans, [crate::search::Span { start: 11, end: 15 }]);
    // Scope: u1 is not in room 2; a room scope sees only that room.
    assert!(
        search_all(&store, app, joined("u1"), "ünch")
            .await
            .is_empty()
    );
    assert!(
        search_all(&store, app, Scope::Room(r1), "ünch")
            .await
            .is_empty()
    );
    assert_eq!(
        search_all(&store, app, Scope::Room(r2), "ünch").await.len(),
        1
    );
    // Announcements are not messages: "joined" never matches an announcement.
    assert!(
        search_all(&store, app, Scope::Room(r1), "joined")
            .await
            .is_empty()
    );

    // An edit is reflected at once, both ways.
    store
        .execute(Command::Edit(EditMessage {
            app,
            actor: user("u0"),
            room: r1,
            seq: hello,
            text: "Goodbye world".into(),
        }))
        .await
        .expect("command");
    assert!(
        search_all(&store, app, joined("u0"), "ello")
            .await
            .is_empty()
    );
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "oodb").await),
        ["Goodbye world"]
    );
    // Trigrams the old and the new text share ("world") still find the message.
    assert_eq!(
        found(search_all(&store, app, joined("u0"), "world").await),
        ["Goodbye world"]
    );
    // A delete too.
    store
        .execute(Command::Delete(DeleteMessage {
            app,
            actor: user("u0"),
            room: r1,
            seq: hello,
        }))
        .await
        .expect("command");
    assert!(
        search_all(&store, app, joined("u0"), "oodb")
            .await
            .is_empty()
    );
    assert!(
        search_all(&store, app, joined("u0"), "world")
            .await
            .is_empty()
    );
    // Leaving a room takes it out of the user's search; a deleted room is gone for everyone.
    store
        .execute(Command::Leave {
            app,
            actor: user("u1"),
            room: r1,
        })
        .await
        .expect("command");
    assert!(
        search_all(&store, app, joined("u1"), "wass")
            .await
            .is_empty()
    );
    store
        .execute(Command::DeleteRoom {
            app,
            actor: user("u0"),
            room: r2,
        })
        .await
        .expect("command");
    assert!(
        search_all(&store, app, joined("u0"), "ünch")
            .await
            .is_empty()
    );
    assert!(
        search_all(&store, app, Scope::Room(r2), "ünch")
            .await
            .is_empty()
    );
    // A refused edit changes nothing in the index.
    assert!(
        store
            .execute(Command::Edit(EditMessage {
                app,
                actor: user("u2"),
                room: r1,
                seq: Seq(2),
                text: "zzz".into(),
            }))
            .await
            .is_err()
    );
    assert!(
        search_all(&store, app, joined("u0"), "zzz")
            .await
            .is_empty()
    );
}

/// Results across rooms come newest first, and paging visits each hit exactly once.
pub async fn search_pages_newest_first(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "p", 2).await;
    let rooms = [
        group(&store, app, "u0", &["u1"], Visibility::Public).await,
        group(&store, app, "u0", &["u1"], Visibility::Public).await,
        group(&store, app, "u0", &[], Visibility::Public).await,
    ];
    let mut sent = Vec::new();
    for i in 0..60 {
        let room = rooms[(i * 7) % 3];
        let text = if i % 4 == 0 {
            format!("other {i}")
        } else {
            format!("needle {i}")
        };
        if let Outcome::Item { item, .. } = store
            .execute(send(app, "u0", room, &text))
            .await
            .expect("command")
            && i % 4 != 0
        {
            sent.push((item.created_at, room.0, item.seq.0, text));
        }
    }
    // Newest first: by time, then room and seq (sends in one millisecond tie on time).
    sent.sort_by(|a, b| b.cmp(a));
    let sent: Vec<(i64, i64, String)> = sent.into_iter().map(|(_, r, s, t)| (r, s, t)).collect();
    for scope in [Scope::Joined(user("u0"))] {
        let hits = search_all(&store, app, scope, "eedl").await;
        assert_eq!(texts(&hits), sent, "newest first, each exactly once");
        for w in hits.windows(2) {
            assert!(w[0].cursor() > w[1].cursor());
        }
    }
    let only_first: Vec<_> = sent.iter().filter(|t| t.0 == rooms[0].0).cloned().collect();
    assert_eq!(
        texts(&search_all(&store, app, Scope::Room(rooms[0]), "needle").await),
        only_first
    );
    // u1 is in the first two rooms only.
    let shared: Vec<_> = sent.iter().filter(|t| t.0 != rooms[2].0).cloned().collect();
    assert_eq!(
        texts(&search_all(&store, app, Scope::Joined(user("u1")), "ne").await),
        shared
    );
}

/// Among many messages, frequent, occasional and rare terms are each found exactly, newest
/// first, in one room and across rooms (stores may serve them in different ways).
pub async fn search_among_many(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "m", 2).await;
    let rooms = [
        group(&store, app, "u0", &["u1"], Visibility::Private).await,
        group(&store, app, "u0", &["u1"], Visibility::Private).await,
        group(&store, app, "u0", &[], Visibility::Private).await,
    ];
    let mut sent = Vec::new();
    for i in 0..450 {
        let room = rooms[i % 3];
        let mut text = format!("note {i}");
        if i % 7 == 0 {
            text.push_str(" sometimes");
        }
        if i % 97 == 13 {
            text.push_str(" Quokka");
        }
        match store
            .execute(send(app, "u0", room, &text))
            .await
            .expect("command")
        {
            Outcome::Item { item, .. } => sent.push((item.created_at, room.0, item.seq.0, text)),
            other => panic!("expected an item, got {other:?}"),
        }
    }
    sent.sort_by(|a, b| b.cmp(a));
    let sent: Vec<(i64, i64, String)> = sent.into_iter().map(|(_, r, s, t)| (r, s, t)).collect();
    for (q, word) in [("note", "note"), ("METIM", "sometimes"), ("okk", "Quokka")] {
        let expect = |keep: &dyn Fn(i64) -> bool| -> Vec<(i64, i64, String)> {
            sent.iter()
                .filter(|(r, _, t)| keep(*r) && t.contains(word))
                .cloned()
                .collect()
        };
        let all = expect(&|_| true);
        assert!(!all.is_empty());
        assert_eq!(
            texts(&search_all(&store, app, Scope::Joined(user("u0")), q).await),
            all,
            "{q:?} across u0's rooms"
        );
        assert_eq!(
            texts(&search_all(&store, app, Scope::Joined(user("u1")), q).await),
            expect(&|r| r != rooms[2].0),
            "{q:?} across u1's rooms"
        );
        assert_eq!(
            texts(&search_all(&store, app, Scope::Room(rooms[2]), q).await),
            expect(&|r| r == rooms[2].0),
            "{q:?} in one room"
        );
    }
}

/// Every event of an app, as integrations read it.
async fn whole_log(store: &Arc<dyn Store>, app: AppId) -> Vec<crate::event::Event> {
    let mut all = Vec::new();
    let mut after = Offset(0);
    loop {
        let page = store.events(app, after, 100).await.expect("events");
        if let Some(last) = page.rows.last() {
            after = last.offset;
        }
        all.extend(page.rows);
        if !page.has_more {
            return all;
        }
    }
}

/// A deleted message's text is gone from the log too (its post and its edits), other texts
/// stay, and a rebuild gives the same read models.
pub async fn deleted_text_leaves_the_log(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "r", 2).await;
    let room = group(&store, app, "u0", &["u1"], Visibility::Private).await;
    let posted = |out: StoreResultOutcome| match out {
        Ok(Outcome::Item { item, .. }) => item.seq,
        other => panic!("expected an item, got {other:?}"),
    };
    let doomed = posted(store.execute(send(app, "u0", room, "first zebra")).await);
    let kept = posted(store.execute(send(app, "u1", room, "kept words")).await);
    store
        .execute(Command::Edit(EditMessage {
            app,
            actor: user("u0"),
            room,
            seq: doomed,
            text: "second zebra".into(),
        }))
        .await
        .expect("edit");
    store
        .execute(Command::Delete(DeleteMessage {
            app,
            actor: user("u0"),
            room,
            seq: doomed,
        }))
        .await
        .expect("delete");
    let log = format!("{:?}", whole_log(&store, app).await);
    assert!(
        !log.contains("zebra"),
        "deleted text left in the log: {log}"
    );
    assert!(log.contains("kept words"), "{log}");
    let item = store
        .item(app, room, doomed)
        .await
        .expect("item")
        .expect("tombstone");
    assert!(item.deleted && item.text.is_none(), "{item:?}");
    assert!(
        store.item(app, room, kept).await.expect("item").is_some(),
        "the other message stays"
    );
    let live = snapshot(&store, app).await;
    store.rebuild(Arc::new(|_, _| {})).await.expect("rebuild");
    assert_eq!(live, snapshot(&store, app).await);
}

type StoreResultOutcome = Result<Outcome, StoreError>;

/// A seq is a number, not its low 32 bits: message `2^32 + n` is not message `n`, and nothing
/// names it, so reads find nothing and edits, deletes and replies are refused without an event.
pub async fn seqs_past_32_bits_name_nothing(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "w", 1).await;
    let room = group(&store, app, "u0", &[], Visibility::Private).await;
    let Ok(Outcome::Item { item, .. }) = store.execute(send(app, "u0", room, "original")).await
    else {
        panic!("send failed")
    };
    let before = whole_log(&store, app).await.len();
    for far in [item.seq.0 + (1 << 32), item.seq.0 - (1 << 32), i64::MAX, -1] {
        let far = Seq(far);
        assert_eq!(store.item(app, room, far).await.expect("item"), None);
        let edit = Command::Edit(EditMessage {
            app,
            actor: user("u0"),
            room,
            seq: far,
            text: "hijacked".into(),
        });
        let delete = Command::Delete(DeleteMessage {
            app,
            actor: user("u0"),
            room,
            seq: far,
        });
        let reply = Command::Send(SendMessage {
            app,
            actor: Some(user("u0")),
            room,
            text: "reply".into(),
            reply_to: Some(far),
            client_id: None,
        });
        for cmd in [edit, delete, reply] {
            match store.execute(cmd).await {
                Err(StoreError::Domain(_)) => {}
                other => panic!("seq {far:?} should name nothing, got {other:?}"),
            }
        }
    }
    let item_now = store.item(app, room, item.seq).await.expect("item");
    assert_eq!(item_now.and_then(|i| i.text).as_deref(), Some("original"));
    assert_eq!(
        whole_log(&store, app).await.len(),
        before,
        "no event for a refusal"
    );
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
