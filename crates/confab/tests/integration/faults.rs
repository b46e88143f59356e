//! Faults and operator mistakes: cancelled reads, a full disk under the database and the log,
//! a second server or an operator command on a data directory in use, file modes, a damaged
//! search index, an emptied database.

use crate::common::{Server, assert_error};
use crate::process::{client_of, confab, spawn_serve};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// History requests whose clients reset the connection while the read runs: the reader
/// connections all come back, and reads keep answering.
#[tokio::test]
async fn reads_cancelled_by_their_clients_keep_the_reader_pool() {
    let s = Server::start_with(|c| c.readers = 2).await;
    let app = s.app("pool").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    let text = "x".repeat(4000);
    for _ in 0..300 {
        s.send(&alice, room, &text).await;
    }
    let addr = s.base.trim_start_matches("http://").to_owned();
    let request = format!(
        "GET /v1/rooms/{room}/messages?limit=200 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\n\r\n"
    );
    for _ in 0..10 {
        let mut resets = Vec::new();
        for _ in 0..20 {
            let addr = addr.clone();
            let request = request.clone();
            resets.push(tokio::spawn(async move {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                // Closing with a zero linger sends RST: the server sees the client vanish.
                socket.set_zero_linger().expect("linger");
                let mut stream = socket
                    .connect(addr.parse().expect("addr"))
                    .await
                    .expect("connect");
                stream.write_all(request.as_bytes()).await.expect("write");
                tokio::task::yield_now().await;
                drop(stream);
            }));
        }
        for r in resets {
            r.await.expect("client task");
        }
    }
    // Every read still answers, as many at once as the pool holds and more.
    let mut reads = Vec::new();
    for _ in 0..8 {
        let client = s.client.clone();
        let url = format!("{}/v1/rooms/{room}/messages?limit=5", s.base);
        let token = alice.clone();
        reads.push(tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    for r in reads {
        let status = tokio::time::timeout(Duration::from_secs(30), r)
            .await
            .expect("a read answers in time")
            .expect("task")
            .expect("request");
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_data_directory_in_use_is_refused_to_servers_and_operator_commands() {
    if crate::common::on_postgres("a_data_directory_in_use_is_refused...") {
        return;
    }
    let s = Server::start().await;
    let app = s.app("locked").await;
    s.user(&app, "alice").await;
    // A second server in this process.
    let Err(e) = confab::start(&s.config).await else {
        panic!("a second server started on a data directory in use")
    };
    let pid = std::process::id().to_string();
    assert!(
        e.to_string().contains("in use") && e.to_string().contains(&pid),
        "{e}"
    );
    // Operator commands in another process: refused, naming the server's process.
    let d = s.config.data_dir.to_str().expect("utf-8 path").to_owned();
    for args in [
        vec!["admin", "tokens", "mint", app.token.as_str(), "alice"],
        vec!["admin", "apps", "create", "another"],
        vec!["rebuild"],
        vec!["migrate"],
        vec!["serve", "--listen", "127.0.0.1:0"],
    ] {
        let out = confab()
            .args(&args)
            .args(["--data-dir", &d])
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran beside the server");
        assert!(
            err.contains("in use") && err.contains(&pid),
            "{args:?}: {err}"
        );
    }
    // The server was not disturbed: sends still work.
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    s.send(&alice, room, "still here").await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_its_files_are_private() {
    if crate::common::on_postgres("the_data_directory_and_its_files_are_private") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("dir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // A database left world-readable by an earlier version is made private too.
    let out = confab()
        .args(["migrate", "--data-dir"])
        .arg(&data)
        .output()
        .expect("migrate");
    assert!(out.status.success());
    std::fs::set_permissions(
        data.join("confab.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let mut s = Server::start_with(|c| c.data_dir = data.clone()).await;
    let app = s.app("modes").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    s.send(&alice, room, "hello").await;
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "data directory");
    let mut files = 0;
    for entry in std::fs::read_dir(&data).expect("list") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    assert!(files >= 5, "database, journals, index, key, lock");
    s.stop().await;
}

#[tokio::test]
async fn a_damaged_search_index_is_rebuilt_from_the_log() {
    if crate::common::on_postgres("a_damaged_search_index_is_rebuilt_from_the_log") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_path_buf();
    let mut s = Server::start_with(|c| c.data_dir = data.clone()).await;
    let app = s.app("index").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    for i in 0..20 {
        s.send(&alice, room, &format!("searchable words {i}")).await;
    }
    s.store().settle().await.expect("indexed");
    s.stop().await;
    let index = data.join("confab.db-search");
    std::fs::write(&index, vec![0x5au8; 64 * 1024]).expect("damage the index");
    let s = Server::start_with(|c| c.data_dir = data.clone()).await;
    let (status, hits) = s
        .get(&format!("/v1/rooms/{room}/search?q=words&limit=50"), &alice)
        .await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    assert_eq!(hits["hits"].as_array().map(Vec::len), Some(20), "{hits}");
    s.store().settle().await.expect("indexed again");
    let head = std::fs::read(&index).expect("index file");
    assert!(
        head.starts_with(b"SQLite format 3"),
        "the index was made again"
    );
}

#[tokio::test]
async fn an_emptied_database_is_reported_loudly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let log = dir.path().join("first.log");
    {
        let spawned = spawn_serve(&data, &log, "info", &[]);
        let s = client_of(&spawned, &data);
        s.app("before").await;
    }
    // The database file is truncated to nothing (a bad restore, a full disk during a copy).
    std::fs::write(data.join("confab.db"), b"").expect("truncate");
    for journal in ["confab.db-wal", "confab.db-shm"] {
        let _ = std::fs::remove_file(data.join(journal));
    }
    let log = dir.path().join("second.log");
    let _spawned = spawn_serve(&data, &log, "info", &[]);
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("EMPTY") && text.contains("confab.db") && text.contains("admin.key"),
        "{text}"
    );
}

/// Bodies that are not JSON objects, aliases made of dots, and seqs past 32 bits.
#[tokio::test]
async fn malformed_values_are_refused_and_change_nothing() {
    let s = Server::start().await;
    let app = s.app("values").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    let first = s.send(&alice, room, "number one").await;
    let seq = first["seq"].as_i64().expect("seq");
    // serde reads a struct from an array of its fields; the API does not.
    let got = s
        .call(
            Method::POST,
            &format!("/v1/rooms/{room}/messages"),
            Some(&alice),
            Some(json!(["from an array"])),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_json");
    let got = s
        .call(
            Method::PUT,
            "/v1/users/bob",
            Some(&app.secret),
            Some(json!([])),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_json");
    for alias in [".", "..", "..."] {
        let got = s
            .post(
                "/v1/rooms",
                &alice,
                json!({"kind": "group", "name": "dots", "alias": alias}),
            )
            .await;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input");
    }
    // U+0000 can be in no stored text (PostgreSQL cannot hold it): lookups with it find
    // nothing and a search with it is refused, never a 500.
    for path in [
        format!("/v1/rooms/{room}/search?q=a%00b"),
        "/v1/search?q=%00".to_owned(),
        "/v1/rooms/alias/a%00".to_owned(),
    ] {
        let got = s.get(&path, &alice).await;
        assert!(got.0.is_client_error(), "{path}: {} {}", got.0, got.1);
    }
    use base64::Engine;
    let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("members\na\0b");
    let got = s
        .get(&format!("/v1/rooms/{room}/members?cursor={cursor}"), &alice)
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "invalid_cursor");
    let got = s
        .call(Method::GET, "/api/v1/apps/ab%00cdefgh", None, None)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "app_not_found");
    let got = s
        .post(
            &format!("/v1/rooms/{room}/messages"),
            &alice,
            json!({"text": "nul \u{0} inside"}),
        )
        .await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input");
    let far = seq + (1i64 << 32);
    let path = format!("/v1/rooms/{room}/messages/{far}");
    assert_error(
        &s.get(&path, &alice).await,
        StatusCode::NOT_FOUND,
        "message_not_found",
    );
    let got = s.patch(&path, &alice, json!({"text": "hijacked"})).await;
    assert_error(&got, StatusCode::NOT_FOUND, "message_not_found");
    assert_error(
        &s.delete(&path, &alice).await,
        StatusCode::NOT_FOUND,
        "message_not_found",
    );
    let got = s
        .post(
            &format!("/v1/rooms/{room}/messages"),
            &alice,
            json!({"text": "re", "reply_to": far}),
        )
        .await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    let (_, item) = s
        .get(&format!("/v1/rooms/{room}/messages/{seq}"), &alice)
        .await;
    assert_eq!(item["text"], "number one");
    assert_eq!(item["deleted"], false);
    let (_, events) = s.get("/v1/events?limit=1000", &app.secret).await;
    assert!(!events.to_string().contains(&far.to_string()), "{events}");
}

/// A deleted message's text is gone from the log integrations read and from the room's changes.
#[tokio::test]
async fn a_delete_removes_the_text_from_the_log() {
    let s = Server::start().await;
    let app = s.app("redact").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    let item = s.send(&alice, room, "my card number 4242").await;
    let seq = item["seq"].as_i64().expect("seq");
    let path = format!("/v1/rooms/{room}/messages/{seq}");
    let (status, _) = s
        .patch(&path, &alice, json!({"text": "card 4242 again"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    s.send(&alice, room, "harmless").await;
    let (status, _) = s.delete(&path, &alice).await;
    assert_eq!(status, StatusCode::OK);
    let (_, events) = s.get("/v1/events?limit=1000", &app.secret).await;
    let log = events.to_string();
    assert!(!log.contains("4242"), "{log}");
    assert!(
        log.contains("harmless") && log.contains("\"redacted\":true"),
        "{log}"
    );
    let (_, changes) = s
        .get(&format!("/v1/rooms/{room}/changes?since=0"), &alice)
        .await;
    assert!(!changes.to_string().contains("4242"), "{changes}");
}

/// Mounts a small tmpfs for the length of a test; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system under `dir` with one file until it refuses more.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

/// A full disk under the database and the log: writes are refused while it lasts (never
/// acknowledged and then lost), readiness says so, the server does not die, and once space is
/// freed writes work again without a restart. Every acknowledged message survives a kill -9.
#[tokio::test]
async fn a_full_disk_refuses_writes_and_the_server_recovers_when_space_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(fs) = Tmpfs::mount(&dir.path().join("small"), "24m") else {
        eprintln!(
            "SKIPPED a_full_disk_refuses_writes...: cannot mount a tmpfs here (needs root); \
             the disk-full case was not tested"
        );
        return;
    };
    let data = fs.0.join("data");
    let log = fs.0.join("server.log");
    let filler = fs.0.join("filler");
    let mut spawned = spawn_serve(&data, &log, "debug", &[]);
    let s = client_of(&spawned, &data);
    let app = s.app("full").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let item = s.send(&alice, room, &format!("before {i}")).await;
        acknowledged.push(item["seq"].as_i64().expect("seq"));
    }
    fill(&filler);
    let big = "y".repeat(7900);
    let mut refused = 0;
    for i in 0..60 {
        let resp = s
            .client
            .post(format!("{}/v1/rooms/{room}/messages", s.base))
            .bearer_auth(&alice)
            .json(&json!({"text": format!("{i} {big}")}))
            .send()
            .await
            .expect("request sent");
        let status = resp.status();
        let retry_after = resp.headers().get("retry-after").cloned();
        let body: serde_json::Value = resp.json().await.expect("JSON");
        match status {
            StatusCode::CREATED => acknowledged.push(body["seq"].as_i64().expect("seq")),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_error(&(status, body), status, "unavailable");
                assert_eq!(retry_after.expect("Retry-After"), "1");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(refused > 0, "the disk never filled");
    let (status, _) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "ready on a full disk"
    );
    assert!(
        spawned.child.try_wait().expect("status").is_none(),
        "the server died on a full disk"
    );
    std::fs::remove_file(&filler).expect("free the space");
    let (status, body) = s.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for i in 0..5 {
        let item = s.send(&alice, room, &format!("after {i}")).await;
        acknowledged.push(item["seq"].as_i64().expect("seq"));
    }
    // A crash now loses nothing that was acknowledged.
    spawned.child.kill().expect("kill -9");
    spawned.child.wait().expect("reaped");
    drop(spawned);
    let spawned = spawn_serve(&data, &fs.0.join("again.log"), "info", &[]);
    let s = client_of(&spawned, &data);
    let (status, page) = s
        .get(&format!("/v1/rooms/{room}/messages?limit=200"), &alice)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let stored: Vec<i64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["seq"].as_i64().expect("seq"))
        .collect();
    for seq in &acknowledged {
        assert!(stored.contains(seq), "acknowledged message {seq} was lost");
    }
    let lines = BufReader::new(std::fs::File::open(&log).expect("log"))
        .lines()
        .count();
    assert!(lines > 0);
}
