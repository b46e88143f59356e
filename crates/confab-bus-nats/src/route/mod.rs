//! Routing each app's writes to one node (issue 11, "several nodes on one room").
//!
//! With several nodes on one PostgreSQL, every node's batching writer locks the rooms it
//! touches and, last, the app's log-offset row until its commit is durable, so the nodes'
//! commits for one app take turns instead of forming one group commit. Here each app's writes
//! go to one node at a time, its *writer*: the holder of the app's write lease
//! (`Store::write_lease`, a row in the database with an expiry on the database's clock). Other
//! nodes forward that app's commands to it over core NATS request/reply on
//! `<prefix>.write.<node id>` and answer their clients with its results. Only commands in the
//! app's hot rooms here are forwarded, those that took a good share of the app's recent
//! commands on this node (`heat`): commands spread thinly over many rooms seldom meet another
//! node's on a room, and are written where they arrive.
//!
//! Routing is only a performance measure. Correctness still comes from the database's row
//! locks: any node may write any app at any time. So every failure of routing falls back to
//! running the command locally, except when the command's fate is unknown:
//!
//! - the writer answered: its results are the answers (refusals included);
//! - nothing ran there (no responders, the writer refused the batch as expired, busy or
//!   unreadable, NATS not connected when sending, the forwarder's queue full, a command too
//!   large for a request): run it here, and forget the cached writer;
//! - the answer was lost (the connection to NATS dropped while waiting, or no answer
//!   [`ANSWER_WAIT`] past the batch's deadline): the sender waits for NATS to be connected
//!   again and *recalls* the batch by its id. The writer remembers recent batches by id
//!   (`recent`): one that ran gives its results again; one still running gives them when it
//!   ends; one it never saw is answered "not run" and refused if it comes later, so the
//!   sender runs it here. A batch sent twice never runs twice.
//! - the recall fails too by the deadline plus [`MARGIN`] (NATS not back, the writer gone
//!   or still running the batch): the fate is unknown, `StoreError::Unavailable`, as when a
//!   database connection drops during COMMIT (the writer may have died mid-commit). A
//!   command with a `client_id` is safe to send again.
//!
//! The writer refuses a batch whose deadline has passed, so one that NATS delivers late (after
//! a reconnect) never runs behind the back of a sender that already answered: that needs the
//! nodes' clocks within a second or two of each other (NTP), since the deadline is a Unix time.
//!
//! Commands of no app or that create or rename one (whose outcomes carry the app's keys) are
//! never forwarded. A node renews its own leases while it uses them (its own commands and
//! those it serves), in the background once less than half their time is left; it trusts a
//! cached lease of another node for at most a second. A node that stops releases its leases,
//! so the others take its apps at once; one that dies keeps them until they expire, and a
//! node that finds nobody serving a writer's subject runs that writer's apps itself without
//! asking NATS until the writer's lease would have expired (at most [`GONE_MAX`]).

mod forward;
mod heat;
mod recent;
mod serve;
mod wire;

