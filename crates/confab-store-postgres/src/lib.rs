//! Confab's store on PostgreSQL, for one node or many on one database. Each node runs one
//! writer thread that commits many commands per transaction (group commit) on a blocking
//! connection, so the rules' `Tx` stays synchronous; reads go through a pool of async
//! connections. How writes stay correct with several nodes (lock order, offsets taken last,
//! unique keys) is told in `writer`.
//!
//! Every table's key starts with the app, so the schema can later be distributed by app
//! (Citus-style) without change.

mod buffered;
mod conn;
mod fault;
mod flush;
mod identities;
mod joinings;
mod leases;
mod meetups;
mod memberships;
mod open;
mod pending;
mod planning;
mod plans;
mod polls;
mod pool;
mod projection;
mod read;
mod replay;
mod rooms;
mod rows;
mod schema;
mod search;
mod stages;
mod tx;
mod writer;

pub use open::{Options, migrate};
pub use schema::{PROJECTIONS, VERSION as SCHEMA_VERSION};

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
use confab_core::store::{BroadcastFeed, CommitFeed, Lease, Progress, Store, StoreResult};
use fault::pg as be;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use writer::Job;

/// Whether a key looked up by clients can name nothing stored: PostgreSQL text cannot hold
/// U+0000, and passing one in a parameter is an error rather than "no such row".
fn unstorable(key: &str) -> bool {
    key.contains('\0')
}

/// How long a readiness probe waits for the writer and for a reader.
const PING_DEADLINE: Duration = Duration::from_secs(5);

pub struct PgStore {
    jobs: mpsc::Sender<Job>,
    pool: deadpool_postgres::Pool,
    committed: broadcast::Sender<Arc<Event>>,
}

#[async_trait]
impl Store for PgStore {
    async fn execute(&self, cmd: Command) -> StoreResult<Outcome> {
        self.submit(|reply| Job::Command(cmd, reply)).await
    }

    fn committed(&self) -> Box<dyn CommitFeed> {
        Box::new(BroadcastFeed(self.committed.subscribe()))
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        let c = self.client().await?;
        let sql = format!("SELECT {} FROM apps ORDER BY id", rows::APP_COLS);
        read::query(&c, &sql, &[])
            .await?
            .iter()
            .map(rows::app)
            .collect()
    }

    async fn app_by_token(&self, token: &str) -> StoreResult<Option<App>> {
        if unstorable(token) {
            return Ok(None);
        }
        let c = self.client().await?;
        let sql = format!("SELECT {} FROM apps WHERE token = $1", rows::APP_COLS);
        read::opt(&c, &sql, &[&token])
            .await?
            .map(|r| rows::app(&r))
            .transpose()
    }

    async fn app_keys_by_token(&self, token: &str) -> StoreResult<Option<AppKeys>> {
        if unstorable(token) {
            return Ok(None);
        }
        let c = self.client().await?;
        let sql = format!("SELECT {} FROM apps WHERE token = $1", rows::KEYS_COLS);
        read::opt(&c, &sql, &[&token])
            .await?
            .map(|r| rows::keys(&r))
            .transpose()
    }

    async fn app_keys_by_secret_hash(&self, hash: &str) -> StoreResult<Option<AppKeys>> {
        if unstorable(hash) {
            return Ok(None);
        }
        let c = self.client().await?;
        let sql = format!(
            "SELECT {} FROM apps WHERE secret_hash = $1",
            rows::KEYS_COLS
        );
        read::opt(&c, &sql, &[&hash])
            .await?
            .map(|r| rows::keys(&r))
            .transpose()
    }

    async fn app_keys_by_key_id(&self, key_id: &str) -> StoreResult<Option<AppKeys>> {
        if unstorable(key_id) {
            return Ok(None);
        }
        let c = self.client().await?;
        let sql = format!("SELECT {} FROM apps WHERE key_id = $1", rows::KEYS_COLS);
        read::opt(&c, &sql, &[&key_id])
            .await?
            .map(|r| rows::keys(&r))
            .transpose()
    }

    async fn app_stats(&self, app: AppId) -> StoreResult<AppStats> {
        read::app_stats(&self.client().await?, app).await
    }

