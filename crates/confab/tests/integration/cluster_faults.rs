//! A cluster under the faults it will meet, with real nodes on one PostgreSQL database: NATS
//! stopped for 10 s while messages flow, and a node killed with `kill -9` under load, with
//! clients that reconnect, resume and retry as real ones do (`cluster_clients`). Run in the
//! second pass of `scripts/test`; the first pass says it skips them.

use crate::bus::OwnNats;
use crate::cluster_clients::{Feed, sender, subscribe, until_acked};
use crate::common::{PgDatabase, Server, postgres_server, unique_token};
use crate::nodes::timeline;
use crate::process::{Spawned, spawn_serve};
use crate::ws::{cluster, cluster_services, store_changes};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A subscriber's token, what it holds, and its task.
type Subscriber = (String, Arc<Mutex<Feed>>, tokio::task::JoinHandle<()>);

/// Every subscriber holds exactly the room's changes as the store has them for its user: in
/// order, no gap, no duplicate, no reset; and every acknowledged message with its text.
async fn assert_complete(
    node: &Server,
    subscribers: &[(String, Arc<Mutex<Feed>>)],
    room: i64,
    acked: &BTreeMap<i64, String>,
) {
    for (token, feed) in subscribers {
        let store = store_changes(node, token, room, 0).await;
        let feed = feed.lock().expect("lock");
        let got: Vec<i64> = feed
            .frames
            .iter()
            .map(|f| f["pos"].as_i64().unwrap_or(0))
            .collect();
        let want: Vec<i64> = store
            .iter()
            .map(|c| c["pos"].as_i64().unwrap_or(0))
            .collect();
        assert_eq!(
            got, want,
            "positions, in order, each once (ends: {:?})",
            feed.ends
        );
        assert!(feed.resets.is_empty(), "no reset: {:?}", feed.resets);
        for (f, c) in feed.frames.iter().zip(&store) {
            assert_eq!(&f["change"], c, "the frame carries what /changes returns");
        }
        let items: HashMap<i64, &Value> = feed
            .frames
            .iter()
            .filter_map(|f| Some((f["change"]["item"]["seq"].as_i64()?, &f["change"]["item"])))
            .collect();
        for (seq, text) in acked {
            assert_eq!(
                items.get(seq).map(|i| &i["text"]),
                Some(&json!(text)),
                "seq {seq}"
            );
        }
    }
}

/// The room's history is gapless (seqs 1..n) and holds every acknowledged message once, with
/// its text; returns the acknowledgements as seq → text.
async fn in_history(
    node: &Server,
    token: &str,
    room: i64,
    acked: &Mutex<Vec<(i64, String, Instant)>>,
) -> BTreeMap<i64, String> {
    let items = timeline(node, token, room).await;
    let seqs: Vec<i64> = items.keys().copied().collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "the seqs are 1..n"
    );
    let acked: BTreeMap<i64, String> = acked
        .lock()
        .expect("lock")
        .iter()
        .map(|(s, t, _)| (*s, t.clone()))
        .collect();
    for (seq, text) in &acked {
        assert_eq!(
            items.get(seq),
            Some(text),
            "acknowledged message {seq} is in history"
        );
    }
    // A send retried on another node with its client_id is still one message.
    let sent: std::collections::HashSet<&String> = acked.values().collect();
    let kept = items.values().filter(|t| sent.contains(t)).count();
    assert_eq!(kept, acked.len(), "each acknowledged message once");
    acked
}

/// Why each subscriber's connections ended, for the test's output.
fn ends(subscribers: &[Subscriber]) -> Vec<Vec<String>> {
    subscribers
        .iter()
        .map(|s| s.1.lock().expect("lock").ends.clone())
        .collect()
}

/// The last position of `room`, as `token` sees it.
async fn head(node: &Server, token: &str, room: i64) -> i64 {
    store_changes(node, token, room, 0)
        .await
        .last()
        .and_then(|c| c["pos"].as_i64())
        .unwrap_or(0)
}

