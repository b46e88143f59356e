//! The shared harness: a real server per test, an HTTP client, and helpers to make apps, users
//! and rooms.

#![allow(dead_code)]

use confab::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The PostgreSQL server the HTTP tests run against when `CONFAB_TEST_DATABASE_URL` is set
/// (e.g. `postgres://postgres@127.0.0.1:5432`): each server then gets a database of its own,
/// dropped with it. Unset, every server keeps embedded SQLite in its data directory.
pub fn postgres_server() -> Option<String> {
    std::env::var("CONFAB_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(|u| u.trim_end_matches('/').to_owned())
}

/// Whether this run is on PostgreSQL; tests of SQLite's own files say so and stop.
pub fn on_postgres(test: &str) -> bool {
    let pg = postgres_server().is_some();
    if pg {
        eprintln!("{test}: tests the embedded SQLite store's files; not run on PostgreSQL");
    }
    pg
}

/// A database made for one server on the test PostgreSQL; dropped on drop.
pub struct PgDatabase {
    server: String,
    name: String,
}

impl PgDatabase {
    pub fn create(server: &str) -> PgDatabase {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("random name");
        let name = format!(
            "confab_http_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let (admin, sql) = (
            format!("{server}/postgres"),
            format!("CREATE DATABASE \"{name}\""),
        );
        // The blocking client runs its own runtime: keep it off the test's runtime thread.
        std::thread::spawn(move || {
            postgres::Client::connect(&admin, postgres::NoTls)
                .and_then(|mut c| c.batch_execute(&sql))
        })
        .join()
        .expect("create thread")
        .expect("CONFAB_TEST_DATABASE_URL names a PostgreSQL that lets us create a database");
        PgDatabase {
            server: server.to_owned(),
            name,
        }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = format!("{}/postgres", self.server);
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            postgres::Client::connect(&admin, postgres::NoTls)
                .and_then(|mut c| c.batch_execute(&sql))
        })
        .join();
    }
}

pub struct Server {
    pub base: String,
    pub admin_key: String,
    pub client: reqwest::Client,
    pub config: Config,
    running: Option<confab::Running>,
    _dir: Option<TempDir>,
    /// Dropped after `running` (fields drop in order), so the server has let go of it.
    _pg: Option<PgDatabase>,
}

