//! Presence with real clients: across nodes (PostgreSQL and NATS, in-process nodes and a
//! `confab serve` child killed with `kill -9`), a user on two nodes, a node started late,
//! presence following joins and kicks of connected users, and a reconnect storm that must
//! cost O(N) frames, not N²/2.

use crate::common::{PgDatabase, Server};
use crate::process::spawn_serve;
use crate::ws::{Client, login};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const ADMIN: &str = "ck_admin_presence_test_0123456789";
/// Heartbeat of the test nodes: a silent node is gone after three.
const BEAT_MS: u64 = 300;
const WAIT: Duration = Duration::from_secs(30);

/// PostgreSQL and NATS, or a loud skip.
fn services(test: &str) -> Option<(String, String)> {
    // The SQLite pass skips; scripts/test's second pass has both (and fails before it starts
    // when CONFAB_REQUIRE_SERVICES=1 and one of them does not answer).
    crate::ws::cluster_services(test)
}

/// The nodes of one cluster share a database, a NATS subject prefix and an admin key.
struct Cluster {
    db: PgDatabase,
    nats: String,
    prefix: String,
}

impl Cluster {
    fn new(pg: &str, nats: &str) -> Cluster {
        Cluster {
            db: PgDatabase::create(pg),
            nats: nats.to_owned(),
            prefix: format!("presence{}", crate::common::unique_token()),
        }
    }

    async fn node(&self) -> Server {
        self.node_with_grace(100).await
    }

    async fn node_with_grace(&self, grace_ms: u64) -> Server {
        Server::start_with(|c| {
            c.database = self.db.url();
            c.nats = self.nats.clone();
            c.nats_prefix = self.prefix.clone();
            c.admin_key = ADMIN.into();
            c.ws_presence_grace_ms = grace_ms;
            c.ws_presence_heartbeat_ms = BEAT_MS;
        })
        .await
    }
}

/// The presence entries of a frame: `(user, status)`, none if it is no presence frame.
fn entries(f: &Value) -> Vec<(String, String)> {
    let one = |v: &Value| {
        (
            v["user"].as_str().unwrap_or("").to_owned(),
            v["status"].as_str().unwrap_or("").to_owned(),
        )
    };
    match f["type"].as_str() {
        Some("presence") => vec![one(f)],
        Some("presence_list") => f["users"]
            .as_array()
            .into_iter()
            .flatten()
            .map(one)
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads until `user` is reported `status`; gives every presence entry read on the way.
async fn until(c: &mut Client, user: &str, status: &str) -> Vec<(String, String)> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "{user} never became {status}");
        let f = c.next_or_end().await.expect("connection open");
        for e in entries(&f) {
            let hit = e.0 == user && e.1 == status;
            seen.push(e);
            if hit {
                return seen;
            }
        }
    }
}

/// Reads frames until one satisfies `hit`, for at most [`WAIT`] in all (the server's pings
/// do not extend it).
async fn read_until(c: &mut Client, what: &str, hit: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let f = tokio::time::timeout_at(deadline, c.next_or_end())
            .await
            .unwrap_or_else(|_| panic!("{what} within {WAIT:?}"))
            .expect("connection open");
        if hit(&f) {
            return f;
        }
    }
}

/// Reads until a presence frame of `room` reports `user` as `status`.
async fn until_in(c: &mut Client, room: i64, user: &str, status: &str) {
    let what = format!("{user} {status} in room {room}");
    let entry = (user.to_owned(), status.to_owned());
    read_until(c, &what, |f| {
        f["room"] == room && entries(f).contains(&entry)
    })
    .await;
}

/// Reads until the `presence_list` snapshot of `room`.
async fn snapshot_of(c: &mut Client, room: i64) -> Value {
    read_until(c, &format!("a snapshot of room {room}"), |f| {
        f["type"] == "presence_list" && f["room"] == room && f["snapshot"] == true
    })
    .await
}

