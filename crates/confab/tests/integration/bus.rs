//! The gateway on NATS (`nats` set), with a nats-server of the test's own that it stops and
//! starts again: sends keep succeeding while NATS is down, and a subscriber, never
//! disconnected, ends complete and in order once it is back.

use crate::common::Server;
use crate::ws::{alice_and_bob, assert_same, login, pos, store_changes};
use reqwest::StatusCode;
use serde_json::json;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A nats-server on a port of its own, killed when dropped.
pub(crate) struct OwnNats {
    pub(crate) port: u16,
    child: Option<Child>,
}

impl OwnNats {
    pub(crate) fn start() -> Option<OwnNats> {
        if !std::path::Path::new(NATS_SERVER).exists() {
            if std::env::var("CONFAB_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
                panic!("{NATS_SERVER} is required (CONFAB_REQUIRE_SERVICES=1)");
            }
            eprintln!("SKIPPED: {NATS_SERVER} is missing");
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

    pub(crate) fn restart(&mut self) {
        let child = Command::new(NATS_SERVER)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port).parse().expect("address");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn stop(&mut self) {
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

#[tokio::test]
async fn bus_nats_outage_sends_succeed_and_subscribers_catch_up() {
    // Heartbeat pings keep a waiting client's reads alive: bound the whole test instead.
    tokio::time::timeout(Duration::from_secs(60), outage())
        .await
        .expect("the outage test ends within a minute");
}

async fn outage() {
    let Some(mut nats) = OwnNats::start() else {
        return;
    };
    let url = format!("nats://127.0.0.1:{}", nats.port);
    let s = Server::start_with(|c| {
        c.nats = url;
        c.nats_prefix = "outage".into();
        // Not within the test: the catch-up must come from NATS's reconnect notice.
        c.ws_head_check_ms = 3_600_000;
    })
    .await;
    let (alice, bob, room) = alice_and_bob(&s).await;
    let (mut b, _) = login(&s, &bob, None).await;
    s.send(&alice, room, "through NATS").await;
    let f = b.next_of("change").await;
    assert_eq!(f["change"]["item"]["text"], "through NATS");
    let mut seen = pos(&f);

    nats.stop();
    // Sends are acknowledged by the commit, NATS or not.
    for i in 0..10 {
        let (st, body) = s
            .post(
                &format!("/v1/rooms/{room}/messages"),
                &alice,
                json!({ "text": format!("while down {i}") }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
    }
    nats.restart();
    // Once NATS is back the gateway knows it may have missed changes and reads the rooms of
    // its connections from the store: the connection stays open and gets every change it
    // missed, in order, then live changes through NATS again.
    let missed = store_changes(&s, &alice, room, seen).await;
    assert_eq!(missed.len(), 10);
    let got = b.changes(room, missed.len()).await;
    assert_same(&got, &missed);
    seen = pos(got.last().expect("changes"));
    s.send(&alice, room, "after the outage").await;
    let f = b.next_of("change").await;
    assert_eq!(f["change"]["item"]["text"], "after the outage");
    assert_eq!(pos(&f), seen + 1, "in order, no gap: {f}");
}
