//! Confab's store on embedded SQLite. One writer thread owns the only write connection and commits
//! many commands per transaction (group commit), each in a savepoint so a refused command leaves
//! no trace; readers use a separate pool. WAL mode; `synchronous=FULL` unless told otherwise.

mod apps;
mod cache;
mod checkpoint;
mod fault;
mod files;
mod identities;
mod index;
mod joinings;
mod meetups;
mod open;
mod polls;
mod pool;
mod projection;
mod read;
mod rows;
mod schema;
mod search;
mod tx;
mod writer;

pub use files::files_of;
pub use open::{Options, migrate};
pub use schema::Durability;
pub use search::SearchTuning;

use async_trait::async_trait;
use confab_core::command::{Command, Outcome};
use confab_core::error::StoreError;
use confab_core::event::Event;
use confab_core::ids::{
    AppId, MeetupNumber, Offset, PollNumber, Pos, RoomNumber, Seq, Timestamp, UserId,
};
use confab_core::meetups::{Alert, MeetupQuery, MeetupView, PollCursor, PollView};
use confab_core::model::{
    Access, App, AppKeys, AppStats, Change, HistoryQuery, IdentityLink, IdentityProvider, Item,
    Member, MemberState, Page, Room, RoomSummary, User,
};
use confab_core::store::{BroadcastFeed, CommitFeed, Progress, Store, StoreResult};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, broadcast, mpsc};

/// How long a readiness probe waits for the writer and for a reader.
const PING_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    readers: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
    committed: broadcast::Sender<Arc<Event>>,
    path: PathBuf,
    index: Arc<index::Shared>,
    tuning: SearchTuning,
}

use fault::sql as be;
use writer::Job;

#[async_trait]
impl Store for SqliteStore {
    async fn execute(&self, cmd: Command) -> StoreResult<Outcome> {
        self.submit(|reply| Job::Command(cmd, reply)).await
    }

    fn committed(&self) -> Box<dyn CommitFeed> {
        Box::new(BroadcastFeed(self.committed.subscribe()))
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        self.read(apps::apps).await
    }

    async fn app_by_token(&self, token: &str) -> StoreResult<Option<App>> {
        let token = token.to_owned();
        self.read(move |c| apps::app_by_token(c, &token)).await
    }

    async fn app_keys_by_token(&self, token: &str) -> StoreResult<Option<AppKeys>> {
        let token = token.to_owned();
        self.read(move |c| apps::app_keys_by_token(c, &token)).await
    }

    async fn app_keys_by_secret_hash(&self, hash: &str) -> StoreResult<Option<AppKeys>> {
        let hash = hash.to_owned();
        self.read(move |c| apps::app_keys_by_secret_hash(c, &hash))
            .await
    }

    async fn app_keys_by_key_id(&self, key_id: &str) -> StoreResult<Option<AppKeys>> {
        let key_id = key_id.to_owned();
        self.read(move |c| apps::app_keys_by_key_id(c, &key_id))
            .await
    }

    async fn app_stats(&self, app: AppId) -> StoreResult<AppStats> {
        self.read(move |c| read::app_stats(c, app)).await
    }

    async fn user(&self, app: AppId, user: &UserId) -> StoreResult<Option<User>> {
        let user = user.clone();
        self.read(move |c| rows::user_by_id(c, app, &user).map_err(be))
            .await
    }

    async fn access(
        &self,
        app: AppId,
        room: RoomNumber,
        viewer: Option<&UserId>,
    ) -> StoreResult<Option<Access>> {
        let viewer = viewer.cloned();
        self.read(move |c| read::access(c, app, room, viewer.as_ref()))
            .await
    }