use crate::{NatsBus, NatsBusError};
use async_trait::async_trait;
use confab_core::command::{Command, Outcome};
use confab_core::ids::AppId;
use confab_core::store::{Execute, Lease, Store, StoreResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// How long a lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// Longest time another node's lease is trusted from the cache.
const FOREIGN_CACHE: Duration = Duration::from_secs(1);
/// A forwarded command must reach the writer within this of being queued, else the writer
/// refuses it (and the sender runs it itself).
pub(crate) const DEADLINE: Duration = Duration::from_secs(2);
/// How long past the deadline a sender waits to learn what became of a batch (its answer,
/// else a recall's) before answering that its fate is unknown: long enough for NATS to be
/// restarted and every node to reconnect (they retry at least once a second).
pub(crate) const MARGIN: Duration = Duration::from_secs(15);
/// How long past the deadline a sender waits for the answer before recalling the batch.
pub(crate) const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// How long a writer holds a recall of a batch still running before answering "running".
pub(crate) const RECALL_WAIT: Duration = Duration::from_secs(5);
/// For this long after this node connected to NATS again, another node may not have
/// subscribed again yet: nobody on its subject does not mean it is gone.
const RECONNECT_GRACE: Duration = Duration::from_secs(3);
/// Longest time a node found gone (nobody on its subject) is left out of routing.
const GONE_MAX: Duration = Duration::from_secs(60);
/// Nodes remembered as gone at once.
const MAX_GONE: usize = 1024;
/// How long a stopping node waits for the database to release its leases.
const RELEASE_WAIT: Duration = Duration::from_secs(3);
/// The most commands in one forwarded batch.
pub(crate) const MAX_BATCH: usize = 256;
/// A forwarder closes a batch once it holds about this many bytes.
const BATCH_BYTES: usize = 256 * 1024;
/// The largest request a writer reads (below NATS's default 1 MiB payload limit).
pub(crate) const MAX_REQUEST_BYTES: usize = 768 * 1024;
/// Batches one forwarder has in flight at once.
const IN_FLIGHT: usize = 4;
/// Commands waiting in one forwarder; beyond this they run locally.
const QUEUE: usize = 8 * 1024;
/// Batches a writer runs at once; beyond this it answers "busy".
const SERVING: usize = 32;
/// A forwarder with nothing to send for this long ends (a new one starts on demand).
const FORWARDER_IDLE: Duration = Duration::from_secs(60);
/// Cached leases kept before expired ones are swept.
const MAX_CACHED: usize = 100_000;
/// Lease claims run under one of these locks (by app), so a burst of commands for an app
/// whose writer is not cached asks the database once.
const CLAIM_STRIPES: usize = 16;

/// Settings of the router.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// The deployment's subject prefix (the bus's).
    pub prefix: String,
    /// How long a write lease lasts unless renewed ([`LEASE_TTL`]).
    pub lease_ttl: Duration,
    /// The input limits the writer checks forwarded commands against again (the sender
    /// checked them already; the writer does not take the bus's word for it).
    pub limits: confab_core::validate::Limits,
    /// A command in a room is forwarded only if the room had at least one in this many of
    /// the app's recent commands on this node (see `heat`); 1 forwards every command.
    pub hot_share: usize,
}

impl RouteConfig {
    pub fn new(prefix: impl Into<String>) -> Self {
        RouteConfig {
            prefix: prefix.into(),
            lease_ttl: LEASE_TTL,
            limits: confab_core::validate::Limits::default(),
            hot_share: heat::HOT_SHARE,
        }
    }
}

/// What a router has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteCounters {
    /// Commands this node sent to another node and got a result for.
    pub forwarded: u64,
    /// Commands this node ran for other nodes.
    pub served: u64,
    /// Commands meant for another node that ran here instead (nothing ran there).
    pub fallbacks: u64,
    /// Requests (batches of commands) this node sent to another node and got results for.
    pub batches: u64,
    /// Batches sent to another node whose answer was lost and that a recall settled (with
    /// their results, or "not run").
    pub recalled: u64,
    /// Commands in rooms that were not hot here, run here whoever the app's writer is.
    pub cold: u64,
}

/// Where an app's command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Writer {
    Local,
    Remote(Arc<str>),
}

/// A lease as this node last learned it.
struct Cached {
    holder: Arc<str>,
    /// Trusted until then.
    until: Instant,
    /// When the lease expires unless renewed (at the latest).
    expires: Instant,
    /// Our own lease is renewed once used after this.
    renew_at: Instant,
    renewing: bool,
}

