//! The WebSocket gateway (`GET /v1/ws`, protocol in `docs/protocol.md`). One [`hub`] per node
//! consumes the bus and routes each change, serialized once, to the connections subscribed to
//! its room; its lanes write it to the sockets. One [`session`] per connection authenticates,
//! resumes from the store, and answers the client. The gateway speaks the WebSocket wire format
//! itself ([`wire`]) on the TCP stream it takes over after the handshake, so a frame is written
//! to a socket with one system call and no task in between.

pub mod bus;
mod conn;
mod hub;
pub mod protocol;
mod session;
mod wire;

use crate::AppState;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use confab_core::bus::Bus;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub use bus::LocalBus;

/// Limits and timings of the gateway.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Frames waiting for one connection's socket, and deliveries waiting for its session, each
    /// at most this many before it is cut off as a slow consumer.
    pub queue: usize,
    /// Largest backlog replayed on resume per room; beyond it the room gets a `reset`.
    pub resume_cap: u64,
    /// Largest client frame / message, in bytes.
    pub max_message_bytes: usize,
    /// Open connections one user may have.
    pub connections_per_user: usize,
    /// Time to send a valid `auth` frame.
    pub auth_timeout: Duration,
    /// Heartbeat: a ping this often; silent for two intervals means dead.
    pub ping_interval: Duration,
    /// How long after the last connection closes a user is announced offline.
    pub presence_grace: Duration,
    /// How often a node tells the others it is alive and how many users it has online; a
    /// node silent for three of these is gone and its users offline.
    pub presence_heartbeat: Duration,
    /// Presence and read notices go only to rooms with at most this many connected members.
    pub presence_room_limit: usize,
    /// How long a typing notice lasts on clients.
    pub typing_ttl: Duration,
    /// How often the rooms with local subscribers are compared with the store's head, so a
    /// change the bus lost (a quiet room's last one, say) is delivered within this period.
    pub head_check: Duration,
    /// How often each app's log is read for joins of local users whose bus message was lost
    /// with no sign (a publisher cut off from NATS), so the joiner gets the room within
    /// about this period without reconnecting.
    pub join_check: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            queue: 1024,
            resume_cap: 50_000,
            max_message_bytes: 64 * 1024,
            connections_per_user: 16,
            auth_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            presence_grace: Duration::from_secs(5),
            presence_heartbeat: Duration::from_secs(5),
            presence_room_limit: 1000,
            typing_ttl: Duration::from_secs(5),
            head_check: Duration::from_secs(3),
            join_check: Duration::from_secs(5),
        }
    }
}

/// The gateway of one node: a handle to its hub plus what sessions share.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    config: WsConfig,
    bus: Arc<dyn Bus>,
    hub: mpsc::UnboundedSender<hub::HubCmd>,
}

impl Gateway {
    /// Starts the hub on the current runtime; it runs until [`Gateway::shutdown`].
    pub fn start(
        state_store: Arc<dyn confab_core::Store>,
        bus: Arc<dyn Bus>,
        config: WsConfig,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        hub::spawn(state_store, bus.clone(), config.clone(), tx.clone(), rx);
        Gateway {
            inner: Arc::new(Inner {
                config,
                bus,
                hub: tx,
            }),
        }
    }

    pub fn config(&self) -> &WsConfig {
        &self.inner.config
    }

    pub(crate) fn bus(&self) -> &Arc<dyn Bus> {
        &self.inner.bus
    }

    pub(crate) fn hub(&self, cmd: hub::HubCmd) {
        // The hub only stops at shutdown; a command then has nobody to act on it.
        let _ = self.inner.hub.send(cmd);
    }

    /// Live events were lost before the bus: every room with local subscribers is caught up
    /// from the store (a room too far behind has its connections told to resync, 4009).
    pub fn resync_all(&self) {
        self.hub(hub::HubCmd::ResyncAll);
    }

    /// Closes every connection ("going away") and stops the hub.
    pub fn shutdown(&self) {
        self.hub(hub::HubCmd::Shutdown);
    }
}

/// `GET /v1/ws`: upgrades, then the first frame must authenticate. The handshake is answered
/// here; the TCP stream is then taken over from the HTTP server.
pub async fn ws_upgrade(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let Some(gateway) = state.ws.clone() else {
        return Err(ApiError::not_found(
            "realtime_disabled",
            "real time is not enabled",
        ));
    };
    let (mut parts, _) = req.into_parts();
    let key = handshake_key(&parts.method, &parts.headers).map_err(|why| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            format!("GET /v1/ws is a WebSocket: {why}"),
        )
    })?;
    let Some(upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            "GET /v1/ws is a WebSocket over HTTP/1.1",
        ));
    };
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return;
            }
        };
        type Accepted = hyper_util::rt::TokioIo<crate::socket::Socket>;
        match upgraded.downcast::<Accepted>() {
            Ok(p) => {
                // The session has its own handling of slow peers, so it takes the bare
                // stream; the slot keeps counting it against the connection cap.
                let (tcp, slot) = p.io.into_inner().into_parts();
                session::run(tcp, p.read_buf, state, gateway).await;
                drop(slot);
            }
            Err(_) => tracing::warn!("a websocket on a connection that is not plain TCP"),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    let accept = HeaderValue::from_str(&wire::accept_key(key.as_bytes()))
        .map_err(|_| ApiError::internal())?;
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    Ok(response)
}

/// The client's `Sec-WebSocket-Key`, if the request is a WebSocket opening handshake.
fn handshake_key(method: &Method, headers: &HeaderMap) -> Result<HeaderValue, &'static str> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if method != Method::GET {
        return Err("the handshake is a GET");
    }
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return Err("Connection: upgrade and Upgrade: websocket are required");
    }
    if !has(header::SEC_WEBSOCKET_VERSION, "13") {
        return Err("Sec-WebSocket-Version: 13 is required");
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| !k.is_empty())
        .cloned()
        .ok_or("Sec-WebSocket-Key is required")
}
