//! The HTTP transport against hostile clients, over raw sockets: bodies trickled byte by byte,
//! more connections than the cap, a server out of descriptors, clients that never read a large
//! answer, shutdown with such clients connected, and CORS for browsers. The server's own
//! deadlines are set short so they fire quickly; the tests wait on what a client sees.

mod cors;
mod descriptors;

use crate::common::Server;
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

/// Sends a body's first byte, then one more every 100 ms, until the server stops taking them
/// (or for a minute: past every patience of the tests, never completing the body).
fn trickle(mut stream: tokio::net::tcp::OwnedWriteHalf) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        for _ in 0..600 {
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
    // With a valid key the body is read (and times out); with a wrong one it is refused
    // unread. Either way the trickler gets an answer and loses its connection.
    for (key, status, code) in [
        (s.admin_key.as_str(), "408", "request_timeout"),
        ("not-the-admin-key", "401", "unauthorized"),
    ] {
        let mut stream = TcpStream::connect(s.base.trim_start_matches("http://"))
            .await
            .expect("connect");
        stream
            .write_all(post_app_head(key, 1000).as_bytes())
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
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{text}");
        let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap_or(""))
            .expect("a JSON error body");
        assert_eq!(body["error"]["code"], code, "{body}");
    }
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
