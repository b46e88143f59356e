//! The storage ports. `Store` is what the API talks to; `Tx` is what the rules need inside one
//! write transaction. Neither mentions a database type, so any backend can implement them and
//! run the conformance suite.

use crate::command::{Command, Outcome};
use crate::error::StoreError;
use crate::event::{Event, EventBody};
use crate::ids::{
    AppId, MeetupNumber, Offset, PollNumber, Pos, RoomNumber, Seq, Timestamp, UserId,
};
use crate::meetups::{Alert, Meetup, MeetupQuery, MeetupView, Poll, PollCursor, PollView, Rsvp};
use crate::model::{
    Access, App, AppKeys, AppStats, Change, HistoryQuery, IdentityLink, IdentityProvider, Item,
    Member, MemberState, Page, Room, RoomSummary, User,
};
use crate::search;

pub type StoreResult<T> = Result<T, StoreError>;

/// Progress of a rebuild: events replayed so far out of a total.
pub type Progress = std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>;

/// The events this store instance commits, in its commit order, each as soon as it is durable:
/// what a node forwards to the bus. Like a bus receiver, it may lag (the receiver then resyncs
/// from the store) and it closes with the store.
#[async_trait::async_trait]
pub trait CommitFeed: Send {
    async fn recv(&mut self) -> Result<std::sync::Arc<crate::event::Event>, crate::bus::BusError>;
}

/// A [`CommitFeed`] over a store writer's broadcast of what it committed.
pub struct BroadcastFeed(pub tokio::sync::broadcast::Receiver<std::sync::Arc<crate::event::Event>>);

#[async_trait::async_trait]
impl CommitFeed for BroadcastFeed {
    async fn recv(&mut self) -> Result<std::sync::Arc<crate::event::Event>, crate::bus::BusError> {
        use tokio::sync::broadcast::error::RecvError;
        self.0.recv().await.map_err(|e| match e {
            RecvError::Lagged(n) => crate::bus::BusError::Lagged(n),
            RecvError::Closed => crate::bus::BusError::Closed,
        })
    }
}

/// Something that runs commands: a store, or something in front of one that may have another
/// node run them (the write router). What the API calls for every change.
#[async_trait::async_trait]
pub trait Execute: Send + Sync {
    /// Decides and commits one command, as [`Store::execute`] does.
    async fn execute(&self, cmd: Command) -> StoreResult<Outcome>;
}

