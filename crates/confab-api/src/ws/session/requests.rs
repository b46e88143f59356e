//! The client's requests on an open connection: send, typing, read, resume, ping. A send is
//! the same operation as the REST send (same validation, rules, idempotency and per-user rate
//! limit: REST and the socket draw from one budget). A resume replays from the store, so it
//! draws from that budget too, in proportion to what it would replay.

use super::{End, Session, parse_resume};
use crate::error::ApiError;
use crate::limit;
use crate::ws::protocol::{self, ClientFrame};
use confab_core::bus::BusMessage;
use confab_core::command::{MarkRead, SendMessage};
use confab_core::ids::{Pos, RoomNumber, Seq};
use confab_core::{Command, DomainError, ErrorCode, Outcome};
use serde_json::json;
use std::time::{Duration, Instant};

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
                Err(SendError::Limited(wait)) => protocol::rate_limited(
                    &reference,
                    limit::wait_ms(wait),
                    "too many sends, retry later",
                ),
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
                let cmd = Command::MarkRead(MarkRead {
                    app: self.app,
                    actor: self.user.clone(),
                    room: RoomNumber(room),
                    seq: Seq(seq),
                });
                match self.state.execute(cmd).await {
                    Ok(Outcome::ReadMarker(s)) => {
                        protocol::ack(&reference, json!({"room": room, "read_seq": s.0}))
                    }
                    Ok(_) => protocol::error(&ApiError::internal(), &reference),
                    Err(e) => protocol::error(&ApiError::from(e), &reference),
                }
            }
            ClientFrame::Resume { rooms, reference } => {
                let wanted: Vec<(RoomNumber, Pos, Pos)> = parse_resume(&rooms)
                    .into_iter()
                    .filter_map(|(room, from)| {
                        let c = self.conn.cursor(room).filter(|c| c.member)?;
                        Some((room, from, c.pos))
                    })
                    .collect();
                // Metered before anything is read: a refused resume replays nothing.
                match self.meter_replay(wanted.iter().map(|w| (w.1, w.2))) {
                    Err(wait) => protocol::rate_limited(
                        &reference,
                        limit::wait_ms(wait),
                        "too many resumes, retry later",
                    ),
                    Ok(()) => {
                        for (room, from, to) in wanted {
                            self.replay(room, from, to).await?;
                        }
                        protocol::ack(&reference, json!({}))
                    }
                }
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
        let limits = &self.state.limits;
        limits.app(self.app).map_err(SendError::Limited)?;
        limits
            .write(self.app, &self.user)
            .map_err(SendError::Limited)?;
        let cmd = Command::Send(SendMessage {
            app: self.app,
            actor: Some(self.user.clone()),
            room: RoomNumber(room),
            text,
            reply_to: reply_to.map(Seq),
            client_id,
        });
        match self.state.execute(cmd).await.map_err(ApiError::from)? {
            Outcome::Item { item, created } => Ok((item.seq, item.pos, created)),
            _ => Err(SendError::Api(ApiError::internal())),
        }
    }

    /// Charges a replay of these `(from, to)` ranges to the user's sends budget (and one
    /// request to the app's): a unit for the request, one per room with something to replay,
    /// and one per [`limit::REPLAYED_PER_TOKEN`] changes. Cost follows the work and the bytes
    /// a replay makes, so looping a resume of a long room is throttled hardest. A room past
    /// the resume cap gets a `reset`, which costs only its room.
    pub(super) fn meter_replay(
        &self,
        ranges: impl Iterator<Item = (Pos, Pos)>,
    ) -> Result<(), Duration> {
        let cap = self.gw.config().resume_cap;
        let (mut rooms, mut changes) = (0u64, 0u64);
        for (from, to) in ranges {
            let backlog = u64::try_from(to.0.saturating_sub(from.0.max(0))).unwrap_or(0);
            if backlog > 0 {
                rooms += 1;
                if backlog <= cap {
                    changes = changes.saturating_add(backlog);
                }
            }
        }
        self.state.limits.app(self.app)?;
        self.state
            .limits
            .replay(self.app, &self.user, rooms, changes)
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
    Limited(Duration),
    Api(ApiError),
}

impl From<ApiError> for SendError {
    fn from(e: ApiError) -> Self {
        SendError::Api(e)
    }
}
