//! The writer finds every row it reads or writes by its key: a batch costs the same whether
//! the app has ten rooms or a million. PostgreSQL's planner, left to itself, hash-joined a
//! batch's keys against a scan of the whole rooms and members tables whenever it took them
//! for small (no statistics yet, or a few thousand rows), which cost more per message the
//! more rooms an app had.

use super::*;

/// Sequential scans of each table so far, once every other session of the database has ended
/// (a session hands its counts in as it ends, so then they are complete).
async fn seq_scans(db: &common::Db, tables: &[&str]) -> Vec<i64> {
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let conn = tokio::spawn(conn);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let others: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if others == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store's sessions did not end"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A fresh snapshot of the counters (this session may have cached an older one).
    client
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .expect("clear snapshot");
    let mut out = vec![];
    for t in tables {
        let n: i64 = client
            .query_one(
                "SELECT COALESCE(seq_scan, 0) FROM pg_stat_user_tables WHERE relname = $1",
                &[t],
            )
            .await
            .expect("pg_stat_user_tables")
            .get(0);
        out.push(n);
    }
    drop(client);
    let _ = conn.await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_over_many_rooms_finds_its_rows_by_key() {
    let db = common::database().await;
    let tables = ["rooms", "members", "items", "users"];
    let (app, rooms) =
        {
            let store = common::open(&db).await;
            let app = confab_core::conformance::app_with_users(&store, "plans", 4).await;
            let made =
                futures_util::future::join_all((0..300).map(|i| {
                    let store = store.clone();
                    async move {
                        group_of_four(&store, app, &format!("r{i}"), Visibility::Private).await
                    }
                }))
                .await;
            (app, made)
        };
    let before = seq_scans(&db, &tables).await;

    let store = common::open(&db).await;
    let mut cmds = vec![];
    for (i, room) in rooms.iter().step_by(5).enumerate() {
        let who = format!("u{}", i % 4);
        cmds.push(send(
            app,
            &who,
            *room,
            "hello",
            None,
            Some(&format!("c{i}")),
        ));
        cmds.push(mark(app, "u1", *room, 1));
    }
    let n = cmds.len();
    let answers = in_one_batch(&db, &store, app, cmds).await;
    assert_eq!(answers.len(), n);
    for a in answers.iter().step_by(2) {
        let (it, created) = item(a);
        assert!(created);
        assert_eq!(it.text.as_deref(), Some("hello"));
    }
    for a in answers.iter().skip(1).step_by(2) {
        assert!(marker(a) >= 1);
    }
    drop(store);
    let after = seq_scans(&db, &tables).await;
    assert_eq!(
        after, before,
        "sequential scans of {tables:?} during one batch over 60 rooms of 300"
    );
}