/// The router: an [`Execute`] that runs each command on its app's writer.
pub struct WriteRouter {
    inner: Arc<Inner>,
    /// The serving task and what tells it to stop.
    serving: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

pub(crate) struct Inner {
    me: Arc<str>,
    /// When the router started (a connection to NATS made since is a reconnection).
    started: Instant,
    prefix: String,
    client: async_nats::Client,
    /// Since when the bus's client is connected, as its events tell (to notice a loss while
    /// a batch waits for its answer, and to wait for the connection to come back).
    connected: watch::Receiver<Option<Instant>>,
    store: Arc<dyn Store>,
    ttl: Duration,
    /// What forwarded commands are checked against before they run here.
    limits: confab_core::validate::Limits,
    /// Which rooms are hot here, and the share that makes one hot.
    heat: Mutex<heat::Heat>,
    hot_share: usize,
    leases: Mutex<HashMap<AppId, Cached>>,
    claims: Vec<tokio::sync::Mutex<()>>,
    forwarders: Mutex<forward::Forwarders>,
    /// The batches this node was sent, by id.
    recent: recent::Recent,
    /// Nodes found gone (nobody on their subjects), and until when they are left out.
    gone: Mutex<HashMap<Arc<str>, Instant>>,
    /// Set once the router stops: no lease is claimed or renewed any more.
    stopped: AtomicBool,
    forwarded: AtomicU64,
    batches: AtomicU64,
    served: AtomicU64,
    fallbacks: AtomicU64,
    recalled: AtomicU64,
    cold: AtomicU64,
}

impl WriteRouter {
    /// A router for `store` on the bus's NATS connection: it serves its write subject from now
    /// on (until [`WriteRouter::stop`]).
    pub async fn start(
        bus: &NatsBus,
        store: Arc<dyn Store>,
        config: RouteConfig,
    ) -> Result<WriteRouter, NatsBusError> {
        let me: Arc<str> = uuid::Uuid::now_v7().simple().to_string().into();
        let inner = Arc::new(Inner {
            me: me.clone(),
            started: Instant::now(),
            prefix: config.prefix.clone(),
            client: bus.client.clone(),
            connected: bus.signals.connected.subscribe(),
            store,
            ttl: config.lease_ttl.max(Duration::from_millis(100)),
            limits: config.limits,
            heat: Mutex::new(heat::Heat::default()),
            hot_share: config.hot_share,
            leases: Mutex::new(HashMap::new()),
            claims: (0..CLAIM_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            forwarders: Mutex::new(forward::Forwarders::default()),
            recent: recent::Recent::default(),
            gone: Mutex::new(HashMap::new()),
            stopped: AtomicBool::new(false),
            forwarded: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            served: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            recalled: AtomicU64::new(0),
            cold: AtomicU64::new(0),
        });
        let subject = inner.subject(&me);
        let sub =
            inner
                .client
                .subscribe(subject.clone())
                .await
                .map_err(|e| NatsBusError::Subscribe {
                    subject: subject.clone(),
                    reason: e.to_string(),
                })?;
        tracing::info!(node = %me, subject, "routing each app's writes to its lease holder");
        let (stop, stopped) = oneshot::channel();
        let serving = tokio::spawn(serve::serve(inner.clone(), sub, stopped));
        Ok(WriteRouter {
            inner,
            serving: Mutex::new(Some((stop, serving))),
        })
    }

    /// This node's id (a fresh one per start).
    pub fn node(&self) -> &str {
        &self.inner.me
    }

    /// The subject this node serves writes on.
    pub fn subject(&self) -> String {
        self.inner.subject(&self.inner.me)
    }

    pub fn counters(&self) -> RouteCounters {
        RouteCounters {
            forwarded: self.inner.forwarded.load(Ordering::Relaxed),
            served: self.inner.served.load(Ordering::Relaxed),
            fallbacks: self.inner.fallbacks.load(Ordering::Relaxed),
            batches: self.inner.batches.load(Ordering::Relaxed),
            recalled: self.inner.recalled.load(Ordering::Relaxed),
            cold: self.inner.cold.load(Ordering::Relaxed),
        }
    }

    /// Stops serving other nodes and releases this node's leases, so they take its apps at
    /// once: returns once NATS has the unsubscription (requests sent afterwards find no
    /// responder, and those that came before are answered) and the leases are released.
    /// Forwarders end once their queues are empty; from now on this node runs every command
    /// itself.
    pub async fn stop(&self) {
        let serving = self.serving.lock().ok().and_then(|mut s| s.take());
        if let Some((stop, mut task)) = serving {
            let _ = stop.send(());
            if tokio::time::timeout(Duration::from_secs(3), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        if let Ok(mut f) = self.inner.forwarders.lock() {
            f.clear();
        }
        self.inner.release().await;
    }
}

impl Drop for WriteRouter {
    fn drop(&mut self) {
        // Not stopped first: dropping the subscription unsubscribes, without the handshake.
        if let Some((_, task)) = self.serving.lock().ok().and_then(|mut s| s.take()) {
            task.abort();
        }
    }
}

/// The app a command is routed by; `None` for those that always run locally.
fn routed_app(cmd: &Command) -> Option<AppId> {
    match cmd {
        Command::CreateApp(_) | Command::RenameApp { .. } => None,
        other => other.app(),
    }
}

#[async_trait]
impl Execute for WriteRouter {
    async fn execute(&self, cmd: Command) -> StoreResult<Outcome> {
        use async_nats::connection::State;
        let inner = &self.inner;
        let Some(app) = routed_app(&cmd) else {
            return inner.store.execute(cmd).await;
        };
        // Without NATS there is nothing to route over (and no lease worth asking for).
        if inner.stopped.load(Ordering::Relaxed)
            || inner.client.connection_state() != State::Connected
        {
            return inner.store.execute(cmd).await;
        }
        if let Some(room) = cmd.room()
            && !inner.hot(app, room)
        {
            inner.cold.fetch_add(1, Ordering::Relaxed);
            return inner.store.execute(cmd).await;
        }
        let Writer::Remote(node) = inner.writer_of(app).await else {
            return inner.store.execute(cmd).await;
        };
        if inner.is_gone(&node) {
            inner.fallbacks.fetch_add(1, Ordering::Relaxed);
            return inner.store.execute(cmd).await;
        }
        let cmd = match forward::forward(inner, node.clone(), cmd).await {
            forward::Forwarded::Done(result) => return result,
            forward::Forwarded::NotRun(cmd) => cmd,
            forward::Forwarded::NoWriter(cmd) => {
                inner.writer_gone(app, &node);
                cmd
            }
        };
        inner.fallbacks.fetch_add(1, Ordering::Relaxed);
        inner.forget(app);
        inner.store.execute(cmd).await
    }
}

/// Now as a Unix time in ms (the deadlines' clock).
pub(crate) fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Inner {
    fn subject(&self, node: &str) -> String {
        format!("{}.write.{node}", self.prefix)
    }

    /// Records a command of `app` in `room`: whether the room is hot here (see `heat`).
    fn hot(&self, app: AppId, room: confab_core::ids::RoomNumber) -> bool {
        self.heat
            .lock()
            .map_or(true, |mut h| h.hot(app, room, self.hot_share))
    }

    /// The writer of `app`: from the cache, else by claiming (or learning) its lease.
    async fn writer_of(self: &Arc<Self>, app: AppId) -> Writer {
        if let Some(w) = self.cached(app) {
            return w;
        }
        let Some(lock) = self.claim_lock(app) else {
            return Writer::Local;
        };
        let _claiming = lock.lock().await;
        if self.stopped.load(Ordering::Relaxed) {
            return Writer::Local;
        }
        if let Some(w) = self.cached(app) {
            return w;
        }
        let asked = Instant::now();
        match self.store.write_lease(app, &self.me, self.ttl).await {
            Ok(Some(lease)) => self.remember(app, lease, asked),
            Ok(None) => Writer::Local,
            Err(e) => {
                // The database is what the command needs anyway: let it say what is wrong.
                tracing::debug!(error = %e, app = app.0, "cannot read the write lease; writing locally");
                Writer::Local
            }
        }
    }

    /// The cached writer of `app`, if still trusted; a use of our own lease renews it in the
    /// background when due.
    fn cached(self: &Arc<Self>, app: AppId) -> Option<Writer> {
        let now = Instant::now();
        let mut leases = self.leases.lock().ok()?;
        let e = leases.get_mut(&app)?;
        if now >= e.until {
            return None;
        }
        if e.holder != self.me {
            return Some(Writer::Remote(e.holder.clone()));
        }
        if now >= e.renew_at && !e.renewing {
            e.renewing = true;
            tokio::spawn(self.clone().renew(app));
        }
        Some(Writer::Local)
    }

    /// Notes that this node ran commands of `app` for another node: it keeps (or claims) the
    /// lease those nodes sent them here for.
    fn served_app(self: &Arc<Self>, app: AppId) {
        if self.cached(app).is_some() {
            return;
        }
        let now = Instant::now();
        let Ok(mut leases) = self.leases.lock() else {
            return;
        };
        let e = leases.entry(app).or_insert_with(|| Cached {
            holder: self.me.clone(),
            until: now,
            expires: now,
            renew_at: now,
            renewing: false,
        });
        if !e.renewing {
            e.renewing = true;
            tokio::spawn(self.clone().renew(app));
        }
    }

    /// The lock that claims and renewals of `app`'s lease run under.
    fn claim_lock(&self, app: AppId) -> Option<&tokio::sync::Mutex<()>> {
        self.claims
            .get(app.0.rem_euclid(CLAIM_STRIPES as i64) as usize)
    }

    async fn renew(self: Arc<Self>, app: AppId) {
        // Under the claim lock, so that releasing the leases waits for renewals under way.
        let Some(lock) = self.claim_lock(app) else {
            return;
        };
        let _renewing = lock.lock().await;
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        let asked = Instant::now();
        match self.store.write_lease(app, &self.me, self.ttl).await {
            Ok(Some(lease)) => {
                self.remember(app, lease, asked);
            }
            other => {
                if let Err(e) = other {
                    tracing::debug!(error = %e, app = app.0, "cannot renew a write lease");
                }
                if let Ok(mut leases) = self.leases.lock()
                    && let Some(e) = leases.get_mut(&app)
                {
                    e.renewing = false;
                }
            }
        }
    }

    /// Caches a lease learned at `asked` (times count from before the question, so the cache
    /// never outlives the lease).
    fn remember(&self, app: AppId, lease: Lease, asked: Instant) -> Writer {
        let mine = *lease.holder == *self.me;
        let (holder, writer) = if mine {
            (self.me.clone(), Writer::Local)
        } else {
            let node: Arc<str> = lease.holder.into();
            (node.clone(), Writer::Remote(node))
        };
        let trusted = if mine {
            lease.valid_for
        } else {
            lease.valid_for.min(FOREIGN_CACHE)
        };
        let until = asked + trusted;
        let expires = asked + lease.valid_for;
        let renew_at = if mine {
            asked + lease.valid_for.saturating_sub(self.ttl / 2)
        } else {
            until
        };
        if let Ok(mut leases) = self.leases.lock() {
            if leases.len() >= MAX_CACHED {
                let now = Instant::now();
                leases.retain(|_, c| c.until > now);
                if leases.len() >= MAX_CACHED {
                    leases.clear();
                }
            }
            leases.insert(
                app,
                Cached {
                    holder,
                    until,
                    expires,
                    renew_at,
                    renewing: false,
                },
            );
        }
        writer
    }

    fn forget(&self, app: AppId) {
        if let Ok(mut leases) = self.leases.lock() {
            leases.remove(&app);
        }
    }

    /// Whether this node connected to NATS again a moment ago.
    fn just_reconnected(&self) -> bool {
        self.connected
            .borrow()
            .is_some_and(|since| since > self.started && since.elapsed() < RECONNECT_GRACE)
    }

    /// Nobody serves the subject of `node`, the writer of `app`: it stopped or died. Unless
    /// this node has just reconnected (the other may not be subscribed again yet), `node` is
    /// left out of routing until its lease of `app` would have expired (at most
    /// [`GONE_MAX`]), so commands stop asking NATS for it one by one.
    fn writer_gone(&self, app: AppId, node: &Arc<str>) {
        if self.just_reconnected() {
            return;
        }
        let now = Instant::now();
        let expires = self
            .leases
            .lock()
            .ok()
            .and_then(|leases| {
                let c = leases.get(&app)?;
                (c.holder == *node).then_some(c.expires)
            })
            .unwrap_or(now + self.ttl);
        let Ok(mut gone) = self.gone.lock() else {
            return;
        };
        gone.retain(|_, until| *until > now);
        if gone.len() < MAX_GONE {
            gone.insert(node.clone(), expires.min(now + GONE_MAX));
        }
    }

    fn is_gone(&self, node: &str) -> bool {
        self.gone
            .lock()
            .ok()
            .and_then(|gone| gone.get(node).copied())
            .is_some_and(|until| until > Instant::now())
    }

    /// Gives up this node's leases (it is stopping): no claim or renewal starts from now on,
    /// those under way end first, then the database forgets the leases.
    async fn release(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let mut held = Vec::with_capacity(self.claims.len());
        for lock in &self.claims {
            held.push(lock.lock().await);
        }
        match tokio::time::timeout(RELEASE_WAIT, self.store.release_leases(&self.me)).await {
            Ok(Ok(n)) => tracing::info!(node = %self.me, released = n, "write leases released"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot release the write leases; they expire by themselves")
            }
            Err(_) => tracing::warn!(
                "releasing the write leases took too long; they expire by themselves"
            ),
        }
        if let Ok(mut leases) = self.leases.lock() {
            leases.clear();
        }
    }
}
