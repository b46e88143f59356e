//! Two members of one room, each on a socket of its own (on one server, or on two nodes of a
//! cluster): one sends over its socket, one message after the other, and each message is timed
//! until the other member receives it, and until the sender has its `ack` (the commit).

use crate::stats::Samples;
use anyhow::bail;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long one message may take to reach both sockets.
const WITHIN: Duration = Duration::from_secs(30);

/// Send → delivery and send → ack of each message (warm-up left out).
pub(crate) struct PairTimes {
    pub delivery: Samples,
    pub ack: Samples,
    /// Per message, how much later than the ack the delivery came (zero when it came first):
    /// the way from the commit to the other socket, without the commit itself.
    pub past_ack: Samples,
}

/// Send → delivery: `a` (connected to `addr`) sends, `b` (connected to `b_addr`) receives.
pub(crate) async fn pair_latency(
    addr: &str,
    b_addr: &str,
    a: &str,
    b: &str,
    room: i64,
    n: usize,
    pace: Option<Duration>,
) -> anyhow::Result<Samples> {
    Ok(pair_times(addr, b_addr, a, b, room, n, pace)
        .await?
        .delivery)
}

/// [`pair_latency`], with the time until the sender's `ack` as well.
pub(crate) async fn pair_times(
    addr: &str,
    b_addr: &str,
    a: &str,
    b: &str,
    room: i64,
    n: usize,
    pace: Option<Duration>,
) -> anyhow::Result<PairTimes> {
    let mut wa = connect(addr, a).await?;
    let mut wb = connect(b_addr, b).await?;
    let warm = (n / 20).max(20);
    let (mut delivery, mut ack, mut past_ack) = (Vec::new(), Vec::new(), Vec::new());
    let mut tick = pace.map(tokio::time::interval);
    for i in 0..warm + n {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        let text = format!("p:{i}");
        let frame = json!({"type": "send", "room": room, "text": text, "ref": i}).to_string();
        let needle = format!("\"text\":\"{text}\"");
        let t = Instant::now();
        wa.send(Message::text(frame)).await?;
        // The sender's own ack and change are read too, so its queue never fills.
        let (mut delivered, mut acked, mut echoed) = (None, None, false);
        let deadline = tokio::time::sleep(WITHIN);
        tokio::pin!(deadline);
        while delivered.is_none() || acked.is_none() || !echoed {
            tokio::select! {
                f = wb.next(), if delivered.is_none() => match f {
                    Some(Ok(Message::Text(f))) if f.as_str().contains(&needle) => {
                        delivered = Some(t.elapsed());
                    }
                    Some(Ok(_)) => {}
                    _ => bail!("b's connection ended"),
                },
                f = wa.next(), if acked.is_none() || !echoed => match f {
                    Some(Ok(Message::Text(f))) => {
                        let f = f.as_str();
                        if f.contains("\"type\":\"ack\"") {
                            acked = Some(t.elapsed());
                        }
                        echoed |= f.contains(&needle);
                        if f.contains("\"type\":\"error\"") {
                            bail!("send refused: {f}");
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => bail!("a's connection ended"),
                },
                _ = &mut deadline => bail!("message {i} not delivered and acknowledged in {WITHIN:?}"),
            }
        }
        if let (true, Some(d), Some(a)) = (i >= warm, delivered, acked) {
            delivery.push(d);
            ack.push(a);
            past_ack.push(d.saturating_sub(a));
        }
    }
    Ok(PairTimes {
        delivery: Samples::new(delivery),
        ack: Samples::new(ack),
        past_ack: Samples::new(past_ack),
    })
}

/// A socket of `token`'s user, authenticated (`ready` received).
async fn connect(addr: &str, token: &str) -> anyhow::Result<Socket> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws")).await?;
    ws.send(Message::text(
        json!({"type": "auth", "token": token}).to_string(),
    ))
    .await?;
    loop {
        match tokio::time::timeout(WITHIN, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"ready\"") => return Ok(ws),
            Ok(Some(Ok(_))) => {}
            _ => bail!("no ready"),
        }
    }
}
