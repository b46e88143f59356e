//! The store conformance suite: every `Store` implementation must pass it. A backend's tests
//! invoke [`conformance_tests!`] with an expression that makes a fresh, empty store.
//!
//! The suite talks to the store only through the `Store` trait, so what it checks is what the
//! API would see.

use crate::command::{Command, Outcome};
use crate::command::{CreateApp, CreateGroup, SendMessage, UpsertUser};
use crate::ids::{AppId, Offset, RoomNumber, UserId};
use crate::model::Visibility;
use crate::store::Store;
use std::sync::Arc;

mod alerts;
mod heads;
mod identities;
mod log;
mod meetups;
mod poll_closing;
mod polls;
mod random_gatherings;
mod rebuild;
mod search;
mod sends;
mod support;
pub use alerts::{alerts_follow_votes_and_closing, close_versus_vote, two_last_votes_close_once};
pub use heads::{joins_follow_the_log, member_since_is_the_joining, room_heads_follow_writes};
pub use identities::{
    identity_links_insert_or_keep, identity_providers_are_per_app, rebuild_keeps_identity_state,
};
pub use log::{deleted_text_leaves_the_log, event_log_is_gapless_per_app};
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
pub use rebuild::{rebuild_equals_live, snapshot};
pub use search::{search_all, search_among_many, search_follows_writes, search_pages_newest_first};
pub use sends::{
    idempotent_sends, refused_commands_change_nothing, seqs_are_gapless_under_concurrency,
    seqs_past_32_bits_name_nothing,
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
