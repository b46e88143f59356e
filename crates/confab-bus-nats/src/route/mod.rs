//! Routing each app's writes to one node (issue 11, "several nodes on one room").
//!
//! With several nodes on one PostgreSQL, every node's batching writer locks the rooms it
//! touches and, last, the app's log-offset row until its commit is durable, so the nodes'
//! commits for one app take turns instead of forming one group commit. Here each app's writes
//! go to one node at a time, its *writer*: the holder of the app's write lease
//! (`Store::write_lease`, a row in the database with an expiry on the database's clock). Other
//! nodes forward that app's commands to it over core NATS request/reply on
//! `<prefix>.write.<node id>` and answer their clients with its results.
//!
//! Routing is only a performance measure. Correctness still comes from the database's row
//! locks: any node may write any app at any time. So every failure of routing falls back to
//! running the command locally, except when the command's fate is unknown:
//!
//! - the writer answered: its results are the answers (refusals included);
//! - nothing ran there (no responders, the writer refused the batch as expired, busy or
//!   unreadable, NATS not connected when sending, the forwarder's queue full, a command too
//!   large for a request): run it here, and forget the cached writer;
//! - it may have run there (no reply by the batch's deadline plus a margin, or the
//!   connection to NATS lost while waiting): `StoreError::Unavailable`, as when a database
//!   connection drops during COMMIT. A command with a `client_id` is safe to send again.
//!
//! The writer refuses a batch whose deadline has passed, so one that NATS delivers late (after
//! a reconnect) never runs behind the back of a sender that already answered: that needs the
//! nodes' clocks within a second or two of each other (NTP), since the deadline is a Unix time.
//!
//! Commands of no app or that create or rename one (whose outcomes carry the app's keys) are
//! never forwarded. A node renews its own leases while it uses them (its own commands and
//! those it serves), in the background once less than half their time is left; it trusts a
//! cached lease of another node for at most a second.

mod forward;
mod serve;
mod wire;

use crate::{NatsBus, NatsBusError};
use async_trait::async_trait;
use confab_core::command::{Command, Outcome};
use confab_core::ids::AppId;
use confab_core::store::{Execute, Lease, Store, StoreResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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
/// How long past the deadline a sender waits for the writer's answer before giving up on it.
pub(crate) const MARGIN: Duration = Duration::from_secs(10);
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
}

impl RouteConfig {
    pub fn new(prefix: impl Into<String>) -> Self {
        RouteConfig {
            prefix: prefix.into(),
            lease_ttl: LEASE_TTL,
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
    prefix: String,
    client: async_nats::Client,
    /// Whether the bus's client is connected, as its events tell (to notice a loss while a
    /// batch waits for its answer).
    connected: watch::Receiver<bool>,
    store: Arc<dyn Store>,
    ttl: Duration,
    leases: Mutex<HashMap<AppId, Cached>>,
    claims: Vec<tokio::sync::Mutex<()>>,
    forwarders: Mutex<forward::Forwarders>,
    forwarded: AtomicU64,
    batches: AtomicU64,
    served: AtomicU64,
    fallbacks: AtomicU64,
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
            prefix: config.prefix.clone(),
            client: bus.client.clone(),
            connected: bus.signals.connected.subscribe(),
            store,
            ttl: config.lease_ttl.max(Duration::from_millis(100)),
            leases: Mutex::new(HashMap::new()),
            claims: (0..CLAIM_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            forwarders: Mutex::new(forward::Forwarders::default()),
            forwarded: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            served: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
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
        }
    }

    /// Stops serving other nodes (they then run this node's apps themselves until its leases
    /// expire): returns once NATS has the unsubscription, so requests sent afterwards find
    /// no responder, and those that came before are answered. Forwarders end once their
    /// queues are empty.
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
        if inner.client.connection_state() != State::Connected {
            return inner.store.execute(cmd).await;
        }
        let Writer::Remote(node) = inner.writer_of(app).await else {
            return inner.store.execute(cmd).await;
        };
        match forward::forward(inner, node, cmd).await {
            forward::Forwarded::Done(result) => result,
            forward::Forwarded::NotRun(cmd) => {
                inner.fallbacks.fetch_add(1, Ordering::Relaxed);
                inner.forget(app);
                inner.store.execute(cmd).await
            }
        }
    }
}

impl Inner {
    fn subject(&self, node: &str) -> String {
        format!("{}.write.{node}", self.prefix)
    }

    /// The writer of `app`: from the cache, else by claiming (or learning) its lease.
    async fn writer_of(self: &Arc<Self>, app: AppId) -> Writer {
        if let Some(w) = self.cached(app) {
            return w;
        }
        let stripe = app.0.rem_euclid(CLAIM_STRIPES as i64) as usize;
        let Some(lock) = self.claims.get(stripe) else {
            return Writer::Local;
        };
        let _claiming = lock.lock().await;
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
            renew_at: now,
            renewing: false,
        });
        if !e.renewing {
            e.renewing = true;
            tokio::spawn(self.clone().renew(app));
        }
    }

    async fn renew(self: Arc<Self>, app: AppId) {
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
}
