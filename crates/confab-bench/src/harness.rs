//! The server under test, started in this process on 127.0.0.1:0 with a fresh data dir and
//! `durability = full`, and an HTTP client that keeps its connections.

use crate::pg::TempDb;
use anyhow::{Context, bail};
use confab_core::Command;
use confab_core::command::SendMessage;
use confab_core::ids::{AppId, RoomNumber, UserId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use tempfile::TempDir;

/// Idle connections kept per host: more than the largest number of concurrent clients.
const POOL: usize = 1024;

/// An HTTP client that reuses its connections.
/// Rate limits far above any load a run makes: the scenarios send from a few users as fast as
/// the server goes, and their figures must stay comparable with runs made before the limits.
/// The limits stay on (not 0) so their cost on the hot path is in the figures.
pub fn lift_rate_limits(config: &mut confab::config::Config) -> anyhow::Result<()> {
    for key in RATE_LIMIT_KEYS {
        config.set(key, LIFTED_RATE, "bench")?;
    }
    Ok(())
}

/// The rate-limit keys [`lift_rate_limits`] raises (also set, as `CONFAB_<KEY>`, on the
/// `confab serve` nodes of the cluster scenarios), and the value they get.
pub const RATE_LIMIT_KEYS: [&str; 10] = [
    "sends_per_second",
    "sends_burst",
    "reads_per_second",
    "reads_burst",
    "app_requests_per_second",
    "app_requests_burst",
    "anon_requests_per_second",
    "anon_requests_burst",
    "anon_apps_per_hour",
    "anon_apps_burst",
];
pub const LIFTED_RATE: &str = "100000000";

pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(POOL)
        // Well under the server's idle limit (30 s), so a pooled connection is never reused
        // just as the server closes it.
        .pool_idle_timeout(std::time::Duration::from_secs(10))
        .tcp_nodelay(true)
        .build()
        .context("cannot build the HTTP client")
}

/// The store a server under test runs on.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum StoreKind {
    /// Embedded SQLite in the temp data dir (WAL, `synchronous=FULL`).
    Sqlite,
    /// A fresh database on the PostgreSQL server of `--pg`.
    Postgres,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "SQLite",
            StoreKind::Postgres => "PostgreSQL",
        }
    }
}

pub struct Server {
    pub base: String,
    pub admin_key: String,
    pub client: reqwest::Client,
    pub running: confab::Running,
    _dir: Option<TempDir>,
    /// Dropped after the server has stopped (fields drop in order): dropping the last handle
    /// drops the database.
    db: Option<Arc<TempDb>>,
}

/// An app as its backend sees it.
pub struct BenchApp {
    pub token: String,
    pub secret: String,
}

impl Server {
    /// A server on SQLite.
    pub async fn start() -> anyhow::Result<Server> {
        Server::node(None, None).await
    }

    /// A server on the store `kind`: with PostgreSQL, on a database of its own, made on the
    /// server of `pg` and dropped when the server is stopped.
    pub async fn start_on(kind: StoreKind, pg: &str) -> anyhow::Result<Server> {
        let db = match kind {
            StoreKind::Sqlite => None,
            StoreKind::Postgres => Some(Arc::new(fresh_db(pg).await?)),
        };
        Server::node(db, None).await
    }

    /// The PostgreSQL database this server uses, if any (to start more nodes on it).
    pub fn database(&self) -> Option<Arc<TempDb>> {
        self.db.clone()
    }

    /// A server (one node) on `db`, else on SQLite; `admin_key` to share one among nodes.
    pub async fn node(db: Option<Arc<TempDb>>, admin_key: Option<&str>) -> anyhow::Result<Server> {
        Server::node_with(db, admin_key, |_| Ok(())).await
    }

    /// [`Server::node`] with `tweak` applied to its configuration last.
    pub async fn node_with(
        db: Option<Arc<TempDb>>,
        admin_key: Option<&str>,
        tweak: impl FnOnce(&mut confab::config::Config) -> anyhow::Result<()>,
    ) -> anyhow::Result<Server> {
        // `CONFAB_BENCH_KEEP=DIR` keeps the data (in DIR) for a look afterwards.
        let (dir, path) = match std::env::var_os("CONFAB_BENCH_KEEP") {
            Some(keep) => (None, std::path::PathBuf::from(keep)),
            None => {
                let dir = tempfile::tempdir().context("cannot make a temp data dir")?;
                let path = dir.path().to_path_buf();
                (Some(dir), path)
            }
        };
        let mut config = confab::config::Config::default();
        config.set("listen", "127.0.0.1:0", "bench")?;
        config.data_dir = path;
        config.set("durability", "full", "bench")?;
        if let Some(db) = &db {
            config.set("database", &db.url, "bench")?;
        }
        if let Some(key) = admin_key {
            config.set("admin_key", key, "bench")?;
        }
        lift_rate_limits(&mut config)?;
        tweak(&mut config)?;
        let running = confab::start(&config).await?;
        Ok(Server {
            base: format!("http://{}", running.addr),
            admin_key: running.admin_key.clone(),
            client: client()?,
            running,
            _dir: dir,
            db,
        })
    }