/// NATS stopped for 10 s while two nodes take sends: every send is answered 201 all along (one
/// that bob's node had forwarded to the app's writer node when NATS went waits for NATS to
/// come back and is answered from the writer's memory of it, or run locally if it never got
/// there), and once NATS is back every subscriber, on each of three nodes, ends with every
/// change of the room, in order, with no gap and no duplicate; the seqs are 1..n.
#[tokio::test]
async fn cluster_nats_down_for_10_s_loses_nothing_and_every_subscriber_catches_up() {
    let Some(pg) = postgres_server() else {
        eprintln!("cluster_nats_down...: needs PostgreSQL (CONFAB_TEST_DATABASE_URL)");
        return;
    };
    let Some(mut nats) = OwnNats::start() else {
        return;
    };
    let (_db, nodes) = cluster(&pg, &format!("nats://127.0.0.1:{}", nats.port)).await;
    let app = nodes[0].app("outage").await;
    let names = ["alice", "bob", "carol", "dave", "erin"];
    let mut tokens = Vec::new();
    for n in names {
        tokens.push(nodes[0].user(&app, n).await);
    }
    let room = nodes[0].group(&tokens[0], "private", &names[1..]).await;
    let (until_tx, until) = watch::channel(i64::MAX);
    let mut subscribers = Vec::new();
    // Carol, dave and erin listen on the three nodes.
    for (k, token) in tokens[2..].iter().enumerate() {
        let (feed, task) = subscribe(
            vec![nodes[k].base.clone()],
            token.clone(),
            room,
            until.clone(),
        )
        .await;
        subscribers.push((token.clone(), feed, task));
    }
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::default());
    let senders = [("alice", 0), ("bob", 1)].map(|(label, k)| {
        // Every send answered 201 at the first try, on the sender's one node.
        let shape = (Duration::from_millis(20), usize::MAX, false);
        let nodes = vec![nodes[k].base.clone()];
        sender(
            nodes,
            tokens[k].clone(),
            room,
            label,
            shape,
            stop.clone(),
            Arc::clone(&acked),
        )
    });
    until_acked(&acked, 20, Duration::from_secs(30)).await;

    nats.stop();
    let down = Instant::now();
    // The outage the issue asks for: its length is the point, nothing waits on it.
    tokio::time::sleep(Duration::from_secs(10)).await;
    nats.restart();
    let up = Instant::now();
    let during = acked
        .lock()
        .expect("lock")
        .iter()
        .filter(|a| a.2 > down && a.2 < up)
        .count();
    // Live delivery over NATS again, then the senders stop.
    let n = acked.lock().expect("lock").len();
    until_acked(&acked, n + 20, Duration::from_secs(30)).await;
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.await.expect("every send was answered 201");
    }
    assert!(during >= 20, "sends went on during the outage: {during}");

    let last = head(&nodes[0], &tokens[0], room).await;
    until_tx.send(last).expect("subscribers listen");
    let caught_up = tokio::time::timeout(Duration::from_secs(30), async {
        for (_, _, task) in &mut subscribers {
            task.await.expect("subscriber");
        }
    })
    .await;
    let holding: Vec<i64> = subscribers
        .iter()
        .map(|s| s.1.lock().expect("lock").last())
        .collect();
    assert!(
        caught_up.is_ok(),
        "caught up to {last} in time: {holding:?}"
    );
    eprintln!(
        "cluster_nats_down: {} sends ({during} during the outage), every subscriber complete {} ms \
         after NATS returned; connections ended: {:?}; bob's node: {:?}",
        acked.lock().expect("lock").len(),
        up.elapsed().as_millis(),
        ends(&subscribers),
        nodes[1].routing()
    );

    let acked = in_history(&nodes[1], &tokens[0], room, &acked).await;
    let feeds: Vec<_> = subscribers.into_iter().map(|(t, f, _)| (t, f)).collect();
    assert_complete(&nodes[2], &feeds, room, &acked).await;
}

const ADMIN: &str = "ck_admin_cluster_faults_0123456789";

/// Three `confab serve` processes on one database and one NATS, WebSocket clients on each (two
/// on the victim) and a sender on each; the victim is killed with `kill -9` mid-stream. Its
/// clients resume on another node from their last positions, its sender's next request goes to
/// another node, and at the end every client holds every change exactly once in order, with
/// every acknowledged message, and the history holds every acknowledged message once.
///
/// Here the victim only forwards: the app's writes go to node b (see `killed_under_load`).
#[tokio::test]
async fn cluster_a_node_killed_under_load_loses_nothing_and_its_clients_resume_elsewhere() {
    killed_under_load(false).await;
}

/// The same, but the victim is the app's writer, the node every other node forwards the
/// app's commands to: commands it had been sent when it died are answered 503 (their fate is
/// unknown) or run where they were sent once nobody serves its subject, the senders retry
/// with their client ids, and the survivors take over the app's writes.
#[tokio::test]
async fn cluster_the_writer_node_killed_under_load_loses_nothing() {
    killed_under_load(true).await;
}

