//! The client worker processes: many WebSocket connections from one source address, each
//! recording when bench messages arrive.

use anyhow::bail;
use futures_util::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::reader::Reader;

/// Message ids a worker keeps figures for.
pub const MAX_IDS: usize = 100_000;
/// Message ids (from 0) whose deliveries are also kept as a histogram of latencies.
pub const HIST_IDS: usize = 2000;
/// Histogram buckets of 1 ms; the last one holds everything slower.
pub const BUCKETS: usize = 256;
/// Connections opened at once by a worker.
const CONNECT_CONCURRENCY: usize = 128;

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[derive(Default)]
pub(super) struct Seen {
    count: Vec<AtomicU32>,
    max_ns: Vec<AtomicU64>,
    /// `HIST_IDS` × `BUCKETS` counters.
    hist: Vec<AtomicU32>,
    pub closed: AtomicU64,
    /// Changes that did not follow the last one of their room on their connection.
    pub disorder: AtomicU64,
}

/// `confab-bench ws-clients ADDR SRC TOKENS_FILE`: one connection per token, from `SRC`.
/// Prints `ready N` once all are authenticated; answers `report FROM TO` with a JSON line.
pub fn clients_main(args: &[String]) -> anyhow::Result<()> {
    let [addr, src, file] = args else {
        bail!("usage: ws-clients ADDR SRC TOKENS_FILE");
    };
    let tokens: Vec<String> = std::fs::read_to_string(file)?
        .lines()
        .map(str::to_owned)
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let seen = Arc::new(Seen {
            count: (0..MAX_IDS).map(|_| AtomicU32::new(0)).collect(),
            max_ns: (0..MAX_IDS).map(|_| AtomicU64::new(0)).collect(),
            hist: (0..HIST_IDS * BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            closed: AtomicU64::new(0),
            disorder: AtomicU64::new(0),
        });
        let addr: std::net::SocketAddr = addr.parse()?;
        let src: std::net::IpAddr = src.parse()?;
        let reader = &Reader::start(seen.clone())?;
        let opened = futures_util::stream::iter(
            tokens
                .into_iter()
                .map(|t| async move { client(addr, src, t, reader).await }),
        )
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect::<Vec<anyhow::Result<()>>>()
        .await;
        let failed = opened.iter().filter(|r| r.is_err()).count();
        if let Some(Err(e)) = opened.iter().find(|r| r.is_err()) {
            eprintln!("[ws-clients {src}] {failed} connections failed, first: {e:#}");
        }
        println!("ready {}", opened.len() - failed);
        // Answer commands as they come (read on a thread, handed over one by one).
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(cmd) = rx.recv().await {
            let parts: Vec<&str> = cmd.split_whitespace().collect();
            if let ["report", from, to] = parts.as_slice() {
                let (from, to): (usize, usize) = (from.parse()?, to.parse()?);
                let to = to.min(MAX_IDS);
                let count: Vec<u32> = (from..to)
                    .map(|i| seen.count[i].load(Ordering::Relaxed))
                    .collect();
                let max: Vec<u64> = (from..to)
                    .map(|i| seen.max_ns[i].load(Ordering::Relaxed))
                    .collect();
                let closed = seen.closed.load(Ordering::Relaxed);
                let disorder = seen.disorder.load(Ordering::Relaxed);
                println!(
                    "{}",
                    json!({"count": count, "max_ns": max, "closed": closed, "disorder": disorder})
                );
            } else if let ["hist", from, to] = parts.as_slice() {
                let (from, to): (usize, usize) = (from.parse()?, to.parse()?);
                let hist: Vec<Vec<u32>> = (from..to.min(HIST_IDS))
                    .map(|i| {
                        (0..BUCKETS)
                            .map(|b| seen.hist[i * BUCKETS + b].load(Ordering::Relaxed))
                            .collect()
                    })
                    .collect();
                println!("{}", json!({ "hist": hist }));
            }
        }
        Ok(())
    })
}

async fn client(
    addr: std::net::SocketAddr,
    src: std::net::IpAddr,
    token: String,
    reader: &Reader,
) -> anyhow::Result<()> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(src, 0))?;
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}/v1/ws"),
        stream,
        Some(config),
    )
    .await?;
    // After the handshake (the server says nothing before `auth`), the client speaks the
    // frames itself: a load generator that parses as little as possible leaves more of the
    // machine's two cores to the server.
    let mut raw = RawClient {
        tcp: ws.into_inner(),
        buf: Vec::with_capacity(4096),
    };
    raw.write(
        0x1,
        json!({"type": "auth", "token": token})
            .to_string()
            .as_bytes(),
    )
    .await?;
    loop {
        match raw.next().await? {
            Some((0x1, text)) if text.contains("\"type\":\"ready\"") => break,
            Some((0x1, text)) if text.contains("\"type\":\"error\"") => {
                bail!("refused: {text}")
            }
            Some(_) => {}
            None => bail!("closed before ready"),
        }
    }
    let RawClient { tcp, buf } = raw;
    reader.add(tcp.into_std()?, buf)
}

