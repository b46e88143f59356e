//! One sequential sender: how close a durable send gets to the cost of one fsync.

use crate::harness::{Server, message_text};
use crate::raw;
use crate::sends::post_message;
use crate::stats::{Samples, Table, ms};
use crate::{Opts, blocking};
use std::time::Instant;

/// fsync probes repeated this many times (each variant).
const PROBES: usize = 1000;

pub async fn run(opts: &Opts) -> anyhow::Result<Table> {
    let n = opts.messages.max(1);
    eprintln!("[latency] starting the server");
    let server = Server::start().await?;
    let app = server.app("bench-latency").await?;
    let token = server.users(&app, "l", 1).await?.remove(0);
    let room = server.group(&token, &[]).await?;
    let url = server.url(&format!("/v1/rooms/{room}/messages"));
    let auth = format!("Bearer {token}");
    let warm = (n / 20).max(20) as u64;
    eprintln!("[latency] one sender: {warm} warm-up messages, then {n} measured");
    let mut lat = Vec::with_capacity(n);
    let mut errors = 0u64;
    let mut first_error = None;
    for i in 0..(warm + n as u64) {
        let body = serde_json::json!({ "text": message_text(0, i) }).to_string();
        let t = Instant::now();
        let r = post_message(&server.client, &url, &auth, body).await;
        let d = t.elapsed();
        if i < warm {
            continue;
        }
        match r {
            Ok(()) => lat.push(d),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    // Diagnostic: the floor of any request here, a round trip to `GET /healthz` (no
    // authentication, no store), with the same client.
    let health = server.url("/healthz");
    let mut round_trips = Vec::with_capacity(n);
    for i in 0..(warm + n as u64) {
        let t = Instant::now();
        let status = server.client.get(&health).send().await?.status();
        if i >= warm {
            round_trips.push(t.elapsed());
        }
        anyhow::ensure!(status.is_success(), "/healthz answered {status}");
    }
    // The same with the leanest client possible: one kept-alive TCP connection, the request
    // written as bytes, the answer read until its body is complete.
    let bare = bare_round_trips(&server.running.addr.to_string(), warm as usize, n).await?;
    // Diagnostic: the same sequential sends straight into the store, without HTTP.
    let app_id = server.app_id(&app.token).await?;
    let mut direct = Vec::with_capacity(n);
    for i in 0..(warm + n as u64) {
        let text = message_text(0, 1_000_000 + i);
        let t = Instant::now();
        server.store_send(app_id, "l0", room, text).await?;
        if i >= warm {
            direct.push(t.elapsed());
        }
    }
    server.stop().await?;
    let http = Samples::new(lat);
    let direct = Samples::new(direct);
    let round_trip = Samples::new(round_trips);

    eprintln!("[latency] fsync probes ({PROBES} each), raw SQLite single commits ({n})");
    let dir = tempfile::tempdir()?;
    let d = dir.path().to_path_buf();
    let fsync = blocking(move || raw::fsync_cost(&d, PROBES)).await?;
    let d = dir.path().to_path_buf();
    let single = blocking(move || raw::single_insert_commit(&d, n)).await?;

    let fsync_med = fsync.overwrite.pct(50.0);
    let p50 = http.pct(50.0);
    let ratio = p50.as_secs_f64() / fsync_med.as_secs_f64().max(1e-9);
    let mut t = Table::new(format!("latency: one sequential sender, {n} durable sends"));
    t.info("latency p50", ms(p50));
    t.info("latency p99", ms(http.pct(99.0)));
    t.info("latency mean", ms(http.mean()));
    t.info("latency max", ms(http.max()));
    t.info(
        "diagnostic: store.execute direct, no HTTP (p50 / p99)",
        format!("{} / {}", ms(direct.pct(50.0)), ms(direct.pct(99.0))),
    );
    t.info(
        "one fsync: 4 KiB overwrite + fdatasync (median)",
        ms(fsync_med),
    );
    t.info(
        "  4 KiB append + fdatasync (median)",
        ms(fsync.append.pct(50.0)),
    );
    t.info(
        "  4 KiB overwrite + fsync (median)",
        ms(fsync.overwrite_fsync.pct(50.0)),
    );
    t.info(
        "raw SQLite 1-row insert+commit, WAL FULL (p50 / p99)",
        format!("{} / {}", ms(single.pct(50.0)), ms(single.pct(99.0))),
    );
    t.info(
        "diagnostic: HTTP round trip alone, GET /healthz (p50 / p99)",
        format!(
            "{} / {}",
            ms(round_trip.pct(50.0)),
            ms(round_trip.pct(99.0))
        ),
    );
    t.info(
        "diagnostic: the same with a bare TCP client (p50 / p99)",
        format!("{} / {}", ms(bare.pct(50.0)), ms(bare.pct(99.0))),
    );
    let floor = round_trip.pct(50.0) + single.pct(50.0);
    let bare_floor = bare.pct(50.0) + single.pct(50.0);
    t.info(
        "floor with the bare client: its round trip + raw SQLite commit, / fsync",
        format!(
            "{} = {:.2} x fsync",
            ms(bare_floor),
            bare_floor.as_secs_f64() / fsync_med.as_secs_f64().max(1e-9)
        ),
    );
    t.info(
        "floor: HTTP round trip + raw SQLite commit (p50s), / fsync",
        format!(
            "{} = {:.2} x fsync",
            ms(floor),
            floor.as_secs_f64() / fsync_med.as_secs_f64().max(1e-9)
        ),
    );
    t.check(
        "ratio p50 / fsync",
        format!("{ratio:.2}"),
        "<= 1.5",
        ratio <= 1.5,
    );
    t.info(
        "ratio p50 / (4 KiB append + fdatasync)",
        format!(
            "{:.2}",
            p50.as_secs_f64() / fsync.append.pct(50.0).as_secs_f64().max(1e-9)
        ),
    );
    t.info(
        "ratio p50 / raw SQLite commit p50",
        format!(
            "{:.2}",
            p50.as_secs_f64() / single.pct(50.0).as_secs_f64().max(1e-9)
        ),
    );
    t.check("errors", errors.to_string(), "0", errors == 0);
    if let Some(e) = first_error {
        t.note(format!("first error: {e}"));
    }
    Ok(t)
}

/// Round trips of `GET /healthz` over one kept-alive connection, written and read as bytes.
async fn bare_round_trips(addr: &str, warm: usize, n: usize) -> anyhow::Result<Samples> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::with_capacity(n);
    for i in 0..(warm + n) {
        let t = Instant::now();
        conn.write_all(request.as_bytes()).await?;
        let mut got = 0;
        loop {
            let k = conn.read(&mut buf[got..]).await?;
            anyhow::ensure!(k > 0, "the server closed the connection");
            got += k;
            if response_complete(&buf[..got]) {
                break;
            }
            anyhow::ensure!(got < buf.len(), "answer too long");
        }
        if i >= warm {
            out.push(t.elapsed());
        }
        anyhow::ensure!(
            buf.starts_with(b"HTTP/1.1 200"),
            "/healthz did not answer 200"
        );
    }
    Ok(Samples::new(out))
}

/// Whether `b` holds a whole HTTP/1.1 answer with a `content-length` body.
fn response_complete(b: &[u8]) -> bool {
    let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&b[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    b.len() >= end + 4 + length
}
