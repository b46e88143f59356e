//! The bus on core NATS (no JetStream: the store is the record, the bus only carries live
//! notices). Subjects follow the bus topics, so a node receives only what its connections
//! need:
//!
//! - `confab.<app>.<room>`: the room's changes, read markers and typing notices;
//! - `confab.<app>.app`: the app's membership changes and room deletions (a second copy, so a
//!   node hears that one of its users joined a room it does not follow yet) and presence.
//! - `confab.write.<node id>`: commands other nodes hand to the node that writes their app
//!   (request/reply; see [`WriteRouter`]).
//!
//! (`confab` is the default prefix: deployments sharing one NATS each take their own.)
//!
//! Publishing never waits for NATS: messages go into a bounded queue that one task hands to
//! the client; when the queue is full or NATS is unreachable they are dropped and counted
//! ([`NatsBus::dropped`]). Receivers report [`BusError::Lagged`] after a reconnect, a
//! slow-consumer notice, or when their own buffer overflows; the gateway then resyncs its
//! connections from the store, which is what repairs anything dropped.

mod receiver;
mod route;

pub use route::{RouteConfig, RouteCounters, WriteRouter};

use bytes::Bytes;
use confab_core::bus::{Bus, BusMessage, BusReceiver, Topic};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Settings of the NATS bus.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// The server(s), e.g. `nats://127.0.0.1:4222` (comma-separated for a cluster).
    pub url: String,
    /// The first token(s) of every subject; the nodes of one deployment share it.
    pub prefix: String,
    /// Messages waiting to be handed to the client; beyond this, publishing drops.
    pub queue: usize,
    /// Messages waiting in one receiver; beyond this, it reports a lag.
    pub inbox: usize,
    /// Longest wait between two reconnection attempts.
    pub max_reconnect_delay: Duration,
    /// How long [`NatsBus::connect`] waits for the first connection before going on without
    /// it (publishing drops until it is made).
    pub connect_wait: Duration,
}

impl NatsConfig {
    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            prefix: "confab".into(),
            queue: 64 * 1024,
            inbox: 16 * 1024,
            max_reconnect_delay: Duration::from_secs(1),
            connect_wait: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NatsBusError {
    #[error("cannot use NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot subscribe to {subject} on NATS: {reason}")]
    Subscribe { subject: String, reason: String },
}

/// What the client's events tell receivers.
struct Signals {
    /// Bumped after each reconnect and slow-consumer notice: receivers then report a lag.
    lag: watch::Sender<u64>,
    /// The connection was lost and not yet regained.
    down: AtomicBool,
    /// Since when the client is connected (`None`: it is not now). The write router needs the
    /// time: just after a reconnect, other nodes may not have subscribed again yet.
    connected: watch::Sender<Option<std::time::Instant>>,
}

impl Signals {
    fn on_event(&self, event: async_nats::Event) {
        use async_nats::Event;
        match event {
            Event::Disconnected => {
                self.down.store(true, Ordering::Relaxed);
                self.connected.send_replace(None);
                tracing::warn!("NATS connection lost; live delivery across nodes paused");
            }
            Event::Connected => {
                self.connected.send_replace(Some(std::time::Instant::now()));
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("NATS connection regained; gateways resync");
                    self.lagged();
                }
            }
            Event::SlowConsumer(sid) => {
                tracing::warn!(
                    sid,
                    "NATS dropped messages of a slow subscription; gateways resync"
                );
                self.lagged();
            }
            other => tracing::warn!(event = %other, "NATS"),
        }
    }

    fn lagged(&self) {
        self.lag.send_modify(|n| *n += 1);
    }
}

/// The bus on a NATS connection.
pub struct NatsBus {
    client: async_nats::Client,
    prefix: Arc<str>,
    out: mpsc::Sender<(String, Bytes)>,
    dropped: Arc<AtomicU64>,
    signals: Arc<Signals>,
    inbox: usize,
    /// Dropped with the bus: its receivers then report `Closed`.
    alive: watch::Sender<()>,
}