/// Who writes an app now (see [`Store::write_lease`]) and for how much longer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The node holding the lease.
    pub holder: String,
    /// Time left until it expires, by the database's clock.
    pub valid_for: std::time::Duration,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Decides and commits one command. Answers only after the commit is durable.
    async fn execute(&self, cmd: Command) -> StoreResult<Outcome>;

    /// Everything this instance commits from now on (see [`CommitFeed`]).
    fn committed(&self) -> Box<dyn CommitFeed>;

    async fn apps(&self) -> StoreResult<Vec<App>>;
    async fn app_by_token(&self, token: &str) -> StoreResult<Option<App>>;
    async fn app_keys_by_token(&self, token: &str) -> StoreResult<Option<AppKeys>>;
    async fn app_keys_by_secret_hash(&self, hash: &str) -> StoreResult<Option<AppKeys>>;
    /// The app whose signing key has this key id (the `kid` of its user tokens).
    async fn app_keys_by_key_id(&self, key_id: &str) -> StoreResult<Option<AppKeys>>;
    async fn app_stats(&self, app: AppId) -> StoreResult<AppStats>;

    async fn user(&self, app: AppId, user: &UserId) -> StoreResult<Option<User>>;

    /// The room and `viewer`'s membership of it; `None` if the room does not exist (or is deleted).
    async fn access(
        &self,
        app: AppId,
        room: RoomNumber,
        viewer: Option<&UserId>,
    ) -> StoreResult<Option<Access>>;
    async fn room_by_alias(&self, app: AppId, alias: &str) -> StoreResult<Option<RoomNumber>>;
    /// Rooms where `user` has membership `state`, newest activity first, after cursor
    /// `(activity, number)`.
    async fn rooms_of_user(
        &self,
        app: AppId,
        user: &UserId,
        state: MemberState,
        after: Option<(i64, RoomNumber)>,
        limit: usize,
    ) -> StoreResult<Page<RoomSummary>>;
    /// Public rooms of the app, by number, after cursor.
    async fn public_rooms(
        &self,
        app: AppId,
        after: Option<RoomNumber>,
        limit: usize,
    ) -> StoreResult<Page<Room>>;
    async fn members(
        &self,
        app: AppId,
        room: RoomNumber,
        state: Option<MemberState>,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Page<Member>>;

    /// Items in ascending seq order. The bool pair says whether more exist before / after.
    async fn history(
        &self,
        app: AppId,
        room: RoomNumber,
        query: HistoryQuery,
        limit: usize,
    ) -> StoreResult<(Vec<Item>, bool, bool)>;
    /// `viewer`'s access to the room and a page of its timeline, read together (one round trip
    /// where the backend can). The caller decides from the access whether to show the page.
    async fn timeline(
        &self,
        app: AppId,
        room: RoomNumber,
        viewer: &UserId,
        query: HistoryQuery,
        limit: usize,
    ) -> StoreResult<Option<(Access, Vec<Item>, bool, bool)>> {
        let Some(access) = self.access(app, room, Some(viewer)).await? else {
            return Ok(None);
        };
        if crate::rules::can_read_timeline(&access).is_err() {
            return Ok(Some((access, Vec::new(), false, false)));
        }
        let (items, before, after) = self.history(app, room, query, limit).await?;
        Ok(Some((access, items, before, after)))
    }
    async fn item(&self, app: AppId, room: RoomNumber, seq: Seq) -> StoreResult<Option<Item>>;
    /// Direct replies to `parent`, ascending; `query` bounds work on the replies' seqs.
    async fn replies(
        &self,
        app: AppId,
        room: RoomNumber,
        parent: Seq,
        query: HistoryQuery,
        limit: usize,
    ) -> StoreResult<(Vec<Item>, bool, bool)>;
    async fn changes(
        &self,
        app: AppId,
        room: RoomNumber,
        since: Pos,
        limit: usize,
    ) -> StoreResult<Page<Change>>;
    async fn events(&self, app: AppId, after: Offset, limit: usize) -> StoreResult<Page<Event>>;
    /// The last position of each of `rooms` that exists (deleted rooms included: their
    /// deletion is their last change), in no particular order; rooms unknown to the store are
    /// left out. One read for many rooms: a gateway compares these with what it delivered, to
    /// catch up rooms whose changes the bus lost.
    async fn heads(&self, app: AppId, rooms: &[RoomNumber]) -> StoreResult<Vec<(RoomNumber, Pos)>>;

    /// The memberships that became `joined` in `app`'s log after offset `after`, in log
    /// order, looking at `span` offsets at most (one bounded range read). `after` `None` looks
    /// at nothing and only says where the log ends now (`next`): where a reader starts. The
    /// offsets of a log become visible in order, so a reader that goes on from `next` never
    /// skips a commit. A gateway reads this now and then to find the joins of its users whose
    /// bus message was lost with no sign of it.
    async fn joins(
        &self,
        app: AppId,
        after: Option<Offset>,
        span: usize,
    ) -> StoreResult<crate::joinings::Joins>;

    /// Messages in `scope` that match `query`, newest first (by `created_at`, then room and seq,
    /// descending), strictly before `before`. Consistent with every acknowledged write.
    async fn search(
        &self,
        app: AppId,
        scope: search::Scope,
        query: search::Query,
        before: Option<search::Cursor>,
        limit: usize,
    ) -> StoreResult<Page<search::Hit>>;

    /// Waits until background work on committed writes (search indexing) has caught up. Reads
    /// never need this to be correct; tests and benchmarks use it to reach a known state.
    async fn settle(&self) -> StoreResult<()> {
        Ok(())
    }

    /// A room's meetups as `viewer` sees them (their answer, counts of every answer), by
    /// `(takes_place_on, number)` ascending. The caller has checked that the viewer may read
    /// the room.
    async fn meetups(
        &self,
        app: AppId,
        room: RoomNumber,
        viewer: &UserId,
        query: MeetupQuery,
        limit: usize,
    ) -> StoreResult<Page<MeetupView>>;
    async fn meetup(
        &self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
        viewer: &UserId,
    ) -> StoreResult<Option<MeetupView>>;
    /// Upcoming meetups (not cancelled, at or after `query.now`) of every room `user` has
    /// joined, by `(takes_place_on, room, number)` ascending, after the cursor.
    async fn my_meetups(
        &self,
        app: AppId,
        user: &UserId,
        now: Timestamp,
        after: Option<(Timestamp, RoomNumber, MeetupNumber)>,
        limit: usize,
    ) -> StoreResult<Page<MeetupView>>;
    /// A room's polls, open ones first (by the closing event: a poll past its deadline that
    /// is not closed yet still lists as open), each group newest first, without voter lists.
    async fn polls(
        &self,
        app: AppId,
        room: RoomNumber,
        viewer: &UserId,
        after: Option<PollCursor>,
        limit: usize,
    ) -> StoreResult<Page<PollView>>;
    /// One poll with its eligible voters.
    async fn poll(
        &self,
        app: AppId,
        room: RoomNumber,
        poll: PollNumber,
        viewer: &UserId,
    ) -> StoreResult<Option<PollView>>;
    /// `user`'s alerts in rooms they have joined (rooms not deleted): one per poll that is
    /// open at `now`, that they are eligible for and have not voted on, by `(room, poll)`
    /// ascending after the cursor.
    async fn alerts(
        &self,
        app: AppId,
        user: &UserId,
        now: Timestamp,
        after: Option<(RoomNumber, PollNumber)>,
        limit: usize,
    ) -> StoreResult<Page<Alert>>;
    /// Polls of every app whose deadline is at or before `now` and that are not closed yet
    /// (rooms not deleted), oldest deadline first: what the server must close.
    async fn due_polls(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(AppId, RoomNumber, PollNumber)>>;

    /// The app's identity provider settings, by id ascending.
    ///
    /// Identity providers and identity links are operational state, not events (DESIGN.md
    /// section 5): they never enter the log, a rebuild keeps them, and every method here is
    /// scoped to one app, which never sees another's.
    async fn identity_providers(&self, app: AppId) -> StoreResult<Vec<IdentityProvider>>;
    async fn identity_provider(
        &self,
        app: AppId,
        id: &str,
    ) -> StoreResult<Option<IdentityProvider>>;
    /// Creates or replaces the settings of provider `id` (`config` is stored as given);
    /// answers whether it was created. A replacement keeps `created_at` and its links.
    async fn put_identity_provider(&self, app: AppId, id: &str, config: &str) -> StoreResult<bool>;
    /// Deletes provider `id` and, in the same transaction, every identity linked through it
    /// (a provider made again under that id may have another issuer, whose subjects must not
    /// sign in as the old links' users); answers whether it existed.
    async fn delete_identity_provider(&self, app: AppId, id: &str) -> StoreResult<bool>;
    /// The user that `(provider, subject)` is linked to.
    async fn identity(
        &self,
        app: AppId,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<UserId>>;
    /// Links `(provider, subject)` to `user` unless it is linked already, and answers the
    /// user it is linked to afterwards: `user`, or the one an earlier (or concurrent) link
    /// chose. Two first sign-ins of one person racing on several nodes end with one link.
    async fn link_identity(
        &self,
        app: AppId,
        provider: &str,
        subject: &str,
        user: &UserId,
    ) -> StoreResult<UserId>;
    /// Removes the link of `(provider, subject)`; answers whether there was one.
    async fn unlink_identity(&self, app: AppId, provider: &str, subject: &str)
    -> StoreResult<bool>;
    /// The app's identity links by `(provider, subject)` ascending, after the cursor (what a
    /// copy of the store carries).
    async fn identity_links(
        &self,
        app: AppId,
        after: Option<(String, String)>,
        limit: usize,
    ) -> StoreResult<Page<IdentityLink>>;

    /// Drops every projection and replays the whole log into it. Operational state (identity
    /// providers and links) is kept.
    async fn rebuild(&self, progress: Progress) -> StoreResult<u64>;

    /// Appends events decided by another store (a copy of its log, one app's events in that
    /// app's offset order, in pages), keeping their apps, offsets and numbers, and applies them
    /// to the projections, all of a call in one transaction. Events already present (the same
    /// app and offset) are refused, so a copy never doubles or mixes logs.
    async fn import(&self, events: Vec<Event>) -> StoreResult<()>;

    /// How many events the whole log holds, all apps together.
    async fn log_len(&self) -> StoreResult<u64>;
    /// Whether the store answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Claims or renews `app`'s write lease for `node`, for `ttl`, when it is free, expired
    /// or already `node`'s, and answers who holds it afterwards. Only a routing hint for
    /// sending an app's writes to one node: correctness never depends on it. `None`: this
    /// store has one writer anyway, there is nothing to route (the default).
    async fn write_lease(
        &self,
        app: AppId,
        node: &str,
        ttl: std::time::Duration,
    ) -> StoreResult<Option<Lease>> {
        let _ = (app, node, ttl);
        Ok(None)
    }

    /// Gives up every write lease `node` holds (it is stopping), so other nodes claim its
    /// apps at once instead of once the leases expire; answers how many it held. Nothing to
    /// do for a store without leases (the default).
    async fn release_leases(&self, node: &str) -> StoreResult<u64> {
        let _ = node;
        Ok(0)
    }
}

/// A room as the rules see it inside a write transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    pub room: Room,
    pub direct: Option<(UserId, UserId)>,
}

/// A write transaction, as the rules need it. Reads see the transaction's own writes.
///
/// # Serialization contract
/// The rules read numbers and add one to them (a room's `last_seq` and `last_pos`, an app's last
/// room number), and check that a key is free before taking it. With one writer that is safe by
/// construction; a store with several writers (several nodes on one database) must give every
/// transaction the same guarantees through locks, and nothing may rely on there being one writer:
///
/// - **A room is locked by the first read of it** ([`Tx::room`]) until commit, exclusively:
///   its counters are read and incremented only under that lock, and so are the rows that belong
///   to it ([`Tx::member`], [`Tx::successor`], [`Tx::item`], [`Tx::item_by_client_id`] read rows
///   written only under it). A store that locks several rooms in one transaction takes them in
///   one global order (ascending internal id, say, all up front for a batch), so two writers
///   never deadlock.
/// - **New room numbers** ([`Tx::last_room_number`]) are read under a lock on the app's room
///   counter held until commit.
/// - **New unique keys** ([`Tx::room_by_alias`], [`Tx::direct_room`], [`Tx::app_token_taken`],
///   [`Tx::next_app_id`]): concurrent checks of the same key are serialized (a lock on the key
///   held until commit), or the store maps the losing insert to [`crate::StoreError::Conflict`]
///   and runs the command again.
/// - **The app's log offset** of an appended event may be taken only when the transaction
///   commits (in commit order, so that a reader of the log never skips an event): the rules
///   never read [`Event::offset`] of what [`Tx::append`] returns, and no projection uses it.
/// - Users are created by upsert and never deleted: [`Tx::user`] needs no lock.
pub trait Tx {
    fn now(&self) -> Timestamp;
    fn app(&mut self, app: AppId) -> StoreResult<Option<App>>;
    fn next_app_id(&mut self) -> StoreResult<AppId>;
    fn app_token_taken(&mut self, token: &str) -> StoreResult<bool>;
    fn last_room_number(&mut self, app: AppId) -> StoreResult<RoomNumber>;
    fn user(&mut self, app: AppId, user: &UserId) -> StoreResult<Option<User>>;
    fn room(&mut self, app: AppId, room: RoomNumber) -> StoreResult<Option<RoomState>>;
    fn room_by_alias(&mut self, app: AppId, alias: &str) -> StoreResult<Option<RoomNumber>>;
    fn direct_room(
        &mut self,
        app: AppId,
        a: &UserId,
        b: &UserId,
    ) -> StoreResult<Option<RoomNumber>>;
    fn member(
        &mut self,
        app: AppId,
        room: RoomNumber,
        user: &UserId,
    ) -> StoreResult<Option<Member>>;
    /// The longest-standing admin, else member, other than `except`.
    fn successor(
        &mut self,
        app: AppId,
        room: RoomNumber,
        except: &UserId,
    ) -> StoreResult<Option<UserId>>;
    fn item(&mut self, app: AppId, room: RoomNumber, seq: Seq) -> StoreResult<Option<Item>>;
    fn item_by_client_id(
        &mut self,
        app: AppId,
        room: RoomNumber,
        sender: Option<&UserId>,
        client_id: &str,
    ) -> StoreResult<Option<Item>>;
    /// Meetup and poll rows belong to their room and are read under its lock, like members.
    fn meetup(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
    ) -> StoreResult<Option<Meetup>>;
    /// The highest meetup number of the room (0 if none).
    fn last_meetup_number(&mut self, app: AppId, room: RoomNumber) -> StoreResult<MeetupNumber>;
    fn rsvp(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
        user: &UserId,
    ) -> StoreResult<Rsvp>;
    /// The users who answered `no` to the meetup.
    fn declined(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
    ) -> StoreResult<Vec<UserId>>;
    /// Every joined member of the room, sorted.
    fn joined_members(&mut self, app: AppId, room: RoomNumber) -> StoreResult<Vec<UserId>>;
    /// The poll with its counts and tallies as of this transaction.
    fn poll(&mut self, app: AppId, room: RoomNumber, poll: PollNumber)
    -> StoreResult<Option<Poll>>;
    /// The highest poll number of the room (0 if none).
    fn last_poll_number(&mut self, app: AppId, room: RoomNumber) -> StoreResult<PollNumber>;
    /// `None` when `user` is not an eligible voter; else their standing vote, sorted (empty
    /// when they have not voted).
    fn ballot(
        &mut self,
        app: AppId,
        room: RoomNumber,
        poll: PollNumber,
        user: &UserId,
    ) -> StoreResult<Option<Vec<u32>>>;
    /// The polls of a meetup that are not closed (by an event), ascending.
    fn open_polls(
        &mut self,
        app: AppId,
        room: RoomNumber,
        meetup: MeetupNumber,
    ) -> StoreResult<Vec<PollNumber>>;
    /// Appends the event to the app's log and applies it to every projection.
    fn append(&mut self, app: AppId, body: EventBody) -> StoreResult<Event>;
}