/// The client side of WebSocket framing, just enough for the bench: reads unmasked frames
/// (answering pings), writes masked ones (with a zero key, which the protocol allows).
struct RawClient {
    tcp: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    async fn write(&mut self, opcode: u8, payload: &[u8]) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(payload);
        self.tcp.write_all(&frame).await?;
        Ok(())
    }

    /// The next text (opcode 1) or other data frame; pings are answered on the way.
    async fn next(&mut self) -> anyhow::Result<Option<(u8, String)>> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some((op, start, end)) = self.frame() {
                let payload = self.buf[start..end].to_vec();
                self.buf.drain(..end);
                match op {
                    0x8 => return Ok(None),
                    0x9 => self.write(0xA, &payload).await?,
                    0xA => {}
                    _ => return Ok(Some((op, String::from_utf8_lossy(&payload).into_owned()))),
                }
                continue;
            }
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(4096);
            }
            if self.tcp.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// A complete frame at the start of the buffer: opcode and payload range.
    fn frame(&self) -> Option<(u8, usize, usize)> {
        frame(&self.buf)
    }
}

/// A complete frame at the start of `b`: opcode and payload range.
pub(super) fn frame(b: &[u8]) -> Option<(u8, usize, usize)> {
    if b.len() < 2 {
        return None;
    }
    let op = b[0] & 0x0F;
    let (len, head) = match b[1] & 0x7F {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[2..10]);
            (u64::from_be_bytes(n) as usize, 10)
        }
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    (b.len() >= head + len).then_some((op, head, head + len))
}

/// The start of every change frame the server writes (`ChangeFrame`, fields in this order).
const CHANGE: &[u8] = b"{\"type\":\"change\",\"room\":";
const POS: &[u8] = b",\"pos\":";
const BENCH_TEXT: &[u8] = b"\"text\":\"b:";

/// What a connection last received of a room: to check that its changes come in order.
#[derive(Clone, Copy, Default)]
pub(super) struct Last {
    room: u64,
    pos: u64,
}

/// Notes the delivery of a bench message (`"text":"b:ID:SENT_NS"`) and checks that a room's
/// changes reach the connection in position order with no gap or duplicate, reading the bytes
/// in place: no JSON parsing, no UTF-8 pass over the frame, no allocation.
pub(super) fn record(frame: &[u8], last: &mut Last, seen: &Seen) {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(BENCH_TEXT));
    let Some(rest) = frame.strip_prefix(CHANGE) else {
        return;
    };
    let now = now_ns();
    let Some((room, rest)) = digits(rest) else {
        return;
    };
    let Some((pos, _)) = rest.strip_prefix(POS).and_then(digits) else {
        return;
    };
    if last.room == room && last.pos != 0 && pos != last.pos + 1 {
        seen.disorder.fetch_add(1, Ordering::Relaxed);
    }
    *last = Last { room, pos };
    let Some(at) = FINDER.find(frame) else {
        return;
    };
    let rest = &frame[at + BENCH_TEXT.len()..];
    let Some((id, rest)) = digits(rest) else {
        return;
    };
    let Some((sent, _)) = rest.strip_prefix(b":").and_then(digits) else {
        return;
    };
    let id = id as usize;
    if id < MAX_IDS {
        let took = now.saturating_sub(sent);
        seen.count[id].fetch_add(1, Ordering::Relaxed);
        seen.max_ns[id].fetch_max(took, Ordering::Relaxed);
        if id < HIST_IDS {
            let bucket = ((took / 1_000_000) as usize).min(BUCKETS - 1);
            seen.hist[id * BUCKETS + bucket].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The decimal number at the start of `b` and what follows it.
fn digits(b: &[u8]) -> Option<(u64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 {
        return None;
    }
    let v = b[..n]
        .iter()
        .fold(0u64, |v, c| v * 10 + u64::from(c - b'0'));
    Some((v, &b[n..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen() -> Seen {
        Seen {
            count: (0..MAX_IDS).map(|_| AtomicU32::new(0)).collect(),
            max_ns: (0..MAX_IDS).map(|_| AtomicU64::new(0)).collect(),
            hist: (0..HIST_IDS * BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            ..Seen::default()
        }
    }

    fn change(room: u64, pos: u64, id: u64) -> Vec<u8> {
        format!(
            "{{\"type\":\"change\",\"room\":{room},\"pos\":{pos},\"change\":{{\"pos\":{pos},\
             \"type\":\"message_sent\",\"item\":{{\"text\":\"b:{id}:{}\"}}}}}}",
            now_ns() - 1_000_000
        )
        .into_bytes()
    }

    #[test]
    fn counts_bench_messages_and_notes_changes_out_of_order() {
        let s = seen();
        let mut last = Last::default();
        for (pos, id) in [(5, 0), (6, 1), (7, 2)] {
            record(&change(1, pos, id), &mut last, &s);
        }
        assert_eq!(s.count[1].load(Ordering::Relaxed), 1);
        assert!(s.max_ns[2].load(Ordering::Relaxed) >= 1_000_000);
        assert_eq!(s.disorder.load(Ordering::Relaxed), 0);
        // A duplicate, then a gap.
        record(&change(1, 7, 2), &mut last, &s);
        record(&change(1, 9, 3), &mut last, &s);
        assert_eq!(s.disorder.load(Ordering::Relaxed), 2);
        assert_eq!(s.count[2].load(Ordering::Relaxed), 2);
        // Another room starts its own sequence; other frames are ignored.
        record(&change(2, 40, 4), &mut last, &s);
        record(br#"{"type":"presence","user":"u"}"#, &mut last, &s);
        assert_eq!(s.disorder.load(Ordering::Relaxed), 2);
        assert_eq!(s.count[4].load(Ordering::Relaxed), 1);
    }
}
