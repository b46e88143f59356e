//! Configuration: defaults in code < TOML file < `CONFAB_*` environment < command-line flags.
//! Every layer goes through [`Config::set`], so a bad value fails with a message naming its key.

use std::path::PathBuf;

#[cfg(test)]
mod tests;
mod values;

use values::{
    MAX_RATE, descriptor_limit, is_postgres_url, listen_address, log_filter, nats_servers, num,
    origins,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    /// A SQLite path; empty means `confab.db` in the data dir.
    pub database: String,
    /// Empty means: read or generate `admin.key` in the data dir.
    pub admin_key: String,
    /// `full` (fsync on every commit) or `normal` (survives process crashes, not power loss).
    pub durability: String,
    pub readers: usize,
    pub max_text_chars: usize,
    pub max_name_chars: usize,
    pub max_body_bytes: usize,
    pub max_token_ttl: i64,
    pub default_token_ttl: i64,
    pub log: String,
    /// Whether `POST /api/v1/apps` (the seed-004 compatible API) creates apps without the admin
    /// key, as that API expects. `false` requires the admin key there too.
    pub open_app_creation: bool,
    /// Time a client has to send a request's headers, in ms; a kept-alive connection that
    /// stays idle that long is closed too.
    pub http_header_timeout_ms: u64,
    /// Time a client has to send a request's body once its headers are in, in ms; past it
    /// the request is answered 408.
    pub http_body_timeout_ms: u64,
    /// Time a response write may wait for the client to read, in ms; past it the connection
    /// is closed and its buffered answer freed.
    pub http_write_timeout_ms: u64,
    /// Connections served at once, WebSockets included; 0 derives it from the process's
    /// descriptor limit (see [`Config::max_connections`]).
    pub max_connections: usize,
    /// Time in-flight requests get to finish at shutdown, in ms.
    pub shutdown_grace_ms: u64,
    /// Origins allowed to call the API from a browser (`*` for any); empty: no CORS.
    pub cors_origins: Vec<String>,
    /// WebSocket gateway: frames queued per connection before it is cut off as too slow.
    pub ws_queue: usize,
    /// Largest backlog replayed per room on resume; beyond it the room gets a `reset`.
    pub ws_resume_cap: u64,
    pub ws_max_message_bytes: usize,
    pub ws_connections_per_user: usize,
    pub ws_auth_timeout_ms: u64,
    pub ws_ping_seconds: u64,
    pub ws_presence_grace_ms: u64,
    /// How often a node tells the others it is alive (presence across nodes); a node silent
    /// for three beats is gone and its users offline.
    pub ws_presence_heartbeat_ms: u64,
    pub ws_presence_room_limit: usize,
    /// How often, in ms, the gateway compares its rooms' last delivered positions with the
    /// store's and catches up those behind (changes the bus lost).
    pub ws_head_check_ms: u64,
    /// How often, in ms, the gateway reads each app's log for joins of its users that the
    /// bus lost with no sign of it.
    pub ws_join_check_ms: u64,
    /// Rate limits (token buckets; a rate of 0 turns that limit off). Writes per user (sends,
    /// edits, deletes, WebSocket replays) over REST and the socket together; the old key
    /// `ws_sends_per_second` names the same rate.
    pub sends_per_second: u32,
    pub sends_burst: u32,
    /// Expensive reads per user (history, threads, changes, search) or per app (events).
    pub reads_per_second: u32,
    pub reads_burst: u32,
    /// Requests per app, its users' included.
    pub app_requests_per_second: u32,
    pub app_requests_burst: u32,
    /// Requests to the seed-004 routes per client address.
    pub anon_requests_per_second: u32,
    pub anon_requests_burst: u32,
    /// Apps created without the admin key per client address.
    pub anon_apps_per_hour: u32,
    pub anon_apps_burst: u32,
    /// Most callers each limiter remembers.
    pub rate_limit_keys: usize,
    /// NATS server(s) for the bus between nodes (`nats://host:port`, comma-separated);
    /// empty: an in-process bus (one node).
    pub nats: String,
    /// The first token(s) of the bus's NATS subjects: one per deployment sharing a NATS.
    pub nats_prefix: String,
    /// With PostgreSQL and NATS: whether each app's writes go to one node, the holder of the
    /// app's write lease, which commits them together (other nodes forward them over NATS).
    pub route_writes: bool,
    /// How long a write lease lasts unless its node renews it, in ms.
    pub write_lease_ms: u64,
    /// Sign-in with identity providers: whether the server may fetch an app's provider keys
    /// from loopback addresses, over plain http too (tests, a provider on this host). Off: an
    /// app holding its secret cannot make the server reach its own host.
    pub oidc_allow_loopback_http: bool,
    /// Whether it may fetch them from private and link-local addresses over https (an
    /// in-house provider). Off: an app cannot make the server reach its internal network.
    pub oidc_allow_private_networks: bool,
}

