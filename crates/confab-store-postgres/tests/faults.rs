//! Faults on a real PostgreSQL: a database error inside a batch, connections cut by the
//! server, a schema newer than the binary.

mod common;

use confab_core::command::{Command, Outcome};
use confab_core::command::{CreateGroup, SendMessage};
use confab_core::error::StoreError;
use confab_core::ids::{AppId, RoomNumber, UserId};
use confab_core::model::{HistoryQuery, Visibility};
use confab_core::store::Store;
use confab_store_postgres::{Options, PgStore};
use std::sync::Arc;

fn user(s: &str) -> UserId {
    UserId(s.to_owned())
}

fn send(app: AppId, room: RoomNumber, text: &str) -> Command {
    Command::Send(SendMessage {
        app,
        actor: Some(user("u0")),
        room,
        text: text.into(),
        reply_to: None,
        client_id: None,
    })
}

async fn room(store: &Arc<dyn Store>) -> (AppId, RoomNumber) {
    let app = confab_core::conformance::app_with_users(store, "x", 2).await;
    let out = store
        .execute(Command::CreateGroup(CreateGroup {
            app,
            actor: Some(user("u0")),
            name: None,
            image_url: None,
            visibility: Visibility::Public,
            alias: None,
            members: vec![user("u1")],
        }))
        .await
        .expect("create group");
    let Outcome::Room { room, .. } = out else {
        panic!("expected a room, got {out:?}")
    };
    (app, room.number)
}

/// Runs SQL on the test's database from outside the store.
async fn admin(db: &common::Db, sql: &str) {
    let (url, sql) = (db.url.clone(), sql.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls)?;
        c.batch_execute(&sql)
    })
    .await
    .expect("admin task")
    .expect("admin sql");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_error_fails_only_its_own_command() {
    let (store, db) = common::fresh().await;
    let (app, room) = room(&store).await;
    // The database itself refuses one particular text: an error the rules cannot foresee.
    admin(
        &db,
        "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.text = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse_boom BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION refuse_boom();",
    )
    .await;
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let store = store.clone();
            let text = if i == 30 {
                "boom".to_owned()
            } else {
                format!("fine {i}")
            };
            tokio::spawn(async move { (text.clone(), store.execute(send(app, room, &text)).await) })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            (text, Err(StoreError::Internal(_))) if text == "boom" => {}
            (text, Ok(Outcome::Item { .. })) if text != "boom" => ok += 1,
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(ok, 59, "the innocent sends of the batch went through");
    let (items, _, _) = store
        .history(app, room, HistoryQuery::Latest, 100)
        .await
        .expect("history");
    assert!(items.iter().all(|i| i.text.as_deref() != Some("boom")));
    let seqs: Vec<i64> = items.iter().map(|i| i.seq.0).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "no gap where it failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_cut_by_the_server_are_unavailable_then_made_again() {
    let (store, db) = common::fresh().await;
    let (app, room) = room(&store).await;
    store
        .history(app, room, HistoryQuery::Latest, 10)
        .await
        .expect("a pooled reader");
    admin(
        &db,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name
        ),
    )
    .await;
    // The first use of a cut connection may fail, as unavailable (never internal, nothing
    // done); the store then connects again by itself.
    let mut sent = false;
    for _ in 0..3 {
        match store.execute(send(app, room, "after the cut")).await {
            Ok(_) => {
                sent = true;
                break;
            }
            Err(StoreError::Unavailable(_)) => {}
            Err(e) => panic!("a cut connection is not {e:?}"),
        }
    }
    assert!(sent, "the writer connected again");
    let mut read = false;
    for _ in 0..10 {
        match store.history(app, room, HistoryQuery::Latest, 10).await {
            Ok((items, _, _)) => {
                assert_eq!(
                    items
                        .iter()
                        .filter(|i| i.text.as_deref() == Some("after the cut"))
                        .count(),
                    1
                );
                read = true;
                break;
            }
            Err(StoreError::Unavailable(_)) => {}
            Err(e) => panic!("a cut connection is not {e:?}"),
        }
    }
    assert!(read, "the readers connected again");
    store.ping().await.expect("ready again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_the_binary_is_refused() {
    let (store, db) = common::fresh().await;
    drop(store);
    admin(&db, "INSERT INTO confab_schema (version) VALUES (999)").await;
    match PgStore::open(&db.url, Options::default()).await {
        Err(StoreError::Internal(m)) => assert!(m.contains("newer than this binary"), "{m}"),
        Err(e) => panic!("wrong refusal: {e:?}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_unavailable() {
    // Nothing listens on port 1.
    match PgStore::open("postgres://postgres@127.0.0.1:1/x", Options::default()).await {
        Err(StoreError::Unavailable(_)) => {}
        Err(e) => panic!("wrong kind: {e:?}"),
        Ok(_) => panic!("opened a store on nothing"),
    }
}
