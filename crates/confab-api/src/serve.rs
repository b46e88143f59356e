//! The HTTP/1.1 server loop: accepts connections and serves the router on each with hyper,
//! upgrades allowed. The WebSocket gateway takes over the TCP stream of an upgraded connection
//! (which needs the stream as accepted, so the connection is served here rather than through
//! a server that wraps its I/O).
//!
//! Against hostile or broken clients the loop holds: at most `max_connections` at once (past
//! that, new clients wait in the listen backlog), writes that make no progress time out (see
//! [`crate::socket`]), running out of descriptors pauses accepting until one frees, and
//! shutdown drains for a bounded time before it closes what remains.

use crate::socket::Socket;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tower::ServiceExt;

/// The transport's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time a client has to send a request's headers (an idle kept-alive connection too).
    pub header_timeout: Duration,
    /// Time a write may wait for the peer to read before the connection is closed.
    pub write_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Time in-flight requests get to finish at shutdown.
    pub shutdown_grace: Duration,
}

/// Where the server is in its life; connections watch it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// Finish the current request, take no more.
    Draining,
    /// The grace period is over: close now.
    Closing,
}

/// Longest pause of the accept loop when it cannot accept (no descriptors, say); a closed
/// connection ends the pause sooner.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Least time between two warnings of the same trouble.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves, then stops accepting, asks every connection to end after
/// its current request, waits for them up to `shutdown_grace`, closes the rest, and returns.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (phase, watched) = watch::channel(Phase::Serving);
    // Every connection task holds a sender; the channel closes when the last one ends.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Told whenever a connection's descriptor is closed, for an accept loop short of them.
    let closed = Arc::new(Notify::new());
    let mut shutdown = std::pin::pin!(shutdown);
    // Both can recur many times a second under attack; the log (maybe on a full disk) gets
    // one line per WARN_EVERY with the count of the others.
    let mut at_cap = Throttled::default();
    let mut starved = Throttled::default();
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if let Some(times) = at_cap.due() {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        times,
                        "connection cap reached; new clients wait until a connection ends"
                    );
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    s = slots.clone().acquire_owned() => match s {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                }
            }
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up before we took it: nothing is wrong with the listener.
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                // Out of descriptors or memory, say. Retrying at once would spin; waiting for
                // a connection to close (or a short while: other descriptors may free) does
                // not. Clients meanwhile wait in the listen backlog.
                if let Some(times) = starved.due() {
                    tracing::warn!(
                        error = %e,
                        times,
                        "cannot accept connections; waiting for a descriptor to free"
                    );
                }
                drop(slot);
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = closed.notified() => {}
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
                continue;
            }
        };
        // No Nagle delay: a WebSocket writes many small frames, and an ack followed by a
        // change would otherwise wait for the peer's delayed ACK (40 ms).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        // Handlers that meter anonymous callers read the peer address as `ConnectInfo`.
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        ));
        let io = TokioIo::new(Socket::new(tcp, limits.write_timeout, slot));
        let header_timeout = limits.header_timeout;
        let watched = watched.clone();
        let open = open.clone();
        let closed = closed.clone();
        tokio::spawn(async move {
            {
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(io, service)
                    .with_upgrades();
                let mut conn = std::pin::pin!(conn);
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    }
                    true = reached(watched.clone(), Phase::Draining) => {
                        conn.as_mut().graceful_shutdown();
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            true = reached(watched.clone(), Phase::Closing) => {
                                tracing::debug!("connection closed at the end of the shutdown grace");
                            }
                        }
                    }
                }
            }
            // The connection (and its descriptor, unless upgraded) is gone by now.
            closed.notify_one();
            drop(open);
        });
    }
    drop(listener);
    let _ = phase.send(Phase::Draining);
    drop(open);
    if tokio::time::timeout(limits.shutdown_grace, all_closed.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "closing connections still busy at the end of the shutdown grace"
        );
        let _ = phase.send(Phase::Closing);
        let _ = all_closed.recv().await;
    }
    Ok(())
}

/// A warning said at most once per [`WARN_EVERY`].
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
    /// Occurrences since the last time it was said, this one included.
    times: u64,
}

impl Throttled {
    /// Counts an occurrence; `Some(count)` when it is time to say it.
    fn due(&mut self) -> Option<u64> {
        self.times += 1;
        if self.last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.times))
    }
}

/// Resolves to true once the server is at `phase` or later (false if the server is gone,
/// which cannot happen while connections run: the loop's sender outlives them).
async fn reached(mut watched: watch::Receiver<Phase>, phase: Phase) -> bool {
    watched.wait_for(|now| *now >= phase).await.is_ok()
}

/// Accept errors that concern one client only; the next accept can go ahead at once.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}