fn flag(value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("'{other}' is not true or false")),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./confab-data"),
            database: String::new(),
            admin_key: String::new(),
            durability: "full".into(),
            readers: 4,
            max_text_chars: 8000,
            max_name_chars: 200,
            max_body_bytes: 256 * 1024,
            max_token_ttl: 30 * 24 * 3600,
            default_token_ttl: 24 * 3600,
            log: "info".into(),
            open_app_creation: true,
            http_header_timeout_ms: 30_000,
            http_body_timeout_ms: 30_000,
            http_write_timeout_ms: 30_000,
            max_connections: 0,
            shutdown_grace_ms: 10_000,
            cors_origins: Vec::new(),
            ws_queue: 1024,
            ws_resume_cap: 50_000,
            ws_max_message_bytes: 64 * 1024,
            ws_connections_per_user: 16,
            ws_auth_timeout_ms: 10_000,
            ws_ping_seconds: 20,
            ws_presence_grace_ms: 5_000,
            ws_presence_heartbeat_ms: 5_000,
            ws_presence_room_limit: 1000,
            ws_head_check_ms: 3_000,
            ws_join_check_ms: 5_000,
            sends_per_second: 20,
            sends_burst: 20,
            reads_per_second: 20,
            reads_burst: 60,
            app_requests_per_second: 2000,
            app_requests_burst: 4000,
            anon_requests_per_second: 20,
            anon_requests_burst: 60,
            anon_apps_per_hour: 20,
            anon_apps_burst: 5,
            rate_limit_keys: 100_000,
            nats: String::new(),
            nats_prefix: "confab".into(),
            route_writes: true,
            write_lease_ms: 10_000,
            oidc_allow_loopback_http: false,
            oidc_allow_private_networks: false,
        }
    }
}

/// Every key, as written in TOML; the environment variable is `CONFAB_` + the key in capitals.
pub const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database",
    "admin_key",
    "durability",
    "readers",
    "max_text_chars",
    "max_name_chars",
    "max_body_bytes",
    "max_token_ttl",
    "default_token_ttl",
    "log",
    "open_app_creation",
    "oidc_allow_loopback_http",
    "oidc_allow_private_networks",
    "http_header_timeout_ms",
    "http_body_timeout_ms",
    "http_write_timeout_ms",
    "max_connections",
    "shutdown_grace_ms",
    "cors_origins",
    "ws_queue",
    "ws_resume_cap",
    "ws_max_message_bytes",
    "ws_connections_per_user",
    "ws_auth_timeout_ms",
    "ws_ping_seconds",
    "ws_presence_grace_ms",
    "ws_presence_heartbeat_ms",
    "ws_presence_room_limit",
    "ws_head_check_ms",
    "ws_join_check_ms",
    // The old name first, so the new one wins when both are set.
    "ws_sends_per_second",
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
    "rate_limit_keys",
    "nats",
    "nats_prefix",
    "route_writes",
    "write_lease_ms",
];

