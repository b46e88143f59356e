//! The WebSocket protocol itself: the heartbeat, the upgrade and its handshake, auth sent along
//! with it, fragments, pings and closes.

use super::{Ended, WAIT, login};
use crate::common::Server;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn ws_a_silent_client_is_closed_by_the_heartbeat() {
    let s = Server::start_with(|c| c.ws_ping_seconds = 1).await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let (c, _) = login(&s, &alice, None).await;
    // From here on the client reads raw bytes: it never answers a ping.
    let MaybeTlsStream::Plain(mut tcp) = c.ws.into_inner() else {
        panic!("plain TCP");
    };
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut bytes),
    )
    .await
    .expect("the server closes the connection");
    let _ = read;
    // A close frame (0x88) with code 4002 is among the last bytes.
    let code = 4002u16.to_be_bytes();
    assert!(
        bytes.windows(4).any(|w| w[0] == 0x88 && w[2..] == code),
        "close 4002 expected in {bytes:?}"
    );
}

#[tokio::test]
async fn ws_a_plain_request_is_told_to_upgrade() {
    let s = Server::start().await;
    let (status, body) = s.call(reqwest::Method::GET, "/v1/ws", None, None).await;
    assert_eq!(status, StatusCode::UPGRADE_REQUIRED, "{body}");
    assert_eq!(body["error"]["code"], "websocket_required");
}

#[tokio::test]
async fn ws_handshakes_that_are_not_websocket_13_are_refused() {
    let s = Server::start().await;
    let url = format!("{}/v1/ws", s.base);
    let client = reqwest::Client::new();
    let cases = [
        ("13", None),
        ("8", Some("dGhlIHNhbXBsZSBub25jZQ==")),
        ("13", Some("")),
    ];
    for (version, key) in cases {
        let mut req = client
            .get(&url)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", version);
        if let Some(k) = key {
            req = req.header("sec-websocket-key", k);
        }
        let resp = req.send().await.expect("answered");
        assert_eq!(
            resp.status(),
            StatusCode::UPGRADE_REQUIRED,
            "{version} {key:?}"
        );
        let body: Value = resp.json().await.expect("JSON error");
        assert_eq!(body["error"]["code"], "websocket_required");
    }
}

#[tokio::test]
async fn ws_auth_sent_along_with_the_handshake_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start().await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let mut tcp = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    // The request and the first frame in one write: the server reads both at once. The
    // Connection header lists several tokens, as some browsers send it.
    let mut bytes =
        b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            .to_vec();
    let auth = json!({"type": "auth", "token": alice}).to_string();
    let key = [7u8, 1, 2, 3];
    bytes.push(0x81);
    bytes.push(0x80 | 126);
    bytes.extend((auth.len() as u16).to_be_bytes());
    bytes.extend(key);
    bytes.extend(auth.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
    tcp.write_all(&bytes).await.expect("sent");
    let mut got = Vec::new();
    let text = loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, tcp.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if text.contains("\"type\":\"ready\"") {
            break text;
        }
    };
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    // The accept key of RFC 6455's own example.
    assert!(
        text.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{text}"
    );
}

#[tokio::test]
async fn ws_fragmented_messages_pings_and_closes_follow_the_protocol() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let s = Server::start().await;
    let app = s.app("demo").await;
    let alice = s.user(&app, "alice").await;
    let (mut c, _) = login(&s, &alice, None).await;
    // One request in three frames.
    let body = json!({"type": "ping", "ref": "in three parts"}).to_string();
    let (a, rest) = body.split_at(5);
    let (b, z) = rest.split_at(10);
    for (part, op, last) in [
        (a, Data::Text, false),
        (b, Data::Continue, false),
        (z, Data::Continue, true),
    ] {
        let frame = Frame::message(part.as_bytes().to_vec(), OpCode::Data(op), last);
        c.ws.send(Message::Frame(frame)).await.expect("sent");
    }
    assert_eq!(
        c.next().await,
        json!({"type": "pong", "ref": "in three parts"})
    );
    // A WebSocket ping is answered with a pong of the same bytes.
    c.ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("sent");
    loop {
        let m = tokio::time::timeout(WAIT, c.ws.next())
            .await
            .expect("in time");
        match m {
            Some(Ok(Message::Pong(p))) => {
                assert_eq!(&p[..], b"are you there");
                break;
            }
            Some(Ok(Message::Text(t))) => panic!("unexpected {t}"),
            Some(Ok(_)) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
    // A close from the client is answered with a close.
    c.ws.close(None).await.expect("close sent");
    assert!(matches!(c.ended().await, Ended::Closed(Some(1000))));

    // A frame the client did not mask breaks the protocol: closed with 1002.
    let (c, _) = login(&s, &alice, None).await;
    let MaybeTlsStream::Plain(mut tcp) = c.ws.into_inner() else {
        panic!("plain TCP");
    };
    tokio::io::AsyncWriteExt::write_all(&mut tcp, &[0x81, 0x02, b'h', b'i'])
        .await
        .expect("sent");
    let mut bytes = Vec::new();
    tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut bytes),
    )
    .await
    .expect("the server closes the connection")
    .expect("read");
    let code = 1002u16.to_be_bytes();
    assert!(
        bytes.windows(4).any(|w| w[0] == 0x88 && w[2..] == code),
        "close 1002 expected in {bytes:?}"
    );
}