    async fn user(&self, app: AppId, user: &UserId) -> StoreResult<Option<User>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {} FROM users WHERE app_id = $1 AND user_id = $2",
            rows::USER_COLS
        );
        read::opt(&c, &sql, &[&app.0, &user.as_str()])
            .await?
            .map(|r| rows::user(&r))
            .transpose()
    }

    async fn access(
        &self,
        app: AppId,
        room: RoomNumber,
        viewer: Option<&UserId>,
    ) -> StoreResult<Option<Access>> {
        read::access(&self.client().await?, app, room, viewer).await
    }

    async fn room_by_alias(&self, app: AppId, alias: &str) -> StoreResult<Option<RoomNumber>> {
        if unstorable(alias) {
            return Ok(None);
        }
        let c = self.client().await?;
        read::opt(
            &c,
            "SELECT number FROM rooms WHERE app_id = $1 AND alias = $2 AND NOT deleted",
            &[&app.0, &alias],
        )
        .await?
        .map(|r| rows::get(&r, 0).map(RoomNumber))
        .transpose()
    }

    async fn rooms_of_user(
        &self,
        app: AppId,
        user: &UserId,
        state: MemberState,
        after: Option<(i64, RoomNumber)>,
        limit: usize,
    ) -> StoreResult<Page<RoomSummary>> {
        read::rooms_of_user(&self.client().await?, app, user, state, after, limit).await
    }

    async fn public_rooms(
        &self,
        app: AppId,
        after: Option<RoomNumber>,
        limit: usize,
    ) -> StoreResult<Page<Room>> {
        read::public_rooms(&self.client().await?, app, after, limit).await
    }

    async fn members(
        &self,
        app: AppId,
        room: RoomNumber,
        state: Option<MemberState>,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        read::members(&self.client().await?, app, room, state, after, limit).await
    }

    async fn history(
        &self,
        app: AppId,
        room: RoomNumber,
        query: HistoryQuery,
        limit: usize,
    ) -> StoreResult<(Vec<Item>, bool, bool)> {
        read::history(&self.client().await?, app, room, query, limit).await
    }

    async fn timeline(
        &self,
        app: AppId,
        room: RoomNumber,
        viewer: &UserId,
        query: HistoryQuery,
        limit: usize,
    ) -> StoreResult<Option<(Access, Vec<Item>, bool, bool)>> {
        let c = self.client().await?;
        // Both reads go out at once on the connection (tokio-postgres pipelines them): one
        // round trip fewer on the hot read path. The page is thrown away unread when the
        // viewer may not see it.
        let (access, page) = tokio::join!(
            read::access(&c, app, room, Some(viewer)),
            read::history(&c, app, room, query, limit)
        );
        let Some(access) = access? else {
            return Ok(None);
        };
        if confab_core::rules::can_read_timeline(&access).is_err() {
            return Ok(Some((access, Vec::new(), false, false)));
        }
        let (items, before, after) = page?;
        Ok(Some((access, items, before, after)))
    }

    async fn item(&self, app: AppId, room: RoomNumber, seq: Seq) -> StoreResult<Option<Item>> {
        read::item(&self.client().await?, app, room, seq).await
    }

    async fn replies(
        &self,
        app: AppId,
        room: RoomNumber,
        parent: Seq,
        query: HistoryQuery,
        limit: usize,
    ) -> StoreResult<(Vec<Item>, bool, bool)> {
        read::replies(&self.client().await?, app, room, parent, query, limit).await
    }

    async fn changes(
        &self,
        app: AppId,
        room: RoomNumber,
        since: Pos,
        limit: usize,
    ) -> StoreResult<Page<Change>> {
        read::changes(&self.client().await?, app, room, since, limit).await
    }

    async fn events(&self, app: AppId, after: Offset, limit: usize) -> StoreResult<Page<Event>> {
        read::events(&self.client().await?, app, after, limit).await
    }

    async fn heads(&self, app: AppId, rooms: &[RoomNumber]) -> StoreResult<Vec<(RoomNumber, Pos)>> {
        read::heads(&self.client().await?, app, rooms).await
    }

    async fn joins(
        &self,
        app: AppId,
        after: Option<Offset>,
        span: usize,
    ) -> StoreResult<confab_core::joinings::Joins> {
        joinings::joins(&self.client().await?, app, after, span).await
    }

    async fn search(
        &self,
        app: AppId,
        scope: confab_core::search::Scope,
        query: confab_core::search::Query,
        before: Option<confab_core::search::Cursor>,
        limit: usize,
    ) -> StoreResult<Page<confab_core::search::Hit>> {
        search::search(&self.client().await?, app, scope, query, before, limit).await
    }

    async fn meetups(
        &self,
        app: AppId,
        room: RoomNumber,
        viewer: &UserId,
        query: MeetupQuery,
        limit: usize,
    ) -> StoreResult<Page<MeetupView>> {
        meetups::meetups(&self.client().await?, app, room, viewer, query, limit).await
    }

    async fn meetup(
        &self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
        viewer: &UserId,
    ) -> StoreResult<Option<MeetupView>> {
        meetups::meetup(&self.client().await?, app, room, meetup, viewer).await
    }

    async fn my_meetups(
        &self,
        app: AppId,
        user: &UserId,
        now: Timestamp,
        after: Option<(Timestamp, RoomNumber, MeetupNumber)>,
        limit: usize,
    ) -> StoreResult<Page<MeetupView>> {
        meetups::my_meetups(&self.client().await?, app, user, now, after, limit).await
    }

    async fn polls(
        &self,
        app: AppId,
        room: RoomNumber,
        viewer: &UserId,
        after: Option<PollCursor>,
        limit: usize,
    ) -> StoreResult<Page<PollView>> {
        polls::polls(&self.client().await?, app, room, viewer, after, limit).await
    }

    async fn poll(
        &self,
        app: AppId,
        room: RoomNumber,
        poll: PollNumber,
        viewer: &UserId,
    ) -> StoreResult<Option<PollView>> {
        polls::poll(&self.client().await?, app, room, poll, viewer).await
    }

    async fn alerts(
        &self,
        app: AppId,
        user: &UserId,
        now: Timestamp,
        after: Option<(RoomNumber, PollNumber)>,
        limit: usize,
    ) -> StoreResult<Page<Alert>> {
        polls::alerts(&self.client().await?, app, user, now, after, limit).await
    }

    async fn due_polls(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(AppId, RoomNumber, PollNumber)>> {
        polls::due_polls(&self.client().await?, now, limit).await
    }

    async fn identity_providers(&self, app: AppId) -> StoreResult<Vec<IdentityProvider>> {
        identities::providers(&self.client().await?, app).await
    }

    async fn identity_provider(
        &self,
        app: AppId,
        id: &str,
    ) -> StoreResult<Option<IdentityProvider>> {
        identities::provider_by_id(&self.client().await?, app, id).await
    }

    async fn put_identity_provider(&self, app: AppId, id: &str, config: &str) -> StoreResult<bool> {
        identities::put_provider(&self.client().await?, app, id, config).await
    }

    async fn delete_identity_provider(&self, app: AppId, id: &str) -> StoreResult<bool> {
        identities::delete_provider(&mut self.client().await?, app, id).await
    }

    async fn identity(
        &self,
        app: AppId,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<UserId>> {
        identities::identity(&self.client().await?, app, provider, subject).await
    }

    async fn link_identity(
        &self,
        app: AppId,
        provider: &str,
        subject: &str,
        user: &UserId,
    ) -> StoreResult<UserId> {
        identities::link(&self.client().await?, app, provider, subject, user).await
    }

    async fn unlink_identity(
        &self,
        app: AppId,
        provider: &str,
        subject: &str,
    ) -> StoreResult<bool> {
        identities::unlink(&self.client().await?, app, provider, subject).await
    }

    async fn identity_links(
        &self,
        app: AppId,
        after: Option<(String, String)>,
        limit: usize,
    ) -> StoreResult<Page<IdentityLink>> {
        identities::links(&self.client().await?, app, after, limit).await
    }

    async fn rebuild(&self, progress: Progress) -> StoreResult<u64> {
        self.submit(|reply| Job::Rebuild(progress, reply)).await
    }

    async fn import(&self, events: Vec<Event>) -> StoreResult<()> {
        self.submit(|reply| Job::Import(events, reply)).await
    }

    async fn log_len(&self) -> StoreResult<u64> {
        let c = self.client().await?;
        let rows = read::query(&c, "SELECT COUNT(*) FROM events", &[]).await?;
        let n: i64 = rows
            .first()
            .map(|r| rows::get(r, 0))
            .transpose()?
            .unwrap_or(0);
        Ok(n as u64)
    }

    async fn write_lease(
        &self,
        app: AppId,
        node: &str,
        ttl: Duration,
    ) -> StoreResult<Option<Lease>> {
        leases::write_lease(&self.client().await?, app, node, ttl)
            .await
            .map(Some)
    }

    async fn release_leases(&self, node: &str) -> StoreResult<u64> {
        leases::release_leases(&self.client().await?, node).await
    }

    async fn ping(&self) -> StoreResult<()> {
        let deadline =
            |what: &str| StoreError::unavailable(format!("{what} did not answer in time"));
        tokio::time::timeout(PING_DEADLINE, self.submit(Job::Ping))
            .await
            .map_err(|_| deadline("the writer"))??;
        tokio::time::timeout(PING_DEADLINE, async {
            let c = self.client().await?;
            c.simple_query("SELECT 1").await.map(|_| ()).map_err(be)
        })
        .await
        .map_err(|_| deadline("the reader pool"))?
    }
}