#[derive(Debug, thiserror::Error)]
#[error("configuration: {key} (from {source_name}): {problem}")]
pub struct ConfigError {
    pub key: String,
    pub source_name: String,
    pub problem: String,
}

impl Config {
    /// Sets one key from its text form; `source_name` names where it came from.
    pub fn set(&mut self, key: &str, value: &str, source_name: &str) -> Result<(), ConfigError> {
        let err = |problem: String| ConfigError {
            key: key.to_owned(),
            source_name: source_name.to_owned(),
            problem,
        };
        match key {
            "listen" => {
                listen_address(value).map_err(err)?;
                self.listen = value.to_owned();
            }
            "data_dir" => {
                if value.is_empty() {
                    return Err(err("must not be empty".into()));
                }
                self.data_dir = PathBuf::from(value);
            }
            "database" => {
                if is_postgres_url(value) && !value.contains('@') && !value.contains("user=") {
                    return Err(err(
                        "a PostgreSQL URL must name its user (postgres://USER@HOST/DB)".into(),
                    ));
                }
                self.database = value.to_owned();
            }
            "admin_key" => {
                if !value.is_empty() && value.len() < 16 {
                    return Err(err("must be at least 16 characters".into()));
                }
                self.admin_key = value.to_owned();
            }
            "durability" => match value {
                "full" | "normal" => self.durability = value.to_owned(),
                _ => return Err(err(format!("'{value}' is not one of: full, normal"))),
            },
            "readers" => self.readers = num(value, 1, 64).map_err(err)?,
            "max_text_chars" => self.max_text_chars = num(value, 1, 1_000_000).map_err(err)?,
            "max_name_chars" => self.max_name_chars = num(value, 1, 10_000).map_err(err)?,
            "max_body_bytes" => {
                self.max_body_bytes = num(value, 1024, 64 * 1024 * 1024).map_err(err)?
            }
            "max_token_ttl" => self.max_token_ttl = num(value, 60, 366 * 24 * 3600).map_err(err)?,
            "default_token_ttl" => {
                self.default_token_ttl = num(value, 60, 366 * 24 * 3600).map_err(err)?
            }
            "log" => {
                log_filter(value).map_err(err)?;
                self.log = value.to_owned();
            }
            "open_app_creation" => self.open_app_creation = flag(value).map_err(err)?,
            "oidc_allow_loopback_http" => {
                self.oidc_allow_loopback_http = flag(value).map_err(err)?
            }
            "oidc_allow_private_networks" => {
                self.oidc_allow_private_networks = flag(value).map_err(err)?
            }
            "http_header_timeout_ms" => {
                self.http_header_timeout_ms = num(value, 10, 3_600_000).map_err(err)?
            }
            "http_body_timeout_ms" => {
                self.http_body_timeout_ms = num(value, 10, 3_600_000).map_err(err)?
            }
            "http_write_timeout_ms" => {
                self.http_write_timeout_ms = num(value, 10, 3_600_000).map_err(err)?
            }
            "max_connections" => self.max_connections = num(value, 0, 10_000_000).map_err(err)?,
            "shutdown_grace_ms" => {
                self.shutdown_grace_ms = num(value, 0, 3_600_000).map_err(err)?
            }
            "cors_origins" => self.cors_origins = origins(value).map_err(err)?,
            "ws_queue" => self.ws_queue = num(value, 1, 1_000_000).map_err(err)?,
            "ws_resume_cap" => self.ws_resume_cap = num(value, 0, 100_000_000).map_err(err)?,
            "ws_max_message_bytes" => {
                self.ws_max_message_bytes = num(value, 1024, 64 * 1024 * 1024).map_err(err)?
            }
            "ws_connections_per_user" => {
                self.ws_connections_per_user = num(value, 1, 1_000_000).map_err(err)?
            }
            "ws_auth_timeout_ms" => {
                self.ws_auth_timeout_ms = num(value, 10, 600_000).map_err(err)?
            }
            "ws_ping_seconds" => self.ws_ping_seconds = num(value, 1, 3600).map_err(err)?,
            "ws_presence_grace_ms" => {
                self.ws_presence_grace_ms = num(value, 0, 600_000).map_err(err)?
            }
            "ws_presence_heartbeat_ms" => {
                self.ws_presence_heartbeat_ms = num(value, 100, 600_000).map_err(err)?
            }
            "ws_presence_room_limit" => {
                self.ws_presence_room_limit = num(value, 0, 100_000_000).map_err(err)?
            }
            "ws_head_check_ms" => self.ws_head_check_ms = num(value, 10, 3_600_000).map_err(err)?,
            "ws_join_check_ms" => self.ws_join_check_ms = num(value, 10, 3_600_000).map_err(err)?,
            "sends_per_second" | "ws_sends_per_second" => {
                self.sends_per_second = num(value, 0, MAX_RATE).map_err(err)?
            }
            "sends_burst" => self.sends_burst = num(value, 1, MAX_RATE).map_err(err)?,
            "reads_per_second" => self.reads_per_second = num(value, 0, MAX_RATE).map_err(err)?,
            "reads_burst" => self.reads_burst = num(value, 1, MAX_RATE).map_err(err)?,
            "app_requests_per_second" => {
                self.app_requests_per_second = num(value, 0, MAX_RATE).map_err(err)?
            }
            "app_requests_burst" => {
                self.app_requests_burst = num(value, 1, MAX_RATE).map_err(err)?
            }
            "anon_requests_per_second" => {
                self.anon_requests_per_second = num(value, 0, MAX_RATE).map_err(err)?
            }
            "anon_requests_burst" => {
                self.anon_requests_burst = num(value, 1, MAX_RATE).map_err(err)?
            }
            "anon_apps_per_hour" => {
                self.anon_apps_per_hour = num(value, 0, MAX_RATE).map_err(err)?
            }
            "anon_apps_burst" => self.anon_apps_burst = num(value, 1, MAX_RATE).map_err(err)?,
            "nats" => {
                nats_servers(value).map_err(err)?;
                self.nats = value.to_owned();
            }
            "nats_prefix" => {
                let token = |t: &str| {
                    !t.is_empty()
                        && t.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                };
                if !value.split('.').all(token) {
                    return Err(err(
                        "must be dot-separated tokens of letters, digits, - and _".into(),
                    ));
                }
                self.nats_prefix = value.to_owned();
            }
            "route_writes" => self.route_writes = flag(value).map_err(err)?,
            "write_lease_ms" => self.write_lease_ms = num(value, 100, 600_000).map_err(err)?,
            "rate_limit_keys" => {
                self.rate_limit_keys = num(value, 1000, 100_000_000).map_err(err)?
            }
            _ => return Err(err("unknown key".into())),
        }
        Ok(())
    }