/// Three nodes, `kill -9` of node a mid-stream; node a is the app's writer (it writes the app
/// first, so it holds the app's write lease) when `victim_writes`, else node b is.
async fn killed_under_load(victim_writes: bool) {
    let Some((pg, nats)) = cluster_services("cluster_..._killed_under_load") else {
        return;
    };
    let db = PgDatabase::create(&pg);
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, prefix) = (db.url(), format!("kill{}", unique_token()));
    let env = [
        ("CONFAB_DATABASE", url.as_str()),
        ("CONFAB_NATS", nats.as_str()),
        ("CONFAB_NATS_PREFIX", prefix.as_str()),
        ("CONFAB_ADMIN_KEY", ADMIN),
        ("CONFAB_APP_REQUESTS_PER_SECOND", "0"),
    ];
    let mut nodes: Vec<Spawned> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            spawn_serve(
                &dir.path().join(n),
                &dir.path().join(format!("{n}.log")),
                "info",
                &env,
            )
        })
        .collect();
    let bases: Vec<String> = nodes.iter().map(|n| format!("http://{}", n.addr)).collect();
    // Node a is the victim; every list goes on to a node that stays.
    let from = |k: usize| -> Vec<String> { (0..3).map(|i| bases[(k + i) % 3].clone()).collect() };
    let b = Server::external(bases[1].clone(), ADMIN.into(), dir.path());
    // The first node to write the app takes its write lease: the one set up through.
    let first = Server::external(
        bases[if victim_writes { 0 } else { 1 }].clone(),
        ADMIN.into(),
        dir.path(),
    );
    let app = first.app("crash").await;
    let names = ["s0", "s1", "s2", "r0", "r1", "r2", "r3"];
    let mut tokens = Vec::new();
    for n in names {
        tokens.push(first.user(&app, n).await);
    }
    let room = first.group(&tokens[0], "private", &names[1..]).await;
    let (until_tx, until) = watch::channel(i64::MAX);
    let mut subscribers = Vec::new();
    for (token, k) in tokens[3..].iter().zip([0, 0, 1, 2]) {
        let (feed, task) = subscribe(from(k), token.clone(), room, until.clone()).await;
        subscribers.push((token.clone(), feed, task));
    }
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::default());
    let senders: Vec<_> = ["s0", "s1", "s2"]
        .into_iter()
        .enumerate()
        .map(|(k, label)| {
            let shape = (Duration::ZERO, 150, true);
            sender(
                from(k),
                tokens[k].clone(),
                room,
                label,
                shape,
                stop.clone(),
                Arc::clone(&acked),
            )
        })
        .collect();
    // Mid-stream: a third of the sends are acknowledged, the victim's among them.
    until_acked(&acked, 150, Duration::from_secs(60)).await;
    nodes[0].child.kill().expect("kill -9");
    nodes[0].child.wait().expect("reaped");
    let killed = Instant::now();
    for s in senders {
        s.await.expect("every send acknowledged by some node");
    }
    let last = head(&b, &tokens[0], room).await;
    until_tx.send(last).expect("subscribers listen");
    let caught_up = tokio::time::timeout(Duration::from_secs(30), async {
        for (_, _, task) in &mut subscribers {
            task.await.expect("subscriber");
        }
    })
    .await;
    let holding: Vec<i64> = subscribers
        .iter()
        .map(|s| s.1.lock().expect("lock").last())
        .collect();
    assert!(
        caught_up.is_ok(),
        "caught up to {last} in time: {holding:?}"
    );
    // How long the victim's clients were without a node.
    let resumed: Vec<u128> = subscribers[..2]
        .iter()
        .filter_map(|s| {
            let feed = s.1.lock().expect("lock");
            let at = feed.ready_at.iter().find(|t| **t > killed)?;
            Some(at.duration_since(killed).as_millis())
        })
        .collect();
    eprintln!(
        "cluster_..._killed_under_load (victim writes: {victim_writes}): {} sends acknowledged; \
         the victim's clients ready on another node {resumed:?} ms after the kill, every client \
         complete {} ms after it; connections ended: {:?}",
        acked.lock().expect("lock").len(),
        killed.elapsed().as_millis(),
        ends(&subscribers)
    );
    // The victim's clients did move: their connection ended and the victim no longer answered.
    for (_, feed, _) in &subscribers[..2] {
        let ends = &feed.lock().expect("lock").ends;
        assert!(ends.iter().any(|e| e.starts_with("no answer")), "{ends:?}");
    }
    let moved = acked
        .lock()
        .expect("lock")
        .iter()
        .any(|a| a.1.starts_with("s0 ") && a.2 > killed);
    assert!(moved, "the victim's sender carried on through another node");
    let acked = in_history(&b, &tokens[0], room, &acked).await;
    assert_eq!(acked.len(), 450, "every send acknowledged once");
    let feeds: Vec<_> = subscribers.into_iter().map(|(t, f, _)| (t, f)).collect();
    assert_complete(&b, &feeds, room, &acked).await;
}
