//! What nodes send each other on a write subject: a batch of commands with its id and a
//! deadline, or the recall of a batch by id; and the reply (a result per command in order, or
//! a refusal of the whole batch, which then ran nowhere). Serde's shapes of core's types,
//! versioned by `v`: nodes of one deployment run one version, and a node refuses any other.

use confab_core::command::{Command, Outcome};
use confab_core::error::{StoreError, WireError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The version of this format (2: batch ids and recalls).
pub(crate) const VERSION: u32 = 2;

/// A forwarded batch's id: 128 random bits chosen by the sender, 32 hex digits on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct BatchId(pub(crate) u128);

impl BatchId {
    /// A fresh id; `None` when the system has no randomness to give.
    pub(crate) fn random() -> Option<BatchId> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).ok()?;
        Some(BatchId(u128::from_le_bytes(bytes)))
    }

    fn parse(s: &str) -> Option<BatchId> {
        // `from_str_radix` alone would take a sign.
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(s, 16).ok().map(BatchId)
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl Serialize for BatchId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BatchId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BatchId::parse(&s).ok_or_else(|| serde::de::Error::custom("a batch id is 32 hex digits"))
    }
}

/// Read first, so that another version is refused by name whatever the rest looks like, and
/// a recall is told from a batch.
#[derive(Deserialize)]
struct Head {
    v: u32,
    #[serde(default)]
    recall: Option<serde::de::IgnoredAny>,
}

/// A batch as the writer reads it.
#[derive(Deserialize)]
pub(crate) struct Batch {
    pub(crate) id: BatchId,
    /// Past this (Unix ms, by the writer's clock) the sender has given up: refuse the batch.
    pub(crate) deadline_ms: i64,
    pub(crate) cmds: Vec<Command>,
}

/// What a writer is asked.
pub(crate) enum Request {
    Batch(Batch),
    /// What became of this batch (its sender lost the answer)? With the batch's deadline,
    /// which tells whether the writer may have forgotten it.
    Recall {
        id: BatchId,
        deadline_ms: i64,
    },
}

#[derive(Deserialize)]
struct RecallBody {
    recall: BatchId,
    deadline_ms: i64,
}

/// What the writer answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Reply {
    /// One result per command, in the batch's order (also the answer to a recall of a batch
    /// that ran, and to a batch sent again).
    Results(Vec<WireResult>),
    /// The deadline had passed: nothing ran.
    Expired,
    /// The writer had too many batches in hand: nothing ran.
    Busy,
    /// Unreadable, another version, too large, a command that is never forwarded, or recalled
    /// before it came: nothing ran.
    Refused(String),
    /// To a recall: the batch did not run here and never will (its id is refused from now on).
    NotRun,
    /// To a recall or a batch sent again: the batch is still running (its fate unknown yet).
    Running,
    /// To a recall: the writer no longer knows the batch (its fate unknown).
    Forgotten,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WireResult {
    Ok(Outcome),
    Err(WireError),
}

impl From<Result<Outcome, StoreError>> for WireResult {
    fn from(r: Result<Outcome, StoreError>) -> Self {
        match r {
            Ok(o) => WireResult::Ok(o),
            Err(e) => WireResult::Err(WireError::from(&e)),
        }
    }
}

impl From<WireResult> for Result<Outcome, StoreError> {
    fn from(r: WireResult) -> Self {
        match r {
            WireResult::Ok(o) => Ok(o),
            WireResult::Err(e) => Err(e.into()),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    v: u32,
    reply: T,
}

/// The request body of commands already serialized one by one (each when it was queued).
pub(crate) fn request<'a>(
    id: BatchId,
    deadline_ms: i64,
    cmds: impl Iterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut out =
        format!("{{\"v\":{VERSION},\"id\":\"{id}\",\"deadline_ms\":{deadline_ms},\"cmds\":[")
            .into_bytes();
    for (i, cmd) in cmds.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(cmd);
    }
    out.extend_from_slice(b"]}");
    out
}

/// The request body of a recall.
pub(crate) fn recall(id: BatchId, deadline_ms: i64) -> Vec<u8> {
    format!("{{\"v\":{VERSION},\"recall\":\"{id}\",\"deadline_ms\":{deadline_ms}}}").into_bytes()
}

/// Reads a request: the batch or recall, or the refusal to answer with.
pub(crate) fn parse_request(payload: &[u8]) -> Result<Request, Reply> {
    let head: Head = serde_json::from_slice(payload)
        .map_err(|e| Reply::Refused(format!("unreadable batch: {e}")))?;
    if head.v != VERSION {
        return Err(Reply::Refused(format!(
            "batch version {} (this node reads {VERSION})",
            head.v
        )));
    }
    let unreadable = |e: serde_json::Error| Reply::Refused(format!("unreadable batch: {e}"));
    if head.recall.is_some() {
        let r: RecallBody = serde_json::from_slice(payload).map_err(unreadable)?;
        return Ok(Request::Recall {
            id: r.recall,
            deadline_ms: r.deadline_ms,
        });
    }
    serde_json::from_slice(payload)
        .map(Request::Batch)
        .map_err(unreadable)
}

