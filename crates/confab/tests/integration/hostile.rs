//! The HTTP transport against hostile clients, over raw sockets: bodies trickled byte by byte,
//! more connections than the cap, a server out of descriptors, clients that never read a large
//! answer, shutdown with such clients connected, and CORS for browsers. The server's own
//! deadlines are set short so they fire quickly; the tests wait on what a client sees.

use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Generous bound on anything the server should do promptly.
const PATIENCE: Duration = Duration::from_secs(15);

/// Reads one HTTP response (headers, then a `Content-Length` body); `None` when the connection
/// closes first.
async fn response(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned());
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends a request and waits for its answer, within [`PATIENCE`].
async fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.expect("write");
    timeout(PATIENCE, response(stream))
        .await
        .expect("answered in time")
        .expect("answered before the connection closed")
}

const HEALTH: &str = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

/// Reads until the server closes the connection (EOF or reset); the bytes read.
async fn until_closed(stream: &mut TcpStream) -> usize {
    let mut total = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
    }
}

/// Headers of a request to create an app, whose body (of `len` bytes) the caller then sends.
fn post_app_head(admin_key: &str, len: usize) -> String {
    format!(
        "POST /v1/apps HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {admin_key}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
}

/// Sends a body's first byte, then one more every 100 ms, until the server stops taking them.
fn trickle(mut stream: tokio::net::tcp::OwnedWriteHalf) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        for _ in 0..300 {
            interval.tick().await;
            if stream.write_all(b" ").await.is_err() {
                return;
            }
        }
    })
}

#[tokio::test]
async fn a_trickled_body_is_answered_408_and_its_connection_closed() {
    let s = Server::start_with(|c| c.http_body_timeout_ms = 300).await;
    let mut stream = TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    stream
        .write_all(post_app_head(&s.admin_key, 1000).as_bytes())
        .await
        .expect("headers");
    let (mut read, write) = stream.into_split();
    let trickler = trickle(write);
    let mut buf = Vec::new();
    timeout(PATIENCE, read.read_to_end(&mut buf))
        .await
        .expect("the server answers and closes in time")
        .ok();
    trickler.abort();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap_or(""))
        .expect("a JSON error body");
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    // A client that sends its body promptly is unaffected.
    let app = s.app("prompt").await;
    assert!(!app.token.is_empty());
}

#[tokio::test]
async fn at_the_connection_cap_new_clients_wait_for_a_free_slot() {
    let s = Server::start_with(|c| c.max_connections = 3).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(&addr).await.expect("connect");
        assert!(exchange(&mut c, HEALTH).await.starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    let mut late = TcpStream::connect(&addr).await.expect("in the backlog");
    late.write_all(HEALTH.as_bytes()).await.expect("write");
    // Connections already open keep being served...
    for c in &mut held {
        assert!(exchange(c, HEALTH).await.starts_with("HTTP/1.1 200"));
    }
    // ...while the fourth is not taken (a window, since this checks for an absence).
    assert!(
        timeout(Duration::from_millis(500), response(&mut late))
            .await
            .is_err(),
        "a connection past the cap was served"
    );
    // One leaves: the waiting client is served.
    drop(held.pop());
    let answer = timeout(PATIENCE, response(&mut late))
        .await
        .expect("served once a slot frees")
        .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A server with an app, a user in a group room, and `n` messages of 8,000 control characters
/// (each ~48 KB once JSON escapes it). Setup requests use fresh connections so that none stays
/// pooled against a small connection cap.
async fn big_messages(s: &mut Server, n: usize) -> (String, String, i64) {
    s.client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let app = s.app("big").await;
    let alice = s.user(&app, "alice").await;
    let room = s.group(&alice, "private", &[]).await;
    let text = "\u{1}".repeat(8000);
    for _ in 0..n {
        s.send(&alice, room, &text).await;
    }
    (app.secret, alice, room)
}

/// Follows a paged feed to its end; returns each page's size in bytes and every row.
async fn follow(
    s: &Server,
    path: &str,
    cursor: &str,
    rows: &str,
    token: &str,
) -> (Vec<usize>, Vec<Value>) {
    let (mut sizes, mut all, mut at) = (Vec::new(), Vec::new(), 0i64);
    for _ in 0..100 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{path}{sep}limit=1000&{}={at}",
            s.base,
            if cursor == "next_after" {
                "after"
            } else {
                "since"
            }
        );
        let resp = s
            .client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), StatusCode::OK);
        let text = resp.text().await.expect("body");
        sizes.push(text.len());
        let page: Value = serde_json::from_str(&text).expect("json");
        all.extend(page[rows].as_array().expect("rows").iter().cloned());
        at = page[cursor].as_i64().expect("cursor");
        if page["has_more"] != true {
            return (sizes, all);
        }
    }
    panic!("the feed never ended");
}