impl NatsBus {
    /// Connects (in the background: the node starts even while NATS is down, and publishing
    /// drops until the connection is made).
    pub async fn connect(config: NatsConfig) -> Result<NatsBus, NatsBusError> {
        let (lag, _) = watch::channel(0u64);
        let signals = Arc::new(Signals {
            lag,
            down: AtomicBool::new(false),
            connected: watch::channel(None).0,
        });
        let mut connected = signals.connected.subscribe();
        let sig = signals.clone();
        let max_delay = config.max_reconnect_delay;
        let client = async_nats::ConnectOptions::new()
            .name("confab")
            .retry_on_initial_connect()
            .max_reconnects(None)
            // Quick first retries: a restarted NATS is back within a second or two.
            .reconnect_delay_callback(move |attempts| {
                (Duration::from_millis(50) * attempts.min(1000) as u32).min(max_delay)
            })
            .event_callback(move |event| {
                let sig = sig.clone();
                async move { sig.on_event(event) }
            })
            .connect(config.url.as_str())
            .await
            .map_err(|e| NatsBusError::Connect {
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
        // A node whose NATS is up is connected before it serves (else the first changes after
        // start-up would be dropped); one whose NATS is down starts anyway.
        let wait = connected.wait_for(Option::is_some);
        if tokio::time::timeout(config.connect_wait, wait)
            .await
            .is_err()
        {
            tracing::warn!(url = %config.url, "NATS not reachable yet; starting without it, cross-node delivery begins once it is");
        }
        let (out, queue) = mpsc::channel(config.queue.max(16));
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(publisher(client.clone(), queue, dropped.clone()));
        let (alive, _) = watch::channel(());
        Ok(NatsBus {
            client,
            prefix: config.prefix.into(),
            out,
            dropped,
            signals,
            inbox: config.inbox.max(16),
            alive,
        })
    }

    /// Messages dropped so far (queue full, or NATS unreachable).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The NATS subject of a topic.
pub fn subject(prefix: &str, topic: Topic) -> String {
    match topic {
        Topic::Room(app, room) => format!("{prefix}.{}.{}", app.0, room.0),
        Topic::App(app) => format!("{prefix}.{}.app", app.0),
    }
}

impl Bus for NatsBus {
    fn publish(&self, msg: BusMessage) {
        let payload = Bytes::from(msg.encode());
        for topic in [msg.room_topic(), msg.app_topic()].into_iter().flatten() {
            if self
                .out
                .try_send((subject(&self.prefix, topic), payload.clone()))
                .is_err()
            {
                count_drop(&self.dropped);
            }
        }
    }

    fn subscribe(&self) -> Box<dyn BusReceiver> {
        Box::new(receiver::NatsReceiver::new(
            self.client.clone(),
            self.prefix.clone(),
            self.inbox,
            self.signals.lag.subscribe(),
            self.signals.clone(),
            self.alive.subscribe(),
        ))
    }
}

/// Counts a dropped message, with a warning at the first and then at every power of two (a
/// NATS outage drops many; the log says so without a line per message).
fn count_drop(dropped: &AtomicU64) {
    let n = dropped.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_power_of_two() {
        tracing::warn!(
            dropped = n,
            "bus messages dropped (NATS unreachable or too slow); gateways fill gaps from the store"
        );
    }
}

/// Hands queued messages to the client, dropping them while the connection is down (the
/// client would otherwise hold them, and this task, until it reconnects).
async fn publisher(
    client: async_nats::Client,
    mut queue: mpsc::Receiver<(String, Bytes)>,
    dropped: Arc<AtomicU64>,
) {
    use async_nats::connection::State;
    while let Some((subject, payload)) = queue.recv().await {
        if client.connection_state() != State::Connected {
            count_drop(&dropped);
            continue;
        }
        if let Err(e) = client.publish(subject, payload).await {
            tracing::debug!(error = %e, "NATS publish failed");
            count_drop(&dropped);
        }
    }
}
