//! The WebSocket wire format (RFC 6455) on a plain TCP stream: the handshake's accept key,
//! server frames built once with their header (so the same bytes go to every receiver and are
//! written with one system call), and a decoder for client frames with the size limit applied
//! before a payload is buffered.

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use sha1::{Digest, Sha1};
use std::io::ErrorKind;
use tokio::net::TcpStream;

const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The `Sec-WebSocket-Accept` answer to a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// A complete server frame (final, unmasked), header included.
pub fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(payload.len() + 10);
    b.put_u8(0x80 | opcode);
    match payload.len() {
        n if n < 126 => b.put_u8(n as u8),
        n if n <= usize::from(u16::MAX) => {
            b.put_u8(126);
            b.put_u16(n as u16);
        }
        n => {
            b.put_u8(127);
            b.put_u64(n as u64);
        }
    }
    b.put_slice(payload);
    b.freeze()
}

/// A close frame with a code and a short reason.
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut payload = code.to_be_bytes().to_vec();
    // Control frames carry at most 125 bytes.
    payload.extend(reason.bytes().take(123));
    frame(OP_CLOSE, &payload)
}

/// A message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary,
    Ping(Vec<u8>),
    Pong,
    Close,
}

/// Why the client's bytes cannot be read on; each ends the connection with its close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// A frame or a message over the size limit (1009).
    TooBig,
    /// Frames that break the protocol (1002).
    Protocol,
    /// A text message that is not UTF-8 (1007).
    NotUtf8,
}

impl WireError {
    pub fn close_code(self) -> u16 {
        match self {
            WireError::TooBig => 1009,
            WireError::Protocol => 1002,
            WireError::NotUtf8 => 1007,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            WireError::TooBig => "message too big",
            WireError::Protocol => "protocol error",
            WireError::NotUtf8 => "text is not UTF-8",
        }
    }
}

/// Reads client frames out of the bytes received so far. Empty between messages (an idle
/// connection keeps no buffer).
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// A fragmented message being put together: its opcode and payload so far.
    partial: Option<(u8, Vec<u8>)>,
    max: usize,
}

/// Read this much at a time; a larger frame is read in several steps.
const READ_CHUNK: usize = 4096;

impl Decoder {
    /// `max`: the largest frame and the largest message, in bytes.
    pub fn new(max: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            partial: None,
            max,
        }
    }

    /// Appends bytes received some other way (read past the HTTP request).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Reads what the socket has without waiting: `Ok(0)` when the peer closed, `WouldBlock`
    /// when there is nothing.
    pub fn read_from(&mut self, tcp: &TcpStream) -> std::io::Result<usize> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = tcp.try_read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The next complete message in the buffer, if there is one.
    pub fn next(&mut self) -> Result<Option<Incoming>, WireError> {
        loop {
            let Some((fin, op, payload)) = self.frame()? else {
                return Ok(None);
            };
            match op {
                OP_PING => return Ok(Some(Incoming::Ping(payload))),
                OP_PONG => return Ok(Some(Incoming::Pong)),
                OP_CLOSE => return Ok(Some(Incoming::Close)),
                OP_TEXT | OP_BINARY if self.partial.is_some() => return Err(WireError::Protocol),
                OP_TEXT | OP_BINARY if !fin => self.partial = Some((op, payload)),
                OP_TEXT | OP_BINARY => return message(op, payload).map(Some),
                OP_CONTINUATION => {
                    let Some((first, mut so_far)) = self.partial.take() else {
                        return Err(WireError::Protocol);
                    };
                    if so_far.len() + payload.len() > self.max {
                        return Err(WireError::TooBig);
                    }
                    so_far.extend_from_slice(&payload);
                    if fin {
                        return message(first, so_far).map(Some);
                    }
                    self.partial = Some((first, so_far));
                }
                _ => return Err(WireError::Protocol),
            }
        }
    }

    /// Takes one complete frame off the buffer: (final, opcode, unmasked payload).
    fn frame(&mut self) -> Result<Option<(bool, u8, Vec<u8>)>, WireError> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        let op = b[0] & 0x0F;
        // No extension is negotiated, so the reserved bits must be clear; clients must mask.
        if b[0] & 0x70 != 0 || b[1] & 0x80 == 0 {
            return Err(WireError::Protocol);
        }
        let (len, mut at) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            126 | 127 => return Ok(None),
            n => (u64::from(n), 2),
        };
        let control = op & 0x08 != 0;
        if control && (!fin || len > 125) {
            return Err(WireError::Protocol);
        }
        // Refused before any of the payload is buffered.
        if len > self.max as u64 {
            return Err(WireError::TooBig);
        }
        let len = len as usize;
        if b.len() < at + 4 + len {
            return Ok(None);
        }
        let mask = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        at += 4;
        let payload: Vec<u8> = b[at..at + len]
            .iter()
            .enumerate()
            .map(|(i, v)| v ^ mask[i % 4])
            .collect();
        self.buf.drain(..at + len);
        if self.buf.is_empty() && self.buf.capacity() > READ_CHUNK {
            self.buf = Vec::new();
        }
        Ok(Some((fin, op, payload)))
    }
}

fn message(op: u8, payload: Vec<u8>) -> Result<Incoming, WireError> {
    if op == OP_BINARY {
        return Ok(Incoming::Binary);
    }
    String::from_utf8(payload)
        .map(Incoming::Text)
        .map_err(|_| WireError::NotUtf8)
}