    /// Applies a TOML document: every key must be known.
    pub fn apply_toml(&mut self, text: &str, file: &str) -> Result<(), ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError {
            key: "(file)".into(),
            source_name: file.to_owned(),
            problem: e.to_string(),
        })?;
        for (k, v) in table {
            let text = match &v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                // A list of strings (`cors_origins = ["https://a.example"]`) is the same as
                // their comma-separated text.
                toml::Value::Array(items) if items.iter().all(toml::Value::is_str) => items
                    .iter()
                    .filter_map(toml::Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
                _ => {
                    return Err(ConfigError {
                        key: k,
                        source_name: file.to_owned(),
                        problem: "must be a string, a number or a list of strings".into(),
                    });
                }
            };
            self.set(&k, &text, file)?;
        }
        Ok(())
    }

    /// Applies `CONFAB_*` variables from `env`.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for key in KEYS {
            let var = format!("CONFAB_{}", key.to_uppercase());
            if let Some(v) = env(&var) {
                self.set(key, &v, &var)?;
            }
        }
        Ok(())
    }

    /// The final cross-key checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ws_max_message_bytes < self.max_text_chars.saturating_mul(4).min(64 * 1024 * 1024) {
            return Err(ConfigError {
                key: "ws_max_message_bytes".into(),
                source_name: "configuration".into(),
                problem: "must hold a message of max_text_chars (4 bytes per character)".into(),
            });
        }
        if self.default_token_ttl > self.max_token_ttl {
            return Err(ConfigError {
                key: "default_token_ttl".into(),
                source_name: "configuration".into(),
                problem: "must not exceed max_token_ttl".into(),
            });
        }
        Ok(())
    }

    /// The gateway's settings.
    pub fn ws(&self) -> confab_api::ws::WsConfig {
        use std::time::Duration;
        confab_api::ws::WsConfig {
            queue: self.ws_queue,
            resume_cap: self.ws_resume_cap,
            max_message_bytes: self.ws_max_message_bytes,
            connections_per_user: self.ws_connections_per_user,
            auth_timeout: Duration::from_millis(self.ws_auth_timeout_ms),
            ping_interval: Duration::from_secs(self.ws_ping_seconds),
            presence_grace: Duration::from_millis(self.ws_presence_grace_ms),
            presence_heartbeat: Duration::from_millis(self.ws_presence_heartbeat_ms),
            presence_room_limit: self.ws_presence_room_limit,
            head_check: Duration::from_millis(self.ws_head_check_ms),
            join_check: Duration::from_millis(self.ws_join_check_ms),
            ..confab_api::ws::WsConfig::default()
        }
    }

    /// The rate limits, for the API.
    pub fn rate(&self) -> confab_api::limit::LimitConfig {
        use confab_api::limit::Rate;
        let r = |per_second: u32, burst: u32| Rate::new(f64::from(per_second), f64::from(burst));
        confab_api::limit::LimitConfig {
            sends: r(self.sends_per_second, self.sends_burst),
            reads: r(self.reads_per_second, self.reads_burst),
            app: r(self.app_requests_per_second, self.app_requests_burst),
            anonymous: r(self.anon_requests_per_second, self.anon_requests_burst),
            app_creations: Rate::new(
                f64::from(self.anon_apps_per_hour) / 3600.0,
                f64::from(self.anon_apps_burst),
            ),
            max_keys: self.rate_limit_keys,
        }
    }

    /// The connection cap in force: `max_connections`, or when that is 0, the descriptor limit
    /// less a reserve for the database, the log and the runtime (a quarter of the limit, at
    /// most 256), so the cap is reached before the descriptors run out.
    pub fn max_connections(&self) -> usize {
        if self.max_connections > 0 {
            return self.max_connections;
        }
        let limit = descriptor_limit().unwrap_or(1024);
        (limit - (limit / 4).min(256)).max(1)
    }

    /// Whether commands are routed to their app's writer node: PostgreSQL, NATS and
    /// `route_writes` (one writer per node on SQLite, and nothing to route over without NATS).
    pub fn routes_writes(&self) -> bool {
        self.route_writes && self.is_postgres() && !self.nats.is_empty()
    }

    /// Whether the database is PostgreSQL (a URL) rather than a SQLite file.
    pub fn is_postgres(&self) -> bool {
        is_postgres_url(&self.database)
    }

    /// The database for logs and messages: the path, or the URL without its password.
    pub fn database_display(&self) -> String {
        if !self.is_postgres() {
            return self.database_path().display().to_string();
        }
        match self.database.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('@') {
                Some((who, place)) => {
                    let user = who.split(':').next().unwrap_or("");
                    format!("{scheme}://{user}@{place}")
                }
                None => self.database.clone(),
            },
            None => self.database.clone(),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        if self.database.is_empty() {
            self.data_dir.join("confab.db")
        } else {
            PathBuf::from(&self.database)
        }
    }
}
