//! Confab's HTTP API. `app(state)` builds the router; `serve(listener, state, shutdown)` runs it
//! until the shutdown future resolves, then drains in-flight requests for a bounded time.

pub mod auth;
mod body_deadline;
mod cors;
pub mod cursor;
pub mod deadlines;
pub mod dto;
pub mod error;
pub mod extract;
pub mod limit;
mod openapi;
mod page;
mod routes;
mod serve;
pub mod socket;
pub mod ws;

use crate::error::{ApiError, ApiResult};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use confab_core::Command;
use confab_core::ids::{AppId, UserId};
use confab_core::model::AppKeys;
use confab_core::store::Store;
use confab_core::validate::Limits;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// What the API needs to know from the configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub admin_key: String,
    pub limits: Limits,
    /// Longest life a minted user token may have, in seconds.
    pub max_token_ttl: i64,
    /// Life of a user token when the request names none.
    pub default_token_ttl: i64,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Whether the compatible API creates apps without the admin key.
    pub open_app_creation: bool,
    /// Time a client has to send a request's headers (an idle kept-alive connection too).
    pub header_timeout: Duration,
    /// Rate limits per user, app and client address.
    pub rate: limit::LimitConfig,
    /// Time a client has to send a request's whole body once its headers are in.
    pub body_timeout: Duration,
    /// Time a write may wait for the peer to read before the connection is closed.
    pub write_timeout: Duration,
    /// Connections (WebSockets included) served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Time in-flight requests get to finish at shutdown before their connections close.
    pub shutdown_grace: Duration,
    /// Origins browsers may call the API from (`*`: any); empty: no CORS headers at all.
    pub cors_origins: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            admin_key: String::new(),
            limits: Limits::default(),
            max_token_ttl: 30 * 24 * 3600,
            default_token_ttl: 24 * 3600,
            max_body_bytes: 256 * 1024,
            open_app_creation: true,
            header_timeout: Duration::from_secs(30),
            rate: limit::LimitConfig::default(),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(10),
            cors_origins: Vec::new(),
        }
    }
}

/// A verified user token: its app, user and expiry (Unix seconds).
type VerifiedToken = (AppId, UserId, i64);

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<ApiConfig>,
    pub keys: Arc<KeyCache>,
    /// Tokens already verified, keyed by the whole signed token, with their expiry (Unix s).
    verified: Arc<Mutex<HashMap<String, VerifiedToken>>>,
    seen: Arc<Mutex<HashMap<(AppId, UserId), Instant>>>,
    /// Rate limits, shared by REST and the WebSocket so a user has one budget whatever the path.
    pub limits: Arc<limit::Limits>,
    /// The real-time gateway, when enabled.
    pub ws: Option<ws::Gateway>,
    /// The ID-token verifier of `POST /v1/auth/oidc`, built once at start (its caches of
    /// providers' keys are shared by every app); without it that route refuses.
    pub oidc: Option<Arc<confab_oidc::Verifier>>,
    /// What runs commands when it is not the store itself: the router that sends each app's
    /// writes to the node holding its write lease (several nodes on PostgreSQL and NATS).
    pub writes: Option<Arc<dyn confab_core::store::Execute>>,
}

/// How often `last_seen_at` is written for a user who keeps making requests.
const SEEN_EVERY: Duration = Duration::from_secs(60);

impl AppState {
    /// Runs a command for any entry point (REST, WebSocket, the compatible API): its input is
    /// checked here, once, by core's rules for that command, then it goes to the store.
    pub async fn execute(
        &self,
        cmd: confab_core::Command,
    ) -> Result<confab_core::Outcome, confab_core::StoreError> {
        confab_core::validate::command(&cmd, &self.config.limits)?;
        match &self.writes {
            Some(writes) => writes.execute(cmd).await,
            None => self.store.execute(cmd).await,
        }
    }

    pub fn new(store: Arc<dyn Store>, config: ApiConfig) -> Self {
        AppState {
            store,
            limits: Arc::new(limit::Limits::new(&config.rate)),
            config: Arc::new(config),
            keys: Arc::new(KeyCache::default()),
            verified: Arc::new(Mutex::new(HashMap::new())),
            seen: Arc::new(Mutex::new(HashMap::new())),
            ws: None,
            oidc: None,
            writes: None,
        }
    }

    /// Runs commands through `writes` (the write router) instead of the store.
    pub fn with_writes(mut self, writes: Arc<dyn confab_core::store::Execute>) -> Self {
        self.writes = Some(writes);
        self
    }

    /// Enables sign-in with the apps' identity providers (`POST /v1/auth/oidc`).
    pub fn with_oidc(mut self, verifier: Arc<confab_oidc::Verifier>) -> Self {
        self.oidc = Some(verifier);
        self
    }

    /// Enables the WebSocket gateway at `GET /v1/ws`.
    pub fn with_ws(mut self, gateway: ws::Gateway) -> Self {
        self.ws = Some(gateway);
        self
    }