/// Bob, connected on `bobs_node`, joins Alice's public room while Alice is connected on
/// `alices_node`: without reconnecting, Alice is told Bob is online in that room and Bob's
/// connection gets the room's snapshot with Alice in it. Alice kicks Bob: she is told he is
/// offline in that room, while he stays online in the room he shares with Carol (Dave,
/// connecting to Alice's node afterwards, finds him in its snapshot).
async fn presence_follows_a_join_and_a_kick(alices_node: &Server, bobs_node: &Server) {
    let app = alices_node.app("presence").await;
    let alice = alices_node.user(&app, "alice").await;
    let bob = alices_node.user(&app, "bob").await;
    let carol = alices_node.user(&app, "carol").await;
    let dave = alices_node.user(&app, "dave").await;
    let public = alices_node.group(&alice, "public", &[]).await;
    let other = alices_node.group(&carol, "private", &["bob", "dave"]).await;
    let (mut alices, _) = login(alices_node, &alice, None).await;
    let (mut bobs, ready) = login(bobs_node, &bob, None).await;
    assert_eq!(ready["rooms"].as_array().map(Vec::len), Some(1), "{ready}");

    let (st, body) = bobs_node
        .post(&format!("/v1/rooms/{public}/join"), &bob, json!({}))
        .await;
    assert!(st.is_success(), "{body}");
    until_in(&mut alices, public, "bob", "online").await;
    let snap = snapshot_of(&mut bobs, public).await;
    assert!(
        entries(&snap).contains(&("alice".into(), "online".into())),
        "Bob's snapshot of the room he joined shows Alice online: {snap}"
    );

    let (st, body) = alices_node
        .post(
            &format!("/v1/rooms/{public}/members/bob/kick"),
            &alice,
            json!({}),
        )
        .await;
    assert!(st.is_success(), "{body}");
    until_in(&mut alices, public, "bob", "offline").await;
    let (mut daves, _) = login(alices_node, &dave, None).await;
    let snap = snapshot_of(&mut daves, other).await;
    assert!(
        entries(&snap).contains(&("bob".into(), "online".into())),
        "Bob, kicked from one room, is still online in the other: {snap}"
    );
    drop(bobs);
}

/// One node: presence follows a join and a kick of a connected user.
#[tokio::test]
async fn presence_follows_a_join_and_a_kick_of_a_connected_user() {
    let s = Server::start_with(|c| c.ws_presence_grace_ms = 100).await;
    presence_follows_a_join_and_a_kick(&s, &s).await;
}

/// Two nodes: Bob on node A joins and is kicked from a room Alice watches on node B.
#[tokio::test]
async fn presence_follows_a_join_and_a_kick_across_nodes() {
    let Some((pg, nats)) = services("presence_follows_a_join_and_a_kick_across_nodes") else {
        return;
    };
    let cluster = Cluster::new(&pg, &nats);
    let (a, b) = (cluster.node().await, cluster.node().await);
    presence_follows_a_join_and_a_kick(&b, &a).await;
}

/// Bob (on node A) and Alice, watching on node B, share a room: B tells Alice that Bob is
/// online, and offline once his connection closed and the grace passed.
#[tokio::test]
async fn presence_crosses_nodes_online_then_offline_after_the_grace() {
    let Some((pg, nats)) = services("presence_crosses_nodes_online_then_offline_after_the_grace")
    else {
        return;
    };
    let cluster = Cluster::new(&pg, &nats);
    let (a, b) = (cluster.node().await, cluster.node().await);
    let app = a.app("presence").await;
    let alice = a.user(&app, "alice").await;
    let bob = a.user(&app, "bob").await;
    a.group(&alice, "private", &["bob"]).await;
    let (mut watcher, _) = login(&b, &alice, None).await;
    let (x, _) = login(&a, &bob, None).await;
    until(&mut watcher, "bob", "online").await;
    drop(x);
    until(&mut watcher, "bob", "offline").await;
}