#[tokio::test]
async fn event_and_change_pages_are_bounded_by_bytes_and_page_exactly() {
    let mut s = Server::start().await;
    let (secret, alice, room) = big_messages(&mut s, 30).await;
    for (path, cursor, rows, key, token) in [
        (
            "/v1/events".to_owned(),
            "next_after",
            "events",
            "offset",
            &secret,
        ),
        (
            format!("/v1/rooms/{room}/changes"),
            "next_since",
            "changes",
            "pos",
            &alice,
        ),
    ] {
        let (sizes, all) = follow(&s, &path, cursor, rows, token).await;
        assert!(sizes.len() >= 2, "{path}: one page of {sizes:?} bytes");
        // ~1 MiB, plus at most one row past it.
        assert!(
            sizes.iter().all(|n| *n < (1 << 20) + 100_000),
            "{path}: {sizes:?}"
        );
        let keys: Vec<i64> = all.iter().map(|r| r[key].as_i64().expect("key")).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{path}: {keys:?}");
        let texts = all
            .iter()
            .filter(|r| r.to_string().contains(&"\\u0001".repeat(8000)))
            .count();
        assert_eq!(texts, 30, "{path}: every message exactly once");
    }
    // The next position after the last is where the feed says to go on from: nothing is new.
    let (_, rest) = follow(&s, "/v1/events", "next_after", "events", &secret).await;
    let last = rest
        .last()
        .and_then(|e| e["offset"].as_i64())
        .expect("offset");
    let (status, page) = s.get(&format!("/v1/events?after={last}"), &secret).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"], json!([]), "{page}");
}

/// Sends `n` requests for large pages back to back on one connection with a small receive
/// buffer, and reads nothing.
async fn pipelined_big_pages(addr: &str, secret: &str, n: usize) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let mut stream = socket
        .connect(addr.parse().expect("addr"))
        .await
        .expect("connect");
    let one = format!(
        "GET /v1/events?limit=1000 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {secret}\r\n\r\n"
    );
    stream
        .write_all(one.repeat(n).as_bytes())
        .await
        .expect("requests");
    stream
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_at_the_write_deadline() {
    let mut s = Server::start_with(|c| {
        c.max_connections = 1;
        c.http_write_timeout_ms = 300;
    })
    .await;
    let (secret, _, _) = big_messages(&mut s, 30).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stuck = pipelined_big_pages(&addr, &secret, 16).await;
    // It holds the only slot until the server gives up on it; then this one is served.
    let mut next = TcpStream::connect(&addr).await.expect("connect");
    assert!(
        exchange(&mut next, HEALTH)
            .await
            .starts_with("HTTP/1.1 200")
    );
    // Its answers were dropped: far less than the 16 pages asked for ever arrives.
    let got = timeout(PATIENCE, until_closed(&mut stuck))
        .await
        .expect("the connection was closed");
    assert!(got < 8 << 20, "{got} bytes arrived");
}

