//! The Confab server as a library: load configuration, open the store, start serving. The
//! binary and the integration tests both go through [`start`].

pub mod config;
pub mod copy;

use anyhow::Context;
use confab_api::{ApiConfig, AppState};
use confab_core::store::Store;
use confab_core::validate::Limits;
use confab_store_sqlite::{Durability, Options, SqliteStore};
use config::Config;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Opens (creating and migrating) the store the configuration names: PostgreSQL for a
/// `postgres://` URL, else SQLite. The caller holds the data directory (see [`lock_data_dir`]).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if config.is_postgres() {
        let options = confab_store_postgres::Options {
            readers: config.readers.max(2),
        };
        let store = confab_store_postgres::PgStore::open(&config.database, options)
            .await
            .with_context(|| format!("cannot open database {}", config.database_display()))?;
        return Ok(Arc::new(store));
    }
    let path = config.database_path();
    warn_if_emptied(config, &path);
    let durability = if config.durability == "normal" {
        Durability::Normal
    } else {
        Durability::Full
    };
    let store = SqliteStore::open(
        &path,
        Options {
            durability,
            readers: config.readers,
            ..Options::default()
        },
    )
    .with_context(|| format!("cannot open database {}", path.display()))?;
    Ok(Arc::new(store))
}

/// A zero-length database is what SQLite makes of a new one, so it would silently start empty.
/// When the data directory shows that it once held data, say so loudly.
fn warn_if_emptied(config: &Config, db: &Path) {
    if !std::fs::metadata(db).is_ok_and(|m| m.len() == 0) {
        return;
    }
    let nonempty = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.len() > 0);
    let mut evidence: Vec<String> = confab_store_sqlite::files_of(db)
        .into_iter()
        .skip(1)
        .filter(|p| nonempty(p))
        .map(|p| p.display().to_string())
        .collect();
    let key = config.data_dir.join("admin.key");
    if nonempty(&key) {
        evidence.push(key.display().to_string());
    }
    if !evidence.is_empty() {
        tracing::error!(
            database = %db.display(),
            evidence = %evidence.join(", "),
            "THE DATABASE FILE IS EMPTY, but its data directory shows it held data before: \
             starting with an empty database. If this is not intended, stop the server and \
             restore the database from a backup."
        );
    }
}

/// The data directory, held by this process for as long as the value lives: one server (or
/// one operator command) at a time per data directory.
pub struct DataDirLock {
    _file: Option<std::fs::File>,
}

/// Creates the data directory if needed, private to the server's user (0700), and locks it.
/// Another confab holding it is named in the error with its process id.
pub fn lock_data_dir(config: &Config) -> anyhow::Result<DataDirLock> {
    use std::io::{Read, Seek, Write};
    let dir = &config.data_dir;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder
            .create(dir)
            .with_context(|| format!("cannot create data dir {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make data dir {} private", dir.display()))?;
    }
    #[cfg(not(unix))]
    builder
        .create(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    // Only an embedded database needs one process per data directory: with PostgreSQL, nodes
    // (and operator commands) share the database safely.
    if config.is_postgres() {
        return Ok(DataDirLock { _file: None });
    }
    let path = dir.join("confab.lock");
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another confab process".to_owned()
            } else {
                format!("a running confab (pid {holder})")
            };
            anyhow::bail!(
                "the data directory {} is in use by {who}. Stop it first, or do this through \
                 its HTTP API (POST /v1/apps with the admin key creates an app; \
                 POST /v1/users/{{id}}/tokens with the app secret mints a token).",
                dir.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    // Who holds it, for the message above; the lock itself is what counts.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(DataDirLock { _file: Some(file) })
}

/// The admin key: configured, else kept in `admin.key` in the data dir, made on first start.
/// Returns the key and whether it was just made (so the caller can show it once).
pub fn admin_key(config: &Config) -> anyhow::Result<(String, bool)> {
    if !config.admin_key.is_empty() {
        return Ok((config.admin_key.clone(), false));
    }
    let path = config.data_dir.join("admin.key");
    if let Ok(k) = std::fs::read_to_string(&path) {
        let k = k.trim().to_owned();
        if !k.is_empty() {
            return Ok((k, false));
        }
    }
    let key = format!("ck_admin_{}", confab_api::auth::random_hex(24));
    write_private(&path, &key).with_context(|| format!("cannot write {}", path.display()))?;
    Ok((key, true))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// The input limits every entry point checks commands against.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_text_chars: config.max_text_chars,
        max_name_chars: config.max_name_chars,
        ..Limits::default()
    }
}

pub fn api_config(config: &Config, admin_key: String) -> ApiConfig {
    ApiConfig {
        admin_key,
        limits: limits(config),
        max_token_ttl: config.max_token_ttl,
        default_token_ttl: config.default_token_ttl,
        max_body_bytes: config.max_body_bytes,
        open_app_creation: config.open_app_creation,
        header_timeout: std::time::Duration::from_millis(config.http_header_timeout_ms),
        rate: config.rate(),
        body_timeout: std::time::Duration::from_millis(config.http_body_timeout_ms),
        write_timeout: std::time::Duration::from_millis(config.http_write_timeout_ms),
        max_connections: config.max_connections(),
        shutdown_grace: std::time::Duration::from_millis(config.shutdown_grace_ms),
        cors_origins: config.cors_origins.clone(),
    }
}

/// Where the verifier of `POST /v1/auth/oidc` may fetch providers' keys from.
pub fn oidc_fetch_policy(config: &Config) -> confab_oidc::FetchPolicy {
    confab_oidc::FetchPolicy {
        allow_loopback_http: config.oidc_allow_loopback_http,
        allow_private_networks: config.oidc_allow_private_networks,
    }
}

