//! Bus messages that are really lost, reordered or doubled, between nodes on one PostgreSQL
//! database. Node A publishes on a nats-server of its own that the other nodes do not hear,
//! so none of its changes reach them through the bus: their subscribers must still get every
//! change, in order, from the store (gap reads when a later change arrives, the periodic head
//! check when none does). Wire messages taken from one NATS and published again on the other
//! out of order and twice must reach a subscriber once each, in order. Run in the PostgreSQL
//! pass of `scripts/test`.

use crate::bus::OwnNats;
use crate::common::{PgDatabase, Server, postgres_server, unique_token};
use crate::ws::{Ended, assert_same, cluster_services, login, pos, room_pos, store_changes};
use confab_core::bus::{Bus, BusMessage, Topic};
use confab_core::ids::{AppId, RoomNumber};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

/// A whole test's bound: heartbeat pings keep a waiting client's reads alive.
const WHOLE: Duration = Duration::from_secs(90);

/// The test PostgreSQL and a nats-server binary, or why the test does not run.
fn services(test: &str) -> Option<(String, OwnNats, OwnNats)> {
    // The SQLite pass skips; scripts/test's second pass has PostgreSQL (and fails before it
    // starts when CONFAB_REQUIRE_SERVICES=1 and PostgreSQL does not answer).
    let Some(pg) = postgres_server() else {
        eprintln!(
            "{test}: needs PostgreSQL (CONFAB_TEST_DATABASE_URL); run by scripts/test's second pass"
        );
        return None;
    };
    Some((pg, OwnNats::start()?, OwnNats::start()?))
}

/// A join check period no test waits for: the lost joins of most tests here are found after
/// a lag, or not at all.
const NO_JOIN_CHECK: u64 = 3_600_000;

/// The URL of a nats-server on this host.
fn nats_at(port: u16) -> String {
    format!("nats://127.0.0.1:{port}")
}

/// A node on `db` whose bus is the NATS at `port`, with a head check every `check_ms` and no
/// join check within a test.
async fn node(db: &PgDatabase, port: u16, prefix: &str, check_ms: u64) -> Server {
    node_on(db, &nats_at(port), prefix, check_ms, NO_JOIN_CHECK).await
}

/// Three nodes on one database and an app with Alice, Bob and Carol (made through A).
struct Trio {
    a: Server,
    b: Server,
    c: Server,
    alice: String,
    bob: String,
    carol: String,
}

/// Node A on the NATS at `a_nats`, B and C on the one at `bc_nats` (so A's publications never
/// reach them when the two differ), head checks every 3 s, join checks every `join_ms`.
async fn trio(db: &PgDatabase, a_nats: &str, bc_nats: &str, app: &str, join_ms: u64) -> Trio {
    let prefix = format!("loss{}", unique_token());
    let a = node_on(db, a_nats, &prefix, 3_000, join_ms).await;
    let b = node_on(db, bc_nats, &prefix, 3_000, join_ms).await;
    let c = node_on(db, bc_nats, &prefix, 3_000, join_ms).await;
    let app = a.app(app).await;
    let alice = a.user(&app, "alice").await;
    let bob = a.user(&app, "bob").await;
    let carol = a.user(&app, "carol").await;
    Trio {
        a,
        b,
        c,
        alice,
        bob,
        carol,
    }
}

/// A node on `db` whose bus is the NATS at `nats`, with a head check every `check_ms` and a
/// join check every `join_ms`.
async fn node_on(db: &PgDatabase, nats: &str, prefix: &str, check_ms: u64, join_ms: u64) -> Server {
    let (url, nats, prefix) = (db.url(), nats.to_owned(), prefix.to_owned());
    Server::start_with(move |c| {
        c.database = url;
        c.nats = nats;
        c.nats_prefix = prefix;
        c.ws_head_check_ms = check_ms;
        c.ws_join_check_ms = join_ms;
        c.admin_key = "ck_admin_loss_test_key_0123456789".into();
    })
    .await
}

/// Node A alone on one NATS, nodes B and C on the other: Bob on B follows a room where Alice
/// sends through A (never heard by B) and Carol through C. He gets every change in order,
/// the last one included although it is Alice's and nothing follows it.
#[tokio::test]
async fn loss_changes_a_node_never_publishes_to_others_still_arrive_in_order() {
    tokio::time::timeout(WHOLE, unheard_sender())
        .await
        .expect("within the bound");
}