impl Server {
    /// Starts a server with a fresh data dir.
    pub async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    /// Starts a server with a fresh data dir after `tweak` adjusts the configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            log: "warn".into(),
            ..Config::default()
        };
        // Many tests send hundreds of messages or pages as fast as they can from one user or
        // one address; production limits would make them fail or slow. Limits stay on (very
        // high), so the metering code runs in every test; the tests of limits set low ones.
        config.sends_per_second = 1_000_000;
        config.sends_burst = 1_000_000;
        config.reads_per_second = 1_000_000;
        config.reads_burst = 1_000_000;
        config.app_requests_per_second = 1_000_000;
        config.app_requests_burst = 1_000_000;
        config.anon_requests_per_second = 1_000_000;
        config.anon_requests_burst = 1_000_000;
        config.anon_apps_per_hour = 1_000_000;
        config.anon_apps_burst = 1_000_000;
        // `CONFAB_TEST_NATS=nats://…` runs the gateway on NATS (each server under subjects of
        // its own, as its store numbers apps from 1 like every other test's).
        if let Ok(url) = std::env::var("CONFAB_TEST_NATS") {
            config.nats = url;
            config.nats_prefix = format!("test{}", unique_token());
        }
        tweak(&mut config);
        // A test that names its own database keeps it.
        let pg = match postgres_server() {
            Some(server) if config.database.is_empty() => Some(PgDatabase::create(&server)),
            _ => None,
        };
        if let Some(db) = &pg {
            config.database = db.url();
        }
        let running = confab::start(&config).await.expect("server starts");
        Server {
            base: format!("http://{}", running.addr),
            admin_key: running.admin_key.clone(),
            // Idle connections are dropped well before the server's own limit.
            client: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
            config,
            running: Some(running),
            _dir: Some(dir),
            _pg: pg,
        }
    }

    /// A client of a server run elsewhere (a `confab serve` child process, say).
    pub fn external(base: String, admin_key: String, data_dir: &std::path::Path) -> Server {
        Server {
            base,
            admin_key,
            client: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
            config: Config {
                data_dir: data_dir.to_path_buf(),
                ..Config::default()
            },
            running: None,
            _dir: None,
            _pg: None,
        }
    }

    /// Stops the server and starts it again on the same data dir (on a new port).
    pub async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("server stops");
        }
        let running = confab::start(&self.config).await.expect("server restarts");
        self.base = format!("http://{}", running.addr);
        self.admin_key = running.admin_key.clone();
        self.running = Some(running);
    }

    /// Stops the server as an operator would (for tests of shutdown itself).
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("server stops");
        }
    }

    /// What the running server's write router has done (routing must be on).
    pub fn routing(&self) -> confab_bus_nats::RouteCounters {
        self.running
            .as_ref()
            .and_then(|r| r.routing())
            .expect("a running server that routes writes")
    }

    /// The NATS subject the running server takes other nodes' writes on.
    pub fn write_subject(&self) -> String {
        self.running
            .as_ref()
            .and_then(|r| r.write_subject())
            .expect("a running server that routes writes")
    }

    /// The store of the running server (for rebuilds).
    pub fn store(&self) -> std::sync::Arc<dyn confab_core::Store> {
        self.running.as_ref().expect("running").store.clone()
    }

    /// Sends a request; `bearer` is any credential; `body` is sent as JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.expect("body read");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, bearer: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(bearer), None).await
    }
    pub async fn post(&self, path: &str, bearer: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(bearer), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, bearer: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(bearer), Some(body)).await
    }
    pub async fn patch(&self, path: &str, bearer: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(bearer), Some(body))
            .await
    }
    pub async fn delete(&self, path: &str, bearer: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(bearer), None).await
    }

    /// Creates an app through the admin API.
    pub async fn app(&self, name: &str) -> TestApp {
        let (status, body) = self
            .post("/v1/apps", &self.admin_key, json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        TestApp {
            token: body["token"].as_str().expect("token").to_owned(),
            secret: body["secret"].as_str().expect("secret").to_owned(),
        }
    }

    /// Creates (or updates) a user of `app` and returns a fresh token for them.
    pub async fn user(&self, app: &TestApp, id: &str) -> String {
        let (status, body) = self
            .put(
                &format!("/v1/users/{id}"),
                &app.secret,
                json!({ "name": id }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self
            .post(&format!("/v1/users/{id}/tokens"), &app.secret, json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Creates a group room as `owner` and returns its number.
    pub async fn group(&self, owner: &str, visibility: &str, members: &[&str]) -> i64 {
        let body = json!({ "kind": "group", "name": "room", "visibility": visibility, "members": members });
        let (status, room) = self.post("/v1/rooms", owner, body).await;
        assert_eq!(status, StatusCode::CREATED, "{room}");
        room["number"].as_i64().expect("number")
    }

    /// Sends a message and returns the created item.
    pub async fn send(&self, token: &str, room: i64, text: &str) -> Value {
        let (status, item) = self
            .post(
                &format!("/v1/rooms/{room}/messages"),
                token,
                json!({ "text": text }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{item}");
        item
    }
}

/// A token no other test server of this machine uses at the same time.
pub fn unique_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}x{nanos}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct TestApp {
    pub token: String,
    pub secret: String,
}

/// Asserts the error shape and code of a refusal.
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "body: {}", got.1);
    assert_eq!(got.1["error"]["code"], code, "body: {}", got.1);
    assert!(got.1["error"]["message"].is_string(), "body: {}", got.1);
}