/// The one ID-token verifier of the server: its caches of providers' keys are shared by
/// every app and request.
pub fn oidc_verifier(config: &Config) -> anyhow::Result<Arc<confab_oidc::Verifier>> {
    let opts = confab_oidc::VerifierOptions {
        fetch_policy: oidc_fetch_policy(config),
        ..confab_oidc::VerifierOptions::default()
    };
    Ok(Arc::new(confab_oidc::Verifier::new(opts).context(
        "cannot set up the verifier of identity providers' tokens",
    )?))
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub admin_key: String,
    /// Whether the admin key was made by this start.
    pub admin_key_new: bool,
    pub store: Arc<dyn Store>,
    shutdown: oneshot::Sender<()>,
    /// Released when the server has stopped.
    _lock: DataDirLock,
    handle: JoinHandle<std::io::Result<()>>,
    gateway: confab_api::ws::Gateway,
    /// Closes polls past their deadline; stops with the server (or when dropped).
    closer: confab_api::deadlines::DeadlineCloser,
    /// Sends each app's writes to its writer node, when routing is on.
    router: Option<Arc<confab_bus_nats::WriteRouter>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish (for up to `shutdown_grace_ms`, then
    /// closes their connections), and waits for the server to end.
    pub async fn stop(self) -> anyhow::Result<()> {
        // Other nodes stop sending this node their writes first (they run them themselves),
        // and its write leases go, so one of them takes its apps at once.
        if let Some(router) = &self.router {
            router.stop().await;
        }
        self.closer.stop().await;
        let _ = self.shutdown.send(());
        self.gateway.shutdown();
        self.handle
            .await
            .context("server task")?
            .context("server")?;
        Ok(())
    }

    /// What the write router has done, when routing is on.
    pub fn routing(&self) -> Option<confab_bus_nats::RouteCounters> {
        self.router.as_ref().map(|r| r.counters())
    }

    /// The NATS subject this node takes other nodes' writes on, when routing is on.
    pub fn write_subject(&self) -> Option<String> {
        self.router.as_ref().map(|r| r.subject())
    }

    /// Waits until the server ends by itself (it does not, unless it fails).
    pub async fn wait(self, signal: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        signal.await;
        self.stop().await
    }
}

/// Opens the store and starts serving on `config.listen` (port 0 picks a free one).
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    let lock = lock_data_dir(config)?;
    let store = open_store(config).await?;
    let (admin_key, admin_key_new) = admin_key(config)?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (gateway, router) = start_gateway(&store, config).await?;
    let mut state = AppState::new(store.clone(), api_config(config, admin_key.clone()))
        .with_ws(gateway.clone())
        .with_oidc(oidc_verifier(config)?);
    if let Some(router) = &router {
        state = state.with_writes(router.clone());
    }
    let closer =
        confab_api::deadlines::DeadlineCloser::start(state.clone(), confab_api::deadlines::EVERY);
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(confab_api::serve(listener, state, async {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        admin_key,
        admin_key_new,
        store,
        shutdown: tx,
        handle,
        gateway,
        closer,
        router,
        _lock: lock,
    })
}

/// The write router, when the gateway is on NATS and routing is on.
type Router = Option<Arc<confab_bus_nats::WriteRouter>>;

/// Starts the real-time gateway, fed by the store's committed events: on NATS when `nats` is
/// set (several nodes), else on an in-process bus. With PostgreSQL and NATS, also the router
/// of writes to each app's writer node (unless `route_writes` is off).
async fn start_gateway(
    store: &Arc<dyn Store>,
    config: &Config,
) -> anyhow::Result<(confab_api::ws::Gateway, Router)> {
    use confab_core::bus::{Bus, BusError};
    let mut router = None;
    let bus: Arc<dyn Bus> = if config.nats.is_empty() {
        Arc::new(confab_api::ws::LocalBus::new(16 * 1024))
    } else {
        let mut nats = confab_bus_nats::NatsConfig::new(config.nats.clone());
        nats.prefix = config.nats_prefix.clone();
        let bus = confab_bus_nats::NatsBus::connect(nats)
            .await
            .context("the bus on NATS")?;
        tracing::info!(nats = %config.nats, "real-time bus on NATS");
        if config.routes_writes() {
            let mut route = confab_bus_nats::RouteConfig::new(config.nats_prefix.clone());
            route.lease_ttl = std::time::Duration::from_millis(config.write_lease_ms);
            route.limits = limits(config);
            let r = confab_bus_nats::WriteRouter::start(&bus, store.clone(), route)
                .await
                .context("the write router on NATS")?;
            router = Some(Arc::new(r));
        }
        Arc::new(bus)
    };
    let gateway = confab_api::ws::Gateway::start(store.clone(), bus.clone(), config.ws());
    let mut committed = store.committed();
    let gw = gateway.clone();
    // Weak: the forwarder must not keep the store open after the server stops (its feed
    // closes when the store does, which ends this task).
    let store = Arc::downgrade(store);
    tokio::spawn(async move {
        loop {
            match committed.recv().await {
                Ok(event) => {
                    let Some(store) = store.upgrade() else { break };
                    if let Some(msg) = confab_api::ws::bus::wire_of(&*store, &event).await {
                        bus.publish(msg);
                    }
                }
                Err(BusError::Lagged(n)) => {
                    // Lost events may include membership changes: every client resumes.
                    tracing::warn!(lost = n, "bus forwarder lagged behind the store");
                    gw.resync_all();
                }
                Err(BusError::Closed) => break,
            }
        }
    });
    Ok((gateway, router))
}
