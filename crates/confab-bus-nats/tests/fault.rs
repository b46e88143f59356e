//! NATS going away and coming back: publishing never blocks or fails meanwhile, the receiver
//! is told it lagged once the connection is back, and what is published then arrives.

mod common;

use confab_core::bus::conformance as bc;
use confab_core::bus::{BusError, Topic};
use confab_core::ids::RoomNumber;
use std::time::{Duration, Instant};

#[tokio::test]
async fn nats_down_for_seconds_then_back() {
    let Some(mut nats) = common::OwnNats::start() else {
        return;
    };
    let mut config = confab_bus_nats::NatsConfig::new(nats.url());
    config.max_reconnect_delay = Duration::from_millis(200);
    let bus = std::sync::Arc::new(
        confab_bus_nats::NatsBus::connect(config)
            .await
            .expect("bus"),
    );
    let app = bc::fresh_app();
    let room = RoomNumber(1);
    let mut rx = confab_core::bus::Bus::subscribe(&*bus);
    bc::listen(&*bus, &mut *rx, Topic::Room(app, room)).await;
    confab_core::bus::Bus::publish(&*bus, bc::message(app, room, 1));
    assert_eq!(bc::next(&mut *rx).await, bc::message(app, room, 1));

    nats.stop();
    // Two seconds of sends while NATS is down: none may wait for it.
    let outage = Instant::now();
    let mut pos = 1;
    let mut slowest = Duration::ZERO;
    while outage.elapsed() < Duration::from_secs(2) {
        pos += 1;
        let t = Instant::now();
        confab_core::bus::Bus::publish(&*bus, bc::message(app, room, pos));
        slowest = slowest.max(t.elapsed());
        // Paces the traffic (a send every few milliseconds), not a synchronisation.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // A publish that waited for NATS would wait for the whole outage; the bound only leaves
    // room for a busy machine's scheduling.
    assert!(
        slowest < Duration::from_millis(500),
        "a publish waited {slowest:?}"
    );
    assert!(
        bus.dropped() > 0,
        "sends while NATS was down were dropped and counted"
    );

    nats.restart();
    // The receiver is told it may have missed messages (the gateway then resyncs).
    let deadline = tokio::time::Instant::now() + bc::WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Err(BusError::Lagged(_))) => break,
            // Sends from just before the client noticed the outage may still come through.
            Ok(Ok(_)) => {}
            other => panic!("expected a lag report after the reconnect, got {other:?}"),
        }
    }
    // What is published now arrives (the subscription came back with the connection).
    let marker = bc::message(app, room, 1_000_000);
    let deadline = tokio::time::Instant::now() + bc::WAIT;
    loop {
        confab_core::bus::Bus::publish(&*bus, marker.clone());
        match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            Ok(Ok(m)) if m == marker => break,
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => panic!("after the reconnect: {e}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing arrived after NATS came back"
        );
    }
}
