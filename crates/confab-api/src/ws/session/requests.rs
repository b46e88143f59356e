//! The client's requests on an open connection: send, typing, read, resume, ping. A send is
//! the same operation as the REST send (same validation, rules and idempotency), plus the
//! per-user rate limit of the socket.

use super::{End, Session, parse_resume};
use crate::error::ApiError;
use crate::ws::protocol::{self, ClientFrame};
use confab_core::bus::BusMessage;
use confab_core::ids::{Pos, RoomNumber, Seq};
use confab_core::{Command, DomainError, ErrorCode, Outcome, validate};
use serde_json::json;
use std::time::Instant;

impl Session {
    pub(super) async fn request(&mut self, text: &str) -> Result<(), End> {
        let frame = match ClientFrame::parse(text) {
            Ok(f) => f,
            Err((e, reference)) => return self.write(&protocol::error(&e, &reference)).await,
        };
        let answer = match frame {
            ClientFrame::Auth { .. } => protocol::error(
                &ApiError::bad_request("invalid_frame", "already authenticated"),
                &None,
            ),
            ClientFrame::Send {
                room,
                text,
                reply_to,
                client_id,
                reference,
            } => match self.send(room, text, reply_to, client_id).await {
                Ok((seq, pos, created)) => protocol::ack_send(&reference, seq, pos, created),
                Err(SendError::Limited(ms)) => protocol::rate_limited(&reference, ms),
                Err(SendError::Api(e)) => protocol::error(&e, &reference),
            },
            ClientFrame::Typing { room, reference } => match self.typing(RoomNumber(room)) {
                Ok(()) => return Ok(()),
                Err(e) => protocol::error(&e, &reference),
            },
            ClientFrame::Read {
                room,
                seq,
                reference,
            } => {
                let cmd = Command::MarkRead {
                    app: self.app,
                    actor: self.user.clone(),
                    room: RoomNumber(room),
                    seq: Seq(seq),
                };
                match self.state.store.execute(cmd).await {
                    Ok(Outcome::ReadMarker(s)) => {
                        protocol::ack(&reference, json!({"room": room, "read_seq": s.0}))
                    }
                    Ok(_) => protocol::error(&ApiError::internal(), &reference),
                    Err(e) => protocol::error(&ApiError::from(e), &reference),
                }
            }
            ClientFrame::Resume { rooms, reference } => {
                for (room, from) in parse_resume(&rooms) {
                    if let Some(c) = self.conn.cursor(room) {
                        self.replay(room, from, c.pos).await?;
                    }
                }
                protocol::ack(&reference, json!({}))
            }
            ClientFrame::Ping { reference } => protocol::pong(&reference),
        };
        self.write(&answer).await
    }

    async fn send(
        &mut self,
        room: i64,
        text: String,
        reply_to: Option<i64>,
        client_id: Option<String>,
    ) -> Result<(Seq, Pos, bool), SendError> {
        validate::text(&text, &self.state.config.limits).map_err(ApiError::from)?;
        if let Some(c) = &client_id {
            validate::client_id(c).map_err(ApiError::from)?;
        }
        self.gw
            .take_send(self.app, &self.user)
            .map_err(SendError::Limited)?;
        let cmd = Command::Send {
            app: self.app,
            actor: Some(self.user.clone()),
            room: RoomNumber(room),
            text,
            reply_to: reply_to.map(Seq),
            client_id,
        };
        match self
            .state
            .store
            .execute(cmd)
            .await
            .map_err(ApiError::from)?
        {
            Outcome::Item { item, created } => Ok((item.seq, item.pos, created)),
            _ => Err(SendError::Api(ApiError::internal())),
        }
    }

    fn typing(&mut self, room: RoomNumber) -> Result<(), ApiError> {
        if !self.conn.cursor(room).is_some_and(|c| c.member) {
            return Err(DomainError::new(
                ErrorCode::NotAMember,
                "you are not a member of this room",
            )
            .into());
        }
        // At most one notice per room per half life of a notice; extra ones are dropped.
        let now = Instant::now();
        let quiet = self.gw.config().typing_ttl / 2;
        if self
            .typing
            .get(&room)
            .is_some_and(|t| now.duration_since(*t) < quiet)
        {
            return Ok(());
        }
        self.typing.insert(room, now);
        self.gw.bus().publish(BusMessage::Typing {
            app: self.app,
            room,
            user: self.user.clone(),
        });
        Ok(())
    }
}

enum SendError {
    Limited(u64),
    Api(ApiError),
}

impl From<ApiError> for SendError {
    fn from(e: ApiError) -> Self {
        SendError::Api(e)
    }
}