/// Bob's only connection of the app on node A closes. While he is in his grace period there,
/// Alice connects to node B, which had no connection of the app and so asks the other nodes
/// who is online: A answers with Bob although it has no connection of the app left, so Alice
/// is told Bob is online, and offline once his grace on A ends. (Carol, watching on node C
/// from the start, shows that A had announced Bob before B listened to the app.)
#[tokio::test]
async fn presence_a_user_in_grace_is_told_to_a_node_that_asks() {
    let Some((pg, nats)) = services("presence_a_user_in_grace_is_told...") else {
        return;
    };
    let cluster = Cluster::new(&pg, &nats);
    let grace = Duration::from_secs(5);
    let a = cluster.node_with_grace(grace.as_millis() as u64).await;
    let (b, c) = (cluster.node().await, cluster.node().await);
    let app = a.app("presence").await;
    let alice = a.user(&app, "alice").await;
    let bob = a.user(&app, "bob").await;
    let carol = a.user(&app, "carol").await;
    a.group(&alice, "private", &["bob", "carol"]).await;
    let (mut carols, _) = login(&c, &carol, None).await;
    let (x, _) = login(&a, &bob, None).await;
    until(&mut carols, "bob", "online").await;
    // Before the close: the grace starts after it.
    let closed = Instant::now();
    x.close().await;
    let (mut watcher, _) = login(&b, &alice, None).await;
    until(&mut watcher, "bob", "online").await;
    let told = closed.elapsed();
    until(&mut watcher, "bob", "offline").await;
    assert!(
        closed.elapsed() >= grace,
        "offline only once the grace ended: {:?}",
        closed.elapsed()
    );
    eprintln!("Bob in his grace period was told to B {told:?} after his connection closed");
}

/// Bob is connected to nodes A and B. Closing the connection on A does not make him offline
/// anywhere (a marker user connecting and leaving on A later is seen offline first); closing
/// the one on B does.
#[tokio::test]
async fn presence_a_user_on_two_nodes_is_online_until_the_last_connection_closes() {
    let Some((pg, nats)) = services("presence_a_user_on_two_nodes_...") else {
        return;
    };
    let cluster = Cluster::new(&pg, &nats);
    let (a, b, c) = (
        cluster.node().await,
        cluster.node().await,
        cluster.node().await,
    );
    let app = a.app("presence").await;
    let alice = a.user(&app, "alice").await;
    let bob = a.user(&app, "bob").await;
    let mark = a.user(&app, "mark").await;
    a.group(&alice, "private", &["bob", "mark"]).await;
    let (mut watcher, _) = login(&c, &alice, None).await;
    let (on_a, _) = login(&a, &bob, None).await;
    let (on_b, _) = login(&b, &bob, None).await;
    until(&mut watcher, "bob", "online").await;
    drop(on_a);
    // Mark comes and goes on node A after Bob's connection there closed: node A publishes
    // whatever it had to say about Bob before Mark's departure, so once Mark is seen offline,
    // any "Bob offline" would have been seen too.
    let (m, _) = login(&a, &mark, None).await;
    until(&mut watcher, "mark", "online").await;
    drop(m);
    let seen = until(&mut watcher, "mark", "offline").await;
    assert!(
        !seen.contains(&("bob".into(), "offline".into())),
        "Bob was reported offline while connected to node B: {seen:?}"
    );
    drop(on_b);
    until(&mut watcher, "bob", "offline").await;
}

/// Bob's only connection is on a `confab serve` child killed with `kill -9`: it never says
/// goodbye, and the watcher on another node sees Bob offline once three heartbeats passed.
#[tokio::test]
async fn presence_users_of_a_killed_node_go_offline_within_the_bound() {
    let Some((pg, nats)) = services("presence_users_of_a_killed_node_...") else {
        return;
    };
    let cluster = Cluster::new(&pg, &nats);
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, beat) = (cluster.db.url(), BEAT_MS.to_string());
    let mut child = spawn_serve(
        &dir.path().join("a"),
        &dir.path().join("a.log"),
        "info",
        &[
            ("CONFAB_DATABASE", url.as_str()),
            ("CONFAB_NATS", cluster.nats.as_str()),
            ("CONFAB_NATS_PREFIX", cluster.prefix.as_str()),
            ("CONFAB_ADMIN_KEY", ADMIN),
            ("CONFAB_WS_PRESENCE_HEARTBEAT_MS", beat.as_str()),
        ],
    );
    let a = Server::external(format!("http://{}", child.addr), ADMIN.into(), dir.path());
    let b = cluster.node().await;
    let app = b.app("presence").await;
    let alice = b.user(&app, "alice").await;
    let bob = b.user(&app, "bob").await;
    b.group(&alice, "private", &["bob"]).await;
    let (mut watcher, _) = login(&b, &alice, None).await;
    let (_x, _) = login(&a, &bob, None).await;
    until(&mut watcher, "bob", "online").await;
    child.child.kill().expect("kill -9");
    child.child.wait().expect("reaped");
    let killed = Instant::now();
    until(&mut watcher, "bob", "offline").await;
    // The stated bound: three beats of silence, one more until the check, the notice's
    // quiet time; plus slack for a loaded machine.
    let bound = Duration::from_millis(4 * BEAT_MS + 250) + Duration::from_secs(3);
    assert!(
        killed.elapsed() <= bound,
        "offline after {:?}, bound {bound:?}",
        killed.elapsed()
    );
}

