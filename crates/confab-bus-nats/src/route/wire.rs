//! What nodes send each other on a write subject: a batch of commands with a deadline, and
//! the reply (a result per command in order, or a refusal of the whole batch, which then ran
//! nowhere). Serde's shapes of core's types, versioned by `v`: nodes of one deployment run
//! one version, and a node refuses any other.

use confab_core::command::{Command, Outcome};
use confab_core::error::{StoreError, WireError};
use serde::{Deserialize, Serialize};

/// The version of this format.
pub(crate) const VERSION: u32 = 1;

/// Read first, so that another version is refused by name whatever the rest looks like.
#[derive(Deserialize)]
struct Head {
    v: u32,
}

/// A batch as the writer reads it.
#[derive(Deserialize)]
pub(crate) struct Batch {
    /// Past this (Unix ms, by the writer's clock) the sender has given up: refuse the batch.
    pub(crate) deadline_ms: i64,
    pub(crate) cmds: Vec<Command>,
}

/// What the writer answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Reply {
    /// One result per command, in the batch's order.
    Results(Vec<WireResult>),
    /// The deadline had passed: nothing ran.
    Expired,
    /// The writer had too many batches in hand: nothing ran.
    Busy,
    /// Unreadable, another version, too large, or a command that is never forwarded: nothing
    /// ran.
    Refused(String),
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
pub(crate) fn request<'a>(deadline_ms: i64, cmds: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out =
        format!("{{\"v\":{VERSION},\"deadline_ms\":{deadline_ms},\"cmds\":[").into_bytes();
    for (i, cmd) in cmds.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(cmd);
    }
    out.extend_from_slice(b"]}");
    out
}

/// Reads a request: the batch, or the refusal to answer with.
pub(crate) fn parse_request(payload: &[u8]) -> Result<Batch, Reply> {
    let head: Head = serde_json::from_slice(payload)
        .map_err(|e| Reply::Refused(format!("unreadable batch: {e}")))?;
    if head.v != VERSION {
        return Err(Reply::Refused(format!(
            "batch version {} (this node reads {VERSION})",
            head.v
        )));
    }
    serde_json::from_slice(payload).map_err(|e| Reply::Refused(format!("unreadable batch: {e}")))
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
        let body = request(42, cmds.iter().map(Vec::as_slice));
        let batch = parse_request(&body).expect("readable");
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
        for r in [Reply::Expired, Reply::Busy, Reply::Refused("why".into())] {
            let text = format!("{r:?}");
            let back = parse_reply(&encode_reply(&r)).expect("readable");
            assert_eq!(format!("{back:?}"), text);
        }
    }

    #[test]
    fn garbage_and_other_versions_are_refused() {
        for body in [
            &b"garbage"[..],
            b"{}",
            b"{\"v\":1}",
            b"{\"v\":1,\"deadline_ms\":1,\"cmds\":[{\"NoSuchCommand\":{}}]}",
            b"{\"v\":2,\"deadline_ms\":1,\"cmds\":[]}",
        ] {
            assert!(
                matches!(parse_request(body), Err(Reply::Refused(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(parse_reply(b"{\"v\":2,\"reply\":\"busy\"}").is_err());
    }
}
