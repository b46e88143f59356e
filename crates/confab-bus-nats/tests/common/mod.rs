//! What the NATS tests share: finding the machine's NATS (or skipping loudly), and a NATS
//! server of a test's own that it can stop and start again.

#![allow(dead_code)]

use confab_bus_nats::{NatsBus, NatsConfig};
use confab_core::bus::Bus;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SHARED_NATS: &str = "127.0.0.1:4222";
pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// Whether a missing service fails the test instead of skipping it.
fn required() -> bool {
    std::env::var("CONFAB_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Skips (with a loud line) or, under `CONFAB_REQUIRE_SERVICES=1`, fails.
pub fn unavailable(what: &str) {
    if required() {
        panic!("{what} is required (CONFAB_REQUIRE_SERVICES=1) but unavailable");
    }
    eprintln!(
        "SKIPPED: {what} is unavailable; set CONFAB_REQUIRE_SERVICES=1 to make this a failure"
    );
}

/// The machine's NATS (`CONFAB_TEST_NATS` overrides the address), if it answers.
pub fn shared_nats() -> Option<String> {
    let addr = std::env::var("CONFAB_TEST_NATS").unwrap_or_else(|_| SHARED_NATS.to_owned());
    let addr = addr.trim_start_matches("nats://").to_owned();
    let reachable = addr
        .parse()
        .ok()
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    if reachable {
        Some(format!("nats://{addr}"))
    } else {
        unavailable(&format!("NATS at {addr}"));
        None
    }
}

pub async fn bus(url: &str, inbox: usize) -> Arc<dyn Bus> {
    let mut config = NatsConfig::new(url);
    config.inbox = inbox;
    Arc::new(NatsBus::connect(config).await.expect("NATS bus"))
}

/// A nats-server of the test's own, killed when dropped.
pub struct OwnNats {
    pub port: u16,
    child: Option<Child>,
}

impl OwnNats {
    /// Starts one on a free port; `None` (after saying so) when the binary is missing.
    pub fn start() -> Option<OwnNats> {
        if !std::path::Path::new(NATS_SERVER).exists() {
            unavailable(NATS_SERVER);
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut n = OwnNats { port, child: None };
        n.restart();
        Some(n)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same port) and waits until it accepts connections.
    pub fn restart(&mut self) {
        let child = Command::new(NATS_SERVER)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = format!("127.0.0.1:{}", self.port).parse().expect("address");
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server at once (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.stop();
    }
}