async fn unheard_sender() {
    let Some((pg, x, y)) = services("loss_changes_a_node_never_publishes...") else {
        return;
    };
    let db = PgDatabase::create(&pg);
    let Trio {
        a,
        b,
        c,
        alice,
        bob,
        carol,
    } = trio(
        &db,
        &nats_at(x.port),
        &nats_at(y.port),
        "loss",
        NO_JOIN_CHECK,
    )
    .await;
    let room = a.group(&alice, "private", &["bob", "carol"]).await;
    let (mut bc, ready) = login(&b, &bob, None).await;
    let start = room_pos(&ready, room);
    for i in 0..10 {
        a.send(&alice, room, &format!("alice {i}")).await;
        c.send(&carol, room, &format!("carol {i}")).await;
    }
    // Two in a row from A, then silence: only the store can tell B about them.
    a.send(&alice, room, "alice again").await;
    a.send(&alice, room, "alice last").await;
    let store = store_changes(&b, &bob, room, start).await;
    assert_eq!(store.len(), 22);
    let got = bc.changes(room, 22).await;
    assert_same(&got, &store);
    assert_eq!(got[21]["change"]["item"]["text"], "alice last");
}

/// Bob, on B, is kicked through A: the kick's bus message never reaches B. He still learns
/// of the kick (the head check finds it) after everything before it, and gets nothing of the
/// room afterwards, although Carol keeps sending there through C.
#[tokio::test]
async fn loss_a_kick_whose_bus_message_is_lost_still_ends_delivery_in_order() {
    tokio::time::timeout(WHOLE, unheard_kick())
        .await
        .expect("within the bound");
}