#[tokio::test]
async fn shutdown_ends_within_its_grace_whatever_clients_do() {
    let mut s = Server::start_with(|c| c.shutdown_grace_ms = 300).await;
    let (secret, _, _) = big_messages(&mut s, 30).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    // One never reads the large answers it asked for; wait until the server is writing them.
    let mut reader = pipelined_big_pages(&addr, &secret, 16).await;
    let mut first = [0u8; 1];
    timeout(PATIENCE, reader.read_exact(&mut first))
        .await
        .expect("an answer starts")
        .expect("read");
    // One is stuck mid-body, one mid-headers.
    let mut body = TcpStream::connect(&addr).await.expect("connect");
    let head = post_app_head(&s.admin_key, 1000);
    body.write_all(head.as_bytes()).await.expect("write");
    body.write_all(b"{\"name\":").await.expect("write");
    let mut headers = TcpStream::connect(&addr).await.expect("connect");
    headers
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("write");
    timeout(PATIENCE, s.stop())
        .await
        .expect("stop returns despite the stuck clients");
    for stream in [&mut reader, &mut body, &mut headers] {
        timeout(PATIENCE, until_closed(stream))
            .await
            .expect("every connection is closed");
    }
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let s = Server::start_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let preflight = |origin: &'static str| {
        s.client
            .request(reqwest::Method::OPTIONS, format!("{}/v1/rooms", s.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            )
            .send()
    };
    let ok = preflight("https://app.example").await.expect("sent");
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    let h = ok.headers();
    let get = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(get("access-control-allow-origin"), "https://app.example");
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(get("access-control-allow-methods").contains(m), "{h:?}");
    }
    assert!(
        get("access-control-allow-headers").contains("authorization"),
        "{h:?}"
    );
    assert!(
        get("access-control-allow-headers").contains("content-type"),
        "{h:?}"
    );
    assert!(
        get("access-control-max-age").parse::<u32>().is_ok(),
        "{h:?}"
    );
    assert!(h.get("access-control-allow-credentials").is_none());

    let refused = preflight("https://evil.example").await.expect("sent");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let status = refused.status();
    let body: Value = refused.json().await.expect("json");
    assert_error(&(status, body), StatusCode::FORBIDDEN, "origin_not_allowed");

    // Real requests: the allowed origin may read the answer, another may not.
    let app = s.app("cors").await;
    let alice = s.user(&app, "alice").await;
    for (origin, allowed) in [
        ("https://app.example", true),
        ("https://evil.example", false),
    ] {
        let resp = s
            .client
            .get(format!("{}/v1/rooms", s.base))
            .bearer_auth(&alice)
            .header("Origin", origin)
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), StatusCode::OK);
        let acao = resp.headers().get("access-control-allow-origin").cloned();
        assert_eq!(acao.is_some(), allowed, "{origin}: {acao:?}");
    }
    // Credentials are read from the Authorization header only, never from the URL.
    let (status, _) = s
        .call(
            reqwest::Method::GET,
            &format!("/v1/rooms?access_token={alice}"),
            None,
            None,
        )
        .await;
    assert!(status.is_client_error(), "{status}");
    assert_ne!(status, StatusCode::OK);

    // With no origins configured, there are no CORS headers at all.
    let plain = Server::start().await;
    let resp = plain
        .client
        .get(format!("{}/healthz", plain.base))
        .header("Origin", "https://app.example")
        .send()
        .await
        .expect("sent");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

/// CPU time (user + system, in clock ticks) the process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_server_waits_then_serves_again() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("temp dir");
    let key = "hostile-admin-key-0123456789";
    // A small descriptor limit, and a cap above it, so the tricklers use up the descriptors.
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "ulimit -n 96 && exec \"$0\" serve --listen 127.0.0.1:0 --data-dir \"$1\"",
        ])
        .arg(env!("CARGO_BIN_EXE_confab"))
        .arg(dir.path())
        .env("CONFAB_ADMIN_KEY", key)
        .env("CONFAB_MAX_CONNECTIONS", "100000")
        .env("CONFAB_HTTP_BODY_TIMEOUT_MS", "500")
        .env("CONFAB_HTTP_HEADER_TIMEOUT_MS", "500")
        .env("CONFAB_LOG", "warn,confab=info")
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let pid = child.id();
    // The log goes to a channel, line by line, so the pipe never fills.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let addr = loop {
        let line = timeout(PATIENCE, lines.recv())
            .await
            .expect("the server starts in time")
            .expect("the server logs its address");
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().expect("addr").to_owned();
        }
    };
    let (cpu_before, wall) = (cpu_ticks(pid), std::time::Instant::now());
    let mut tricklers = Vec::new();
    for _ in 0..300 {
        let mut c = TcpStream::connect(&addr).await.expect("connect");
        c.write_all(post_app_head(key, 1000).as_bytes())
            .await
            .expect("headers");
        tricklers.push(trickle(c.into_split().1));
    }
    // A legitimate client, queued behind all of them, is served once their deadlines pass.
    let mut legit = TcpStream::connect(&addr).await.expect("connect");
    legit.write_all(HEALTH.as_bytes()).await.expect("write");
    let answer = timeout(Duration::from_secs(60), response(&mut legit))
        .await
        .expect("served once descriptors free")
        .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (cpu, wall) = (cpu_ticks(pid) - cpu_before, wall.elapsed());
    for t in &tricklers {
        t.abort();
    }
    // Still alive and serving.
    let mut again = TcpStream::connect(&addr).await.expect("connect");
    assert!(
        exchange(&mut again, HEALTH)
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        child.try_wait().expect("status").is_none(),
        "the server died"
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    let mut log = Vec::new();
    while let Ok(line) = lines.try_recv() {
        log.push(line);
    }
    let starved = log
        .iter()
        .filter(|l| l.contains("cannot accept connections"))
        .count();
    assert!(starved >= 1, "the descriptors never ran out: {log:#?}");
    assert!(starved <= 2, "the log is flooded: {starved} lines");
    eprintln!("out of descriptors: {cpu} CPU ticks in {wall:?}");
    // No busy loop while starved: well under one core (ticks are 1/100 s).
    let ticks = wall.as_millis() as u64 / 10;
    assert!(cpu < ticks / 2, "{cpu} ticks of CPU in {wall:?}");
}