    async fn room_by_alias(&self, app: AppId, alias: &str) -> StoreResult<Option<RoomNumber>> {
        let alias = alias.to_owned();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT number FROM rooms WHERE app_id = ?1 AND alias = ?2 AND deleted = 0",
            )
            .and_then(|mut s| s.query_row(params![app.0, alias], |r| r.get(0)).optional())
            .map(|n| n.map(RoomNumber))
            .map_err(be)
        })
        .await
    }

    async fn rooms_of_user(
        &self,
        app: AppId,
        user: &UserId,
        state: MemberState,
        after: Option<(i64, RoomNumber)>,
        limit: usize,
    ) -> StoreResult<Page<RoomSummary>> {
        let user = user.clone();
        self.read(move |c| read::rooms_of_user(c, app, &user, state, after, limit))
            .await
    }

    async fn public_rooms(
        &self,
        app: AppId,
        after: Option<RoomNumber>,
        limit: usize,
    ) -> StoreResult<Page<Room>> {
        self.read(move |c| read::public_rooms(c, app, after, limit))
            .await
    }

    async fn members(
        &self,
        app: AppId,
        room: RoomNumber,
        state: Option<MemberState>,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        let after = after.cloned();
        self.read(move |c| read::members(c, app, room, state, after.as_ref(), limit))
            .await
    }

    async fn history(
        &self,
        app: AppId,
        room: RoomNumber,
        query: HistoryQuery,
        limit: usize,
    ) -> StoreResult<(Vec<Item>, bool, bool)> {
        self.read(move |c| read::history(c, app, room, query, limit))
            .await
    }

    async fn timeline(
        &self,
        app: AppId,
        room: RoomNumber,
        viewer: &UserId,
        query: HistoryQuery,
        limit: usize,
    ) -> StoreResult<Option<(Access, Vec<Item>, bool, bool)>> {
        let viewer = viewer.clone();
        self.read(move |c| {
            let Some(access) = read::access(c, app, room, Some(&viewer))? else {
                return Ok(None);
            };
            if confab_core::rules::can_read_timeline(&access).is_err() {
                return Ok(Some((access, Vec::new(), false, false)));
            }
            let (items, before, after) = read::history(c, app, room, query, limit)?;
            Ok(Some((access, items, before, after)))
        })
        .await
    }

    async fn item(&self, app: AppId, room: RoomNumber, seq: Seq) -> StoreResult<Option<Item>> {
        self.read(move |c| {
            let Some(rid) = rows::room_id(c, app, room).map_err(be)? else {
                return Ok(None);
            };
            rows::item_by_seq(c, rid, seq).map_err(be)
        })
        .await
    }

    async fn replies(
        &self,
        app: AppId,
        room: RoomNumber,
        parent: Seq,
        query: HistoryQuery,
        limit: usize,
    ) -> StoreResult<(Vec<Item>, bool, bool)> {
        self.read(move |c| read::replies(c, app, room, parent, query, limit))
            .await
    }

    async fn changes(
        &self,
        app: AppId,
        room: RoomNumber,
        since: Pos,
        limit: usize,
    ) -> StoreResult<Page<Change>> {
        self.read(move |c| read::changes(c, app, room, since, limit))
            .await
    }

    async fn events(&self, app: AppId, after: Offset, limit: usize) -> StoreResult<Page<Event>> {
        self.read(move |c| read::events(c, app, after, limit)).await
    }

    async fn heads(&self, app: AppId, rooms: &[RoomNumber]) -> StoreResult<Vec<(RoomNumber, Pos)>> {
        let rooms = rooms.to_vec();
        self.read(move |c| read::heads(c, app, &rooms)).await
    }

    async fn joins(
        &self,
        app: AppId,
        after: Option<Offset>,
        span: usize,
    ) -> StoreResult<confab_core::joinings::Joins> {
        self.read(move |c| joinings::joins(c, app, after, span))
            .await
    }

    async fn search(
        &self,
        app: AppId,
        scope: confab_core::search::Scope,
        query: confab_core::search::Query,
        before: Option<confab_core::search::Cursor>,
        limit: usize,
    ) -> StoreResult<Page<confab_core::search::Hit>> {
        let tuning = self.tuning;
        self.read(move |c| search::search(c, tuning, app, scope, query, before, limit))
            .await
    }

    async fn settle(&self) -> StoreResult<()> {
        if !self.index.enabled {
            return Ok(());
        }
        loop {
            let (mark, last) = self
                .read(|c| {
                    c.query_row(
                        "SELECT (SELECT last_event FROM s.index_state), \
                         (SELECT COALESCE(MAX(id), 0) FROM events)",
                        [],
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                    )
                    .map_err(be)
                })
                .await?;
            if mark >= last
                && !self
                    .index
                    .merging
                    .load(std::sync::atomic::Ordering::Acquire)
            {
                return Ok(());
            }
            self.index.hurry();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    async fn meetups(
        &self,
        app: AppId,
        room: RoomNumber,
        viewer: &UserId,
        query: MeetupQuery,
        limit: usize,
    ) -> StoreResult<Page<MeetupView>> {
        let viewer = viewer.clone();
        self.read(move |c| meetups::meetups(c, app, room, &viewer, query, limit))
            .await
    }

    async fn meetup(
        &self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
        viewer: &UserId,
    ) -> StoreResult<Option<MeetupView>> {
        let viewer = viewer.clone();
        self.read(move |c| meetups::meetup(c, app, room, meetup, &viewer))
            .await
    }

    async fn my_meetups(
        &self,
        app: AppId,
        user: &UserId,
        now: Timestamp,
        after: Option<(Timestamp, RoomNumber, MeetupNumber)>,
        limit: usize,
    ) -> StoreResult<Page<MeetupView>> {
        let user = user.clone();
        self.read(move |c| meetups::my_meetups(c, app, &user, now, after, limit))
            .await
    }

    async fn polls(
        &self,
        app: AppId,
        room: RoomNumber,
        viewer: &UserId,
        after: Option<PollCursor>,
        limit: usize,
    ) -> StoreResult<Page<PollView>> {
        let viewer = viewer.clone();
        self.read(move |c| polls::polls(c, app, room, &viewer, after, limit))
            .await
    }

    async fn poll(
        &self,
        app: AppId,
        room: RoomNumber,
        poll: PollNumber,
        viewer: &UserId,
    ) -> StoreResult<Option<PollView>> {
        let viewer = viewer.clone();
        self.read(move |c| polls::poll(c, app, room, poll, &viewer))
            .await
    }

    async fn alerts(
        &self,
        app: AppId,
        user: &UserId,
        now: Timestamp,
        after: Option<(RoomNumber, PollNumber)>,
        limit: usize,
    ) -> StoreResult<Page<Alert>> {
        let user = user.clone();
        self.read(move |c| polls::alerts(c, app, &user, now, after, limit))
            .await
    }

    async fn due_polls(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(AppId, RoomNumber, PollNumber)>> {
        self.read(move |c| polls::due_polls(c, now, limit)).await
    }

    async fn identity_providers(&self, app: AppId) -> StoreResult<Vec<IdentityProvider>> {
        self.read(move |c| identities::providers(c, app)).await
    }

    async fn identity_provider(
        &self,
        app: AppId,
        id: &str,
    ) -> StoreResult<Option<IdentityProvider>> {
        let id = id.to_owned();
        self.read(move |c| identities::provider_by_id(c, app, &id))
            .await
    }

    async fn put_identity_provider(&self, app: AppId, id: &str, config: &str) -> StoreResult<bool> {
        let (id, config) = (id.to_owned(), config.to_owned());
        self.operational(move |c| identities::put_provider(c, app, &id, &config))
            .await
    }

    async fn delete_identity_provider(&self, app: AppId, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.operational(move |c| identities::delete_provider(c, app, &id))
            .await
    }

    async fn identity(
        &self,
        app: AppId,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<UserId>> {
        let (provider, subject) = (provider.to_owned(), subject.to_owned());
        self.read(move |c| identities::identity(c, app, &provider, &subject))
            .await
    }

    async fn link_identity(
        &self,
        app: AppId,
        provider: &str,
        subject: &str,
        user: &UserId,
    ) -> StoreResult<UserId> {
        let (provider, subject, user) = (provider.to_owned(), subject.to_owned(), user.clone());
        self.operational(move |c| identities::link(c, app, &provider, &subject, &user))
            .await
    }

    async fn unlink_identity(
        &self,
        app: AppId,
        provider: &str,
        subject: &str,
    ) -> StoreResult<bool> {
        let (provider, subject) = (provider.to_owned(), subject.to_owned());
        self.operational(move |c| identities::unlink(c, app, &provider, &subject))
            .await
    }

    async fn identity_links(
        &self,
        app: AppId,
        after: Option<(String, String)>,
        limit: usize,
    ) -> StoreResult<Page<IdentityLink>> {
        self.read(move |c| identities::links(c, app, after, limit))
            .await
    }

    async fn rebuild(&self, progress: Progress) -> StoreResult<u64> {
        self.submit(|reply| Job::Rebuild(progress, reply)).await
    }

    async fn import(&self, events: Vec<Event>) -> StoreResult<()> {
        self.submit(|reply| Job::Import(events, reply)).await
    }

    async fn log_len(&self) -> StoreResult<u64> {
        self.read(|c| {
            c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(be)
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        let deadline =
            |what: &str| StoreError::unavailable(format!("{what} did not answer in time"));
        tokio::time::timeout(PING_DEADLINE, self.submit(Job::Ping))
            .await
            .map_err(|_| deadline("the writer"))??;
        tokio::time::timeout(
            PING_DEADLINE,
            self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(be)),
        )
        .await
        .map_err(|_| deadline("the reader pool"))?
    }
}