async fn unheard_kick() {
    let Some((pg, x, y)) = services("loss_a_kick_whose_bus_message...") else {
        return;
    };
    let db = PgDatabase::create(&pg);
    let Trio {
        a,
        b,
        c,
        alice,
        bob,
        carol,
    } = trio(
        &db,
        &nats_at(x.port),
        &nats_at(y.port),
        "kick",
        NO_JOIN_CHECK,
    )
    .await;
    let room = a.group(&alice, "private", &["bob", "carol"]).await;
    let other = a.group(&carol, "private", &["bob"]).await;
    let (mut bc, ready) = login(&b, &bob, None).await;
    let start = room_pos(&ready, room);
    c.send(&carol, room, "carol before").await;
    a.send(&alice, room, "alice before").await;
    let (st, body) = a
        .post(
            &format!("/v1/rooms/{room}/members/bob/kick"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let store = store_changes(&a, &alice, room, start).await;
    assert_eq!(store.len(), 3);
    let got = bc.changes(room, 3).await;
    assert_same(&got, &store);
    assert_eq!(got[2]["change"]["data"]["action"], "kicked");
    // B hears these; none of the room's may reach Bob before the marker.
    for i in 0..5 {
        c.send(&carol, room, &format!("after the kick {i}")).await;
    }
    c.send(&carol, other, "marker").await;
    let f = bc.next_of("change").await;
    assert_eq!(f["room"], other, "nothing of the room after the kick: {f}");
    assert_eq!(f["change"]["item"]["text"], "marker");
}

/// Bob, on B, leaves a public room and joins it again through A (on another NATS): B reads
/// both from the store once Carol's next change through C shows the gap, and routes them
/// back to back, before Bob's session has seen the leave. The session's report of that leave
/// comes after the rejoining and must not undo it: Bob still gets the room's next change
/// (before a marker sent after it in another room).
#[tokio::test]
async fn loss_a_leave_and_rejoin_read_together_keep_the_rejoiner_subscribed() {
    tokio::time::timeout(WHOLE, unheard_leave_and_rejoin())
        .await
        .expect("within the bound");
}

async fn unheard_leave_and_rejoin() {
    let Some((pg, x, y)) = services("loss_a_leave_and_rejoin_read_together...") else {
        return;
    };
    let db = PgDatabase::create(&pg);
    let Trio {
        a,
        b,
        c,
        alice,
        bob,
        carol,
    } = trio(
        &db,
        &nats_at(x.port),
        &nats_at(y.port),
        "rejoin",
        NO_JOIN_CHECK,
    )
    .await;
    let room = a.group(&alice, "public", &["bob", "carol"]).await;
    let other = a.group(&carol, "private", &["bob"]).await;
    let (mut bc, ready) = login(&b, &bob, None).await;
    let start = room_pos(&ready, room);
    for step in ["leave", "join"] {
        let (st, body) = a
            .post(&format!("/v1/rooms/{room}/{step}"), &bob, json!({}))
            .await;
        assert!(st.is_success(), "{step}: {body}");
    }
    c.send(&carol, room, "after the rejoining").await;
    let store = store_changes(&a, &alice, room, start).await;
    assert_eq!(store.len(), 3);
    let got = bc.changes(room, 3).await;
    assert_same(&got, &store);
    assert_eq!(got[0]["change"]["data"]["action"], "left", "{}", got[0]);
    // Bob's session has dealt with the leave (it delivered what follows it).
    c.send(&carol, room, "still subscribed").await;
    c.send(&carol, other, "marker").await;
    let f = bc.next_of("change").await;
    assert_eq!(f["room"], room, "the room's change before the marker: {f}");
    assert_eq!(f["change"]["item"]["text"], "still subscribed");
}

/// Bob, alone on node B, is added to a new room through A (on another NATS): the join's bus
/// message never reaches B, and B follows nobody else of that room, so no later change of it
/// reveals the loss. Once B's bus lags (its NATS restarts), B reads the joined rooms of its
/// users: Bob, never disconnected, gets his join and everything after it, in order, then the
/// room's live changes, with nothing twice.
#[tokio::test]
async fn loss_a_join_lost_on_the_bus_subscribes_the_joiner_after_a_lag() {
    tokio::time::timeout(WHOLE, unheard_join())
        .await
        .expect("within the bound");
}

async fn unheard_join() {
    let Some((pg, x, mut y)) = services("loss_a_join_lost_on_the_bus...") else {
        return;
    };
    let db = PgDatabase::create(&pg);
    // The head check covers only rooms the node follows: it cannot bring this one in (it
    // only catches up the last change should B listen to the room a moment too late).
    let Trio {
        a,
        b,
        c,
        alice,
        bob,
        carol,
    } = trio(
        &db,
        &nats_at(x.port),
        &nats_at(y.port),
        "join",
        NO_JOIN_CHECK,
    )
    .await;
    let (mut bc, ready) = login(&b, &bob, None).await;
    assert_eq!(ready["rooms"].as_array().map(Vec::len), Some(0), "{ready}");
    let room = a.group(&alice, "private", &["bob", "carol"]).await;
    a.send(&alice, room, "before the lag").await;
    let all = store_changes(&a, &alice, room, 0).await;
    let join = all
        .iter()
        .position(|c| c["type"] == "membership" && c["data"]["user"] == "bob")
        .expect("Bob's join");
    let expected = &all[join..];

    y.stop();
    let restarted = std::time::Instant::now();
    y.restart();
    let got = bc.changes(room, expected.len()).await;
    eprintln!(
        "the join reached Bob {:?} after his node's NATS was started again",
        restarted.elapsed()
    );
    assert_same(&got, expected);
    // Live again, through B's NATS now that B follows the room: the next change, no other.
    let last = pos(got.last().expect("changes"));
    c.send(&carol, room, "after the lag").await;
    let f = bc.next_of("change").await;
    assert_eq!(f["change"]["item"]["text"], "after the lag", "{f}");
    assert_eq!(pos(&f), last + 1);
}

/// As above, but Bob opens a second connection on B after the lost join: it follows the room
/// from its start (so B's position for the room is already past the join). After the lag the
/// first connection, which missed the join, is told to resync (4009) rather than left without
/// the room; the second stays open and keeps receiving.
#[tokio::test]
async fn loss_a_connection_that_missed_a_join_the_node_routed_resyncs_after_a_lag() {
    tokio::time::timeout(WHOLE, missed_join_of_one_connection())
        .await
        .expect("within the bound");
}

async fn missed_join_of_one_connection() {
    let Some((pg, x, mut y)) = services("loss_a_connection_that_missed...") else {
        return;
    };
    let db = PgDatabase::create(&pg);
    let prefix = format!("loss{}", unique_token());
    let a = node(&db, x.port, &prefix, 3_000).await;
    let b = node(&db, y.port, &prefix, 3_000).await;
    let app = a.app("join2").await;
    let alice = a.user(&app, "alice").await;
    let bob = a.user(&app, "bob").await;
    let (mut first, _) = login(&b, &bob, None).await;
    let room = a.group(&alice, "private", &["bob"]).await;
    let (mut second, ready) = login(&b, &bob, None).await;
    let start = room_pos(&ready, room);
    y.stop();
    y.restart();
    loop {
        match first.next_or_end().await {
            Ok(f) => assert_ne!(f["type"], "change", "nothing of the room: {f}"),
            Err(e) => {
                assert!(matches!(e, Ended::Closed(Some(4009))), "{e:?}");
                break;
            }
        }
    }
    // Through A, unheard by B: the head check brings it to the second connection.
    a.send(&alice, room, "after the lag").await;
    let f = second.next_of("change").await;
    assert_eq!(f["change"]["item"]["text"], "after the lag", "{f}");
    assert_eq!(pos(&f), start + 1);
}

/// Bob, alone on node B, is added to a new room through node A, whose NATS the other nodes do
/// not hear: the join's bus message is lost, and nothing on B ever lags (a publisher cut off,
/// not a receiver). B follows nobody else of the room, so only B's join check can find the
/// join, in the app's log: Bob, never disconnected, gets his join and everything after it, then
/// the room's next messages, through C (live, on B's NATS) and through A (unheard by B: the
/// head check of the room B now follows), each once and in order.
#[tokio::test]
async fn loss_a_join_lost_with_no_lag_reaches_the_joiner_through_the_join_check() {
    tokio::time::timeout(WHOLE, silent_join())
        .await
        .expect("within the bound");
}

async fn silent_join() {
    // Cluster tests skip in the SQLite pass (even with CONFAB_REQUIRE_SERVICES=1).
    let Some((pg, shared)) = cluster_services("loss_a_join_lost_with_no_lag...") else {
        return;
    };
    let Some(x) = OwnNats::start() else {
        return;
    };
    let db = PgDatabase::create(&pg);
    let Trio {
        a,
        b,
        c,
        alice,
        bob,
        carol,
    } = trio(&db, &nats_at(x.port), &shared, "silent", 500).await;
    let (mut bc, ready) = login(&b, &bob, None).await;
    assert_eq!(ready["rooms"].as_array().map(Vec::len), Some(0), "{ready}");
    let room = a.group(&alice, "private", &["bob", "carol"]).await;
    let committed = std::time::Instant::now();
    a.send(&alice, room, "unheard by B").await;
    let all = store_changes(&a, &alice, room, 0).await;
    let join = all
        .iter()
        .position(|c| c["type"] == "membership" && c["data"]["user"] == "bob")
        .expect("Bob's join");
    let expected = &all[join..];
    let got = bc.changes(room, expected.len()).await;
    eprintln!(
        "a join lost with no lag reached Bob {:?} after its commit (join check every 500 ms)",
        committed.elapsed()
    );
    assert_same(&got, expected);
    let mut last = pos(got.last().expect("changes"));
    for (node, token, text) in [(&c, &carol, "through C"), (&a, &alice, "through A")] {
        node.send(token, room, text).await;
        let f = bc.next_of("change").await;
        assert_eq!(f["change"]["item"]["text"], text, "{f}");
        last += 1;
        assert_eq!(pos(&f), last);
    }
}

/// Bob joined a public room and left it before connecting to node B; he joins it again
/// through node A, cut off from B's NATS. B's join check brings him the room from his new
/// joining on: nothing of his first stay (his old join would subscribe him again were the
/// room read from its start), then his join and the room's next change.
#[tokio::test]
async fn loss_a_lost_rejoin_is_delivered_from_the_rejoining_only() {
    tokio::time::timeout(WHOLE, silent_rejoin())
        .await
        .expect("within the bound");
}

async fn silent_rejoin() {
    let Some((pg, shared)) = cluster_services("loss_a_lost_rejoin...") else {
        return;
    };
    let Some(x) = OwnNats::start() else {
        return;
    };
    let db = PgDatabase::create(&pg);
    let prefix = format!("loss{}", unique_token());
    let cut_off = nats_at(x.port);
    let a = node_on(&db, &cut_off, &prefix, 3_000, 500).await;
    let b = node_on(&db, &shared, &prefix, 3_000, 500).await;
    let app = a.app("rejoin").await;
    let alice = a.user(&app, "alice").await;
    let bob = a.user(&app, "bob").await;
    let room = a.group(&alice, "public", &[]).await;
    for step in ["join", "leave"] {
        let (st, body) = a
            .post(&format!("/v1/rooms/{room}/{step}"), &bob, json!({}))
            .await;
        assert_eq!(st, StatusCode::OK, "{step}: {body}");
    }
    a.send(&alice, room, "while Bob is away").await;
    let (mut bc, ready) = login(&b, &bob, None).await;
    assert_eq!(ready["rooms"].as_array().map(Vec::len), Some(0), "{ready}");
    let before = store_changes(&a, &alice, room, 0).await.len() as i64;
    let (st, body) = a
        .post(&format!("/v1/rooms/{room}/join"), &bob, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    a.send(&alice, room, "welcome back").await;
    let expected = store_changes(&a, &alice, room, before).await;
    assert_eq!(expected[0]["data"]["user"], "bob", "{expected:?}");
    let got = bc.changes(room, expected.len()).await;
    assert_same(&got, &expected);
}

/// A's changes, taken from A's NATS by the test and published on B's out of order and each
/// twice, reach Carol on B once each and in order. Among them Bob joins, and the change after
/// his join comes before it: he is still subscribed (in position order), so he gets his join
/// and everything after it. What B publishes itself comes next for both: no duplicate waited.
#[tokio::test]
async fn loss_reordered_and_doubled_bus_messages_are_delivered_once_in_order() {
    tokio::time::timeout(WHOLE, reordered())
        .await
        .expect("within the bound");
}

async fn reordered() {
    let Some((pg, x, y)) = services("loss_reordered_and_doubled...") else {
        return;
    };
    let db = PgDatabase::create(&pg);
    let prefix = format!("loss{}", unique_token());
    // No head check within the test: order must come from the positions alone.
    let a = node(&db, x.port, &prefix, 3_600_000).await;
    let b = node(&db, y.port, &prefix, 3_600_000).await;
    let app = a.app("reorder").await;
    let alice = a.user(&app, "alice").await;
    let bob = a.user(&app, "bob").await;
    let carol = a.user(&app, "carol").await;
    let room = a.group(&alice, "public", &["carol"]).await;
    let (mut cc, ready) = login(&b, &carol, None).await;
    let start = room_pos(&ready, room);
    let (mut bc, _) = login(&b, &bob, None).await;

    let bus = |port: u16| {
        let mut config = confab_bus_nats::NatsConfig::new(format!("nats://127.0.0.1:{port}"));
        config.prefix = prefix.clone();
        confab_bus_nats::NatsBus::connect(config)
    };
    let tap = bus(x.port)
        .await
        .expect("the test's NATS client on A's NATS");
    let inject = bus(y.port)
        .await
        .expect("the test's NATS client on B's NATS");
    let mut rx = tap.subscribe();
    // The database is new, so its first app is app 1.
    rx.listen(Topic::Room(AppId(1), RoomNumber(room)));
    // The tap's subscription takes effect shortly after: probe until it hears A.
    let mut heard = false;
    for _ in 0..100 {
        a.send(&alice, room, "probe").await;
        if let Ok(Ok(BusMessage::Change(_))) =
            tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
        {
            heard = true;
            break;
        }
    }
    assert!(heard, "the tap hears A");
    for i in 0..6 {
        a.send(&alice, room, &format!("m{i}")).await;
    }
    let (st, body) = a
        .post(&format!("/v1/rooms/{room}/join"), &bob, json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    for i in 6..12 {
        a.send(&alice, room, &format!("m{i}")).await;
    }
    // The 13 changes after the probes: six messages, the join, six messages.
    let mut taken: Vec<BusMessage> = Vec::new();
    while taken.len() < 13 {
        let m = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the tap hears A")
            .expect("a message");
        let BusMessage::Change(ch) = &m else {
            continue;
        };
        let probe = ch.item.as_ref().and_then(|i| i.text.as_deref()) == Some("probe");
        if !probe {
            taken.push(m);
        }
    }
    let join = taken
        .iter()
        .position(|m| matches!(m, BusMessage::Change(c) if c.change.type_name() == "membership"))
        .expect("the join");
    assert_eq!(join, 6);
    // Pairs swapped (1 0 3 2 5 4 7 6 …: m6 before the join), then each again, newest first.
    let n = taken.len();
    let mut order: Vec<usize> = (0..n).map(|i| if i ^ 1 < n { i ^ 1 } else { i }).collect();
    order.extend((0..n).rev());
    for i in order {
        inject.publish(taken[i].clone());
    }
    let store = store_changes(&b, &carol, room, start).await;
    let got = cc.changes(room, store.len()).await;
    assert_same(&got, &store);
    let joined = got.len() - 7;
    assert_eq!(got[joined]["change"]["data"]["action"], "joined");
    let got = bc.changes(room, 7).await;
    assert_same(&got, &store[joined..]);
    // A change B publishes itself comes next for both: no duplicate was waiting in between.
    let last = pos(got.last().expect("changes"));
    b.send(&alice, room, "from B").await;
    for client in [&mut cc, &mut bc] {
        let f = client.next_of("change").await;
        assert_eq!(f["change"]["item"]["text"], "from B", "{f}");
        assert_eq!(pos(&f), last + 1);
    }
}