    /// Stops the server; the data dir goes when `self` drops.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.running.stop().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request and fails unless the status is `want`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<Value>,
        want: StatusCode,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .client
            .request(method.clone(), self.url(path))
            .bearer_auth(bearer);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("{method} {path}"))?;
        if status != want {
            bail!("{method} {path}: expected {want}, got {status}: {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON: {text}"))
    }

    pub async fn app(&self, name: &str) -> anyhow::Result<BenchApp> {
        let body = self
            .call(
                Method::POST,
                "/v1/apps",
                &self.admin_key,
                Some(json!({ "name": name })),
                StatusCode::CREATED,
            )
            .await?;
        Ok(BenchApp {
            token: str_field(&body, "token")?,
            secret: str_field(&body, "secret")?,
        })
    }

    /// Creates a user of `app` and returns a fresh token for them.
    pub async fn user(&self, app: &BenchApp, id: &str) -> anyhow::Result<String> {
        self.call(
            Method::PUT,
            &format!("/v1/users/{id}"),
            &app.secret,
            Some(json!({ "name": id })),
            StatusCode::OK,
        )
        .await?;
        let body = self
            .call(
                Method::POST,
                &format!("/v1/users/{id}/tokens"),
                &app.secret,
                Some(json!({})),
                StatusCode::OK,
            )
            .await?;
        str_field(&body, "token")
    }

    /// Creates `n` users `{prefix}0..` and returns their tokens, in order.
    pub async fn users(
        &self,
        app: &BenchApp,
        prefix: &str,
        n: usize,
    ) -> anyhow::Result<Vec<String>> {
        let mut tokens = Vec::with_capacity(n);
        for i in 0..n {
            tokens.push(self.user(app, &format!("{prefix}{i}")).await?);
        }
        Ok(tokens)
    }

    /// Creates a private group room owned by the holder of `owner`, with `members` joined.
    pub async fn group(&self, owner: &str, members: &[String]) -> anyhow::Result<i64> {
        let body = json!({
            "kind": "group", "name": "bench", "visibility": "private", "members": members
        });
        let room = self
            .call(
                Method::POST,
                "/v1/rooms",
                owner,
                Some(body),
                StatusCode::CREATED,
            )
            .await?;
        room["number"]
            .as_i64()
            .with_context(|| format!("room without a number: {room}"))
    }

    /// The internal id of the app with public token `token`, for commands sent to the store.
    pub async fn app_id(&self, token: &str) -> anyhow::Result<AppId> {
        Ok(self
            .running
            .store
            .app_by_token(token)
            .await?
            .context("the app is not in the store")?
            .id)
    }

    /// Sends one message through the store directly (rules, log, projections, group commit;
    /// no HTTP, no authentication).
    pub async fn store_send(
        &self,
        app: AppId,
        sender: &str,
        room: i64,
        text: String,
    ) -> anyhow::Result<()> {
        store_send(&self.running.store, app, sender, room, text).await
    }

    /// The room's details as `token` sees them.
    pub async fn room(&self, token: &str, number: i64) -> anyhow::Result<Value> {
        self.call(
            Method::GET,
            &format!("/v1/rooms/{number}"),
            token,
            None,
            StatusCode::OK,
        )
        .await
    }
}

/// A new database on the PostgreSQL server of `pg`.
pub async fn fresh_db(pg: &str) -> anyhow::Result<TempDb> {
    let pg = pg.to_owned();
    crate::blocking(move || TempDb::create(&pg)).await
}

fn str_field(v: &Value, key: &str) -> anyhow::Result<String> {
    v[key]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no '{key}' in {v}"))
}

/// A message text of typical chat size (about 80 characters).
pub fn message_text(sender: usize, i: u64) -> String {
    format!("bench message {i:010} from sender {sender:03}: the quick brown fox jumps over the dog")
}

/// [`Server::store_send`] on a store handle that can move into a task.
pub async fn store_send<T: confab_core::store::Store + ?Sized>(
    store: &std::sync::Arc<T>,
    app: AppId,
    sender: &str,
    room: i64,
    text: String,
) -> anyhow::Result<()> {
    store
        .execute(Command::Send(SendMessage {
            app,
            actor: Some(UserId(sender.to_owned())),
            room: RoomNumber(room),
            text,
            reply_to: None,
            client_id: None,
        }))
        .await?;
    Ok(())
}