pub(crate) fn encode_reply(reply: &Reply) -> Vec<u8> {
    let envelope = Envelope { v: VERSION, reply };
    // Serializing these types cannot fail (no maps with non-string keys, no custom code); an
    // empty body would read as unreadable, which the sender treats as an unknown outcome.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

pub(crate) fn parse_reply(payload: &[u8]) -> Result<Reply, String> {
    let head: Head = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    if head.v != VERSION {
        return Err(format!("reply version {}", head.v));
    }
    let envelope: Envelope<Reply> = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    Ok(envelope.reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::command::SendMessage;
    use confab_core::error::{DomainError, ErrorCode};
    use confab_core::ids::{AppId, RoomNumber, UserId};

    fn send(text: &str) -> Command {
        Command::Send(SendMessage {
            app: AppId(1),
            actor: Some(UserId("alice".into())),
            room: RoomNumber(1),
            text: text.into(),
            reply_to: None,
            client_id: None,
        })
    }

    #[test]
    fn a_batch_and_its_reply_round_trip() {
        let cmds: Vec<Vec<u8>> = ["a", "b\"c"]
            .iter()
            .map(|t| serde_json::to_vec(&send(t)).expect("json"))
            .collect();
        let id = BatchId::random().expect("randomness");
        let body = request(id, 42, cmds.iter().map(Vec::as_slice));
        let Ok(Request::Batch(batch)) = parse_request(&body) else {
            panic!("a readable batch");
        };
        assert_eq!(batch.id, id);
        assert_eq!(batch.deadline_ms, 42);
        assert_eq!(batch.cmds, vec![send("a"), send("b\"c")]);

        let reply = Reply::Results(vec![
            Ok(Outcome::Done).into(),
            Err(StoreError::Domain(DomainError::new(
                ErrorCode::TextEmpty,
                "empty",
            )))
            .into(),
        ]);
        let Reply::Results(back) = parse_reply(&encode_reply(&reply)).expect("readable") else {
            panic!("results expected");
        };
        let back: Vec<Result<Outcome, StoreError>> = back.into_iter().map(Into::into).collect();
        assert!(matches!(back[0], Ok(Outcome::Done)));
        assert!(matches!(&back[1], Err(StoreError::Domain(d)) if d.code == ErrorCode::TextEmpty));
        for r in [
            Reply::Expired,
            Reply::Busy,
            Reply::Refused("why".into()),
            Reply::NotRun,
            Reply::Running,
            Reply::Forgotten,
        ] {
            let text = format!("{r:?}");
            let back = parse_reply(&encode_reply(&r)).expect("readable");
            assert_eq!(format!("{back:?}"), text);
        }
    }

    #[test]
    fn a_recall_round_trips_and_ids_are_32_hex_digits() {
        let id = BatchId((0xab << 100) | 7);
        let Ok(Request::Recall {
            id: back,
            deadline_ms,
        }) = parse_request(&recall(id, 9))
        else {
            panic!("a recall");
        };
        assert_eq!((back, deadline_ms), (id, 9));
        assert_eq!(id.to_string().len(), 32);
        assert_ne!(BatchId::random(), BatchId::random());
        for bad in [
            "",
            "7",
            "+0000000000000000000000000000007",
            "g".repeat(32).as_str(),
        ] {
            assert_eq!(BatchId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn garbage_and_other_versions_are_refused() {
        const ID: &str = "0123456789abcdef0123456789abcdef";
        let no_such = format!(
            "{{\"v\":2,\"id\":\"{ID}\",\"deadline_ms\":1,\"cmds\":[{{\"NoSuchCommand\":{{}}}}]}}"
        );
        let no_id = "{\"v\":2,\"deadline_ms\":1,\"cmds\":[]}".to_owned();
        let bad_id = "{\"v\":2,\"id\":\"xyz\",\"deadline_ms\":1,\"cmds\":[]}".to_owned();
        let bad_recall = "{\"v\":2,\"recall\":12,\"deadline_ms\":1}".to_owned();
        let recall_without_deadline = format!("{{\"v\":2,\"recall\":\"{ID}\"}}");
        let v1 = format!("{{\"v\":1,\"id\":\"{ID}\",\"deadline_ms\":1,\"cmds\":[]}}");
        for body in [
            &b"garbage"[..],
            b"{}",
            b"{\"v\":2}",
            no_such.as_bytes(),
            no_id.as_bytes(),
            bad_id.as_bytes(),
            bad_recall.as_bytes(),
            recall_without_deadline.as_bytes(),
            v1.as_bytes(),
        ] {
            assert!(
                matches!(parse_request(body), Err(Reply::Refused(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(parse_reply(b"{\"v\":1,\"reply\":\"busy\"}").is_err());
    }
}
