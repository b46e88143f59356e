//! The `confab` binary itself: operator commands, configuration errors, rebuild, and a clean
//! exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn confab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_confab"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CONFAB_") {
            c.env_remove(k);
        }
    }
    c
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("confab runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn operator_commands_work_on_a_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let (ok, out, err) = run(confab().args(["migrate", "--data-dir", d]));
    assert!(ok, "{err}");
    assert!(out.contains("migrations applied: 5"), "{out}");
    let (ok, out, err) = run(confab().args(["admin", "apps", "create", "demo", "--data-dir", d]));
    assert!(ok, "{err}");
    let app: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    let token = app["token"].as_str().expect("token").to_owned();
    assert!(
        app["secret"].as_str().is_some_and(|s| s.starts_with("cs_")),
        "{out}"
    );
    // Minting for a user the app does not have is refused.
    let (ok, _, err) =
        run(confab().args(["admin", "tokens", "mint", &token, "nobody", "--data-dir", d]));
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");
    let (ok, out, err) = run(confab().args(["rebuild", "--data-dir", d]));
    assert!(ok, "{err}");
    assert!(out.contains("from 1 events"), "{out}");
}

#[test]
fn a_bad_setting_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let (ok, _, err) = run(confab()
        .args(["serve", "--data-dir", d])
        .env("CONFAB_LISTEN", "not-an-address"));
    assert!(!ok);
    assert!(
        err.contains("listen") && err.contains("CONFAB_LISTEN"),
        "{err}"
    );
    let file = dir.path().join("confab.toml");
    std::fs::write(&file, "durability = \"sometimes\"\n").expect("write config");
    let (ok, _, err) = run(confab().args(["serve", "--config", file.to_str().expect("path")]));
    assert!(!ok);
    assert!(err.contains("durability"), "{err}");
}

#[test]
fn serve_exits_cleanly_on_sigterm_and_keeps_the_admin_key_private() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_str().expect("utf-8 path");
    let mut child = confab()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", d])
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut addr = None;
    let mut printed_key = false;
    for line in lines.by_ref() {
        let line = line.expect("line");
        printed_key |= line.contains("Admin key");
        if let Some(rest) = line.split("addr=").nth(1) {
            addr = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    let addr = addr.expect("the server logs its address");
    assert!(printed_key, "the new admin key is shown once");
    let mut stream = std::net::TcpStream::connect(&addr).expect("connects");
    use std::io::{Read, Write};
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut resp = String::new();
    stream.read_to_string(&mut resp).expect("read");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("admin.key"))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = child.wait().expect("exits");
        assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    }
    #[cfg(not(unix))]
    {
        let _ = child.kill();
    }
}

/// `confab copy` moves a SQLite data directory into another, empty database (PostgreSQL when
/// the tests run with `CONFAB_TEST_DATABASE_URL`, else another SQLite file): the same apps,
/// users, rooms, messages (a deleted one stays redacted), counts and search, and the same
/// tokens still work.
#[tokio::test]
async fn copy_moves_everything_into_an_empty_database() {
    use crate::common::{PgDatabase, Server, postgres_server};
    let dir = tempfile::tempdir().expect("temp dir");
    let (source, other) = (dir.path().join("source"), dir.path().join("other"));
    let source_db = source.join("confab.db").to_str().expect("utf-8").to_owned();
    let mut s = Server::start_with(|c| {
        c.data_dir = source.clone();
        c.database = source_db.clone();
    })
    .await;
    let app = s.app("moving").await;
    let alice = s.user(&app, "alice").await;
    s.user(&app, "bob").await;
    let room = s.group(&alice, "public", &["bob"]).await;
    for i in 0..30 {
        s.send(&alice, room, &format!("message {i}")).await;
    }
    let gone = s.send(&alice, room, "to be deleted").await["seq"]
        .as_i64()
        .expect("seq");
    let (status, _) = s
        .delete(&format!("/v1/rooms/{room}/messages/{gone}"), &alice)
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    // Identity providers and links live beside the log: the copy carries them too.
    let google =
        serde_json::json!({ "preset": "google", "client_ids": ["c.apps.googleusercontent.com"] });
    let (status, _) = s
        .put("/v1/app/identity-providers/google", &app.secret, google)
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    let link = serde_json::json!({ "subject": "alice-at-google" });
    let (status, _) = s
        .put(
            "/v1/app/users/alice/identities/google",
            &app.secret,
            link.clone(),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let (_, providers) = s.get("/v1/app/identity-providers", &app.secret).await;
    let history = format!("/v1/rooms/{room}/messages?limit=100");
    let (_, before) = s.get(&history, &alice).await;
    let (_, counts) = s.get("/v1/app", &app.secret).await;
    let (_, log) = s.get("/v1/events?limit=1000", &app.secret).await;
    s.stop().await;

    std::fs::create_dir(&other).expect("dir");
    let pg = postgres_server().map(|server| PgDatabase::create(&server));
    let target = match &pg {
        Some(db) => db.url(),
        None => other
            .join("copy.db")
            .to_str()
            .expect("utf-8 path")
            .to_owned(),
    };
    let d = source.to_str().expect("utf-8 path");
    let t = target.as_str();
    let (ok, out, err) = run(confab().args(["copy", "--to", t, "--data-dir", d]));
    assert!(ok, "{err}");
    assert!(out.contains("counts checked"), "{out}");
    // Into a database that is not empty: refused.
    let (ok, _, err) = run(confab().args(["copy", "--to", t, "--data-dir", d]));
    assert!(!ok);
    assert!(err.contains("not empty"), "{err}");

    let copy = Server::start_with(|c| {
        c.data_dir = other.clone();
        c.database = t.to_owned();
    })
    .await;
    // The log first: a user's requests below add `user_seen` events to it.
    assert_eq!(copy.get("/v1/events?limit=1000", &app.secret).await.1, log);
    assert_eq!(copy.get("/v1/app", &app.secret).await.1, counts);
    // The settings come along; their times are those of the copy.
    let settings = |v: &serde_json::Value| {
        v["identity_providers"]
            .as_array()
            .map(|l| l.iter().map(|p| p["settings"].clone()).collect::<Vec<_>>())
    };
    let copied = copy.get("/v1/app/identity-providers", &app.secret).await.1;
    assert_eq!(settings(&copied), settings(&providers));
    assert_eq!(settings(&copied).map(|l| l.len()), Some(1));
    let (status, _) = copy
        .put("/v1/app/users/bob/identities/google", &app.secret, link)
        .await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT, "the link came along");
    let (status, after) = copy.get(&history, &alice).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{after}");
    assert_eq!(before, after);
    let (status, hits) = copy
        .get(
            &format!("/v1/rooms/{room}/search?q=message&limit=50"),
            &alice,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(hits["hits"].as_array().map(Vec::len), Some(30), "{hits}");
}