/// A node started after Bob connected elsewhere learns from the others that he is online:
/// a watcher connecting to it is told.
#[tokio::test]
async fn presence_a_node_started_late_learns_who_is_online() {
    let Some((pg, nats)) = services("presence_a_node_started_late_...") else {
        return;
    };
    let cluster = Cluster::new(&pg, &nats);
    let a = cluster.node().await;
    let app = a.app("presence").await;
    let alice = a.user(&app, "alice").await;
    let bob = a.user(&app, "bob").await;
    let room = a.group(&alice, "private", &["bob"]).await;
    let (_x, _) = login(&a, &bob, None).await;
    let late = cluster.node().await;
    let (mut watcher, _) = login(&late, &alice, None).await;
    let f = loop {
        let f = watcher.next_or_end().await.expect("connection open");
        if f["type"] == "presence_list" {
            break f;
        }
    };
    assert_eq!(f["room"], room, "{f}");
    assert_eq!(f["snapshot"], true, "{f}");
    assert!(
        entries(&f).contains(&("bob".into(), "online".into())),
        "the snapshot shows Bob online: {f}"
    );
}

/// 200 members of one room connect at once (a restart's reconnect storm) to one node: every
/// one ends up knowing every other as online, and all of them together receive at most four
/// presence frames per member (announcing each connect to everyone connected took N²/2).
#[tokio::test]
async fn presence_a_reconnect_storm_costs_frames_in_proportion_to_the_members() {
    const N: usize = 200;
    let s = Server::start_with(|c| c.ws_presence_grace_ms = 100).await;
    let app = s.app("storm").await;
    let owner = s.user(&app, "owner").await;
    let room = s.group(&owner, "public", &[]).await;
    let mut tokens = Vec::new();
    for i in 0..N {
        let t = s.user(&app, &format!("m{i}")).await;
        let (st, body) = s
            .post(&format!("/v1/rooms/{room}/join"), &t, json!({}))
            .await;
        assert!(st.is_success(), "{body}");
        tokens.push(t);
    }
    let mut tasks = Vec::new();
    for t in tokens {
        let s_base = s.base.clone();
        let admin = s.admin_key.clone();
        tasks.push(tokio::spawn(async move {
            let server = Server::external(s_base, admin, std::path::Path::new("."));
            let (mut c, ready) = login(&server, &t, None).await;
            let me = ready["user"].as_str().expect("user").to_owned();
            let mut online: HashSet<String> = HashSet::new();
            let mut frames = 0usize;
            let deadline = Instant::now() + Duration::from_secs(120);
            while online.len() < N - 1 {
                assert!(
                    Instant::now() < deadline,
                    "{me} knows {} online",
                    online.len()
                );
                let f = c.next_or_end().await.expect("connection open");
                let es = entries(&f);
                if es.is_empty() {
                    continue;
                }
                frames += 1;
                for (u, st) in es {
                    if u == me {
                        continue;
                    }
                    if st == "online" {
                        online.insert(u);
                    } else {
                        online.remove(&u);
                    }
                }
            }
            (c, frames)
        }));
    }
    let mut clients = Vec::new();
    let mut frames = 0;
    for t in tasks {
        let (c, n) = t.await.expect("every member learns every other is online");
        frames += n;
        clients.push(c);
    }
    assert!(
        frames <= 4 * N,
        "{frames} presence frames for {N} members (more than 4 per member)"
    );
}