    pub async fn authenticate_user(&self, token: &str) -> ApiResult<(AppId, UserId)> {
        // A token is only ever cached after its signature checked out, so a hit is the same
        // token; the expiry is checked on every use, exactly as the first check did.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some((app, user, exp)) = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(token).cloned())
        {
            if exp < now {
                return Err(ApiError::unauthorized("token expired"));
            }
            return Ok((app, user));
        }
        let key_id = auth::token_key_id(token)?;
        let keys = self
            .keys
            .by_key_id(&self.store, &key_id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid token"))?;
        let (app, user, exp) = auth::verify(&keys, token)?;
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= 100_000 {
                m.retain(|_, (_, _, e)| *e >= now);
                if m.len() >= 100_000 {
                    m.clear();
                }
            }
            m.insert(token.to_owned(), (app, user.clone(), exp));
        }
        Ok((app, user))
    }

    /// Records that a user was active, at most once a minute per user, off the request path.
    pub fn seen(&self, app: AppId, user: &UserId) {
        let now = Instant::now();
        {
            let Ok(mut seen) = self.seen.lock() else {
                return;
            };
            let key = (app, user.clone());
            if seen
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < SEEN_EVERY)
            {
                return;
            }
            if seen.len() > 100_000 {
                seen.retain(|_, t| now.duration_since(*t) < SEEN_EVERY);
            }
            seen.insert(key, now);
        }
        let store = self.store.clone();
        let user = user.clone();
        tokio::spawn(async move {
            if let Err(e) = store.execute(Command::RecordSeen { app, user }).await {
                tracing::debug!(error = %e, "could not record last_seen_at");
            }
        });
    }
}

/// Apps' signing keys by token, by secret hash and by key id. Keys never change once made, so
/// entries never go stale; a miss goes to the store.
#[derive(Default)]
pub struct KeyCache {
    by_token: RwLock<HashMap<String, AppKeys>>,
    by_secret: RwLock<HashMap<String, AppKeys>>,
    by_key_id: RwLock<HashMap<String, AppKeys>>,
}

impl KeyCache {
    pub async fn by_key_id(
        &self,
        store: &Arc<dyn Store>,
        key_id: &str,
    ) -> ApiResult<Option<AppKeys>> {
        if let Some(k) = self
            .by_key_id
            .read()
            .ok()
            .and_then(|m| m.get(key_id).cloned())
        {
            return Ok(Some(k));
        }
        // Key ids are 32 hex digits; anything else cannot name a key, so it costs no read.
        if key_id.len() != 32 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let found = store.app_keys_by_key_id(key_id).await?;
        if let (Some(k), Ok(mut m)) = (&found, self.by_key_id.write()) {
            m.insert(key_id.to_owned(), k.clone());
        }
        Ok(found)
    }

    pub async fn by_token(
        &self,
        store: &Arc<dyn Store>,
        token: &str,
    ) -> ApiResult<Option<AppKeys>> {
        if let Some(k) = self
            .by_token
            .read()
            .ok()
            .and_then(|m| m.get(token).cloned())
        {
            return Ok(Some(k));
        }
        let found = store.app_keys_by_token(token).await?;
        if let (Some(k), Ok(mut m)) = (&found, self.by_token.write()) {
            m.insert(token.to_owned(), k.clone());
        }
        Ok(found)
    }

    pub async fn by_secret(
        &self,
        store: &Arc<dyn Store>,
        secret: &str,
    ) -> ApiResult<Option<AppKeys>> {
        let hash = auth::hash_secret(secret);
        if let Some(k) = self
            .by_secret
            .read()
            .ok()
            .and_then(|m| m.get(&hash).cloned())
        {
            return Ok(Some(k));
        }
        let found = store.app_keys_by_secret_hash(&hash).await?;
        if let (Some(k), Ok(mut m)) = (&found, self.by_secret.write()) {
            m.insert(hash, k.clone());
        }
        Ok(found)
    }
}

/// The whole router.
pub fn app(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    let body_timeout = state.config.body_timeout;
    let cors = cors::Cors::new(&state.config.cors_origins);
    let router = routes::router()
        .merge(openapi::router())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            body_timeout,
            body_deadline::limit,
        ));
    // Outside routing, so a preflight is answered whatever the path's methods are.
    let router = match cors {
        Some(cors) => router.layer(axum::middleware::from_fn_with_state(cors, cors::apply)),
        None => router,
    };
    router
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<_>| {
                    // Field values are computed only when the span is enabled.
                    tracing::debug_span!(
                        "request",
                        method = %req.method(),
                        path = req.extensions().get::<axum::extract::MatchedPath>().map_or("-", |p| p.as_str()),
                        id = %uuid::Uuid::now_v7(),
                    )
                },
            ),
        )
        .with_state(state)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish for up to
/// `shutdown_grace` and closes the connections that remain.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let c = &state.config;
    let limits = serve::Limits {
        header_timeout: c.header_timeout,
        write_timeout: c.write_timeout,
        max_connections: c.max_connections,
        shutdown_grace: c.shutdown_grace,
    };
    serve::run(listener, app(state), limits, shutdown).await
}