/// Writes all of `bytes`, waiting for the socket as needed.
pub async fn write_all(tcp: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        tcp.writable().await?;
        match tcp.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked with `key`.
    fn client(fin: bool, op: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | op];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend((n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend((n as u64).to_be_bytes());
            }
        }
        f.extend(key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    #[test]
    fn the_accept_key_is_the_one_of_the_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn server_frames_have_the_right_length_form() {
        assert_eq!(&frame(OP_TEXT, b"hi")[..], &[0x81, 2, b'h', b'i']);
        let mid = frame(OP_TEXT, &[b'a'; 300]);
        assert_eq!(&mid[..4], &[0x81, 126, 1, 44]);
        assert_eq!(mid.len(), 304);
        let big = frame(OP_TEXT, &vec![b'a'; 70_000]);
        assert_eq!(&big[..2], &[0x81, 127]);
        assert_eq!(big.len(), 70_010);
        assert_eq!(
            &close(4008, "slow")[..],
            &[0x88, 6, 0x0F, 0xA8, b's', b'l', b'o', b'w']
        );
    }

    #[test]
    fn frames_are_decoded_whole_byte_by_byte_and_in_fragments() {
        let mut d = Decoder::new(1 << 20);
        let mut bytes = client(true, OP_TEXT, "héllo".as_bytes(), [1, 2, 3, 4]);
        bytes.extend(client(false, OP_TEXT, b"ab", [9, 9, 9, 9]));
        bytes.extend(client(true, OP_PING, b"p", [5, 6, 7, 8]));
        bytes.extend(client(false, OP_CONTINUATION, &[b'c'; 300], [7, 0, 7, 0]));
        bytes.extend(client(true, OP_CONTINUATION, b"d", [0, 0, 0, 1]));
        bytes.extend(client(true, OP_BINARY, b"\x00\x01", [3, 3, 3, 3]));
        bytes.extend(client(true, OP_CLOSE, &[3, 232], [1, 1, 1, 1]));
        let mut got = Vec::new();
        for b in bytes {
            d.extend(&[b]);
            while let Some(m) = d.next().expect("valid") {
                got.push(m);
            }
        }
        let long = format!("ab{}d", "c".repeat(300));
        assert_eq!(
            got,
            vec![
                Incoming::Text("héllo".into()),
                Incoming::Ping(b"p".to_vec()),
                Incoming::Text(long),
                Incoming::Binary,
                Incoming::Close,
            ]
        );
        assert!(d.buf.is_empty());
    }

    #[test]
    fn bad_frames_are_refused_with_their_reason() {
        let refuse = |bytes: Vec<u8>, max: usize| {
            let mut d = Decoder::new(max);
            d.extend(&bytes);
            d.next().expect_err("refused")
        };
        // Unmasked.
        assert_eq!(refuse(vec![0x81, 0x01, b'a'], 100), WireError::Protocol);
        // A reserved bit.
        let mut rsv = client(true, OP_TEXT, b"a", [1, 1, 1, 1]);
        rsv[0] |= 0x40;
        assert_eq!(refuse(rsv, 100), WireError::Protocol);
        // An unknown opcode, a fragmented or long control frame, a stray continuation.
        assert_eq!(
            refuse(client(true, 0x3, b"", [0; 4]), 100),
            WireError::Protocol
        );
        assert_eq!(
            refuse(client(false, OP_PING, b"", [0; 4]), 100),
            WireError::Protocol
        );
        assert_eq!(
            refuse(client(true, OP_PING, &[0; 126], [0; 4]), 1000),
            WireError::Protocol
        );
        assert_eq!(
            refuse(client(true, OP_CONTINUATION, b"x", [0; 4]), 100),
            WireError::Protocol
        );
        // A new message inside a fragmented one.
        let mut two = client(false, OP_TEXT, b"a", [0; 4]);
        two.extend(client(true, OP_TEXT, b"b", [0; 4]));
        assert_eq!(refuse(two, 100), WireError::Protocol);
        // Not UTF-8.
        assert_eq!(
            refuse(client(true, OP_TEXT, &[0xff, 0xfe], [2; 4]), 100),
            WireError::NotUtf8
        );
        // Over the limit: told from the header alone, and for a message of many frames.
        assert_eq!(
            refuse(vec![0x81, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0], 100),
            WireError::TooBig
        );
        let mut many = client(false, OP_TEXT, &[b'a'; 60], [0; 4]);
        many.extend(client(true, OP_CONTINUATION, &[b'a'; 60], [0; 4]));
        assert_eq!(refuse(many, 100), WireError::TooBig);
    }

    #[test]
    fn arbitrary_bytes_are_refused_or_decoded_never_a_panic() {
        // A fixed xorshift sequence: the same inputs on every run.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let mut d = Decoder::new(256);
            for _ in 0..20 {
                let len = (next() % 64) as usize;
                let mut chunk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                // Often a plausible header, so that deeper paths are reached too.
                if let Some(first) = chunk.first_mut()
                    && next() % 2 == 0
                {
                    *first = 0x80 | (next() % 11) as u8;
                }
                if chunk.len() > 1 && next() % 2 == 0 {
                    chunk[1] = 0x80 | (next() % 128) as u8;
                }
                d.extend(&chunk);
                if d.next().is_err() {
                    break;
                }
            }
        }
    }
}
