//! Messages: sends (idempotent by client id), edits, deletions and read markers.

use super::load::{load_room, message, next, require_joined};
use crate::command::{DeleteMessage, EditMessage, MarkRead, Outcome, SendMessage};
use crate::error::{DomainError, ErrorCode};
use crate::event::EventBody;
use crate::ids::Pos;
use crate::model::{Item, ItemKind, Role};
use crate::store::{StoreResult, Tx};

pub(super) fn send(tx: &mut dyn Tx, cmd: SendMessage) -> StoreResult<Outcome> {
    let SendMessage {
        app,
        actor,
        room,
        text,
        reply_to,
        client_id,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    if let Some(a) = &actor {
        require_joined(tx, app, &rs, a)?;
    }
    if let Some(cid) = &client_id
        && let Some(item) = tx.item_by_client_id(app, room, actor.as_ref(), cid)?
    {
        if item.text.as_deref() == Some(text.as_str()) && item.reply_to == reply_to {
            return Ok(Outcome::Item {
                item,
                created: false,
            });
        }
        return Err(DomainError::new(
            ErrorCode::ClientIdReused,
            "this client_id was already used for a different message",
        )
        .into());
    }
    if let Some(parent) = reply_to {
        match tx.item(app, room, parent)? {
            None => {
                return Err(DomainError::new(
                    ErrorCode::ReplyTargetNotFound,
                    "reply_to does not name a message of this room",
                )
                .into());
            }
            Some(p) if p.kind != ItemKind::Message => {
                return Err(DomainError::new(
                    ErrorCode::NotAMessage,
                    "replies must point to a message",
                )
                .into());
            }
            Some(p) if p.deleted => {
                return Err(DomainError::new(
                    ErrorCode::MessageDeleted,
                    "the message replied to was deleted",
                )
                .into());
            }
            Some(_) => {}
        }
    }
    let (seq, pos) = next(&rs);
    let event = tx.append(
        app,
        EventBody::MessagePosted {
            room,
            seq,
            pos,
            sender: actor.clone(),
            text: text.clone(),
            reply_to,
            client_id: client_id.clone(),
            redacted: false,
        },
    )?;
    // A new message is exactly what its event says; no need to read it back.
    let item = Item {
        seq,
        pos,
        kind: ItemKind::Message,
        sender: actor,
        text: Some(text),
        reply_to,
        reply_count: 0,
        created_at: event.at,
        edited_at: None,
        deleted: false,
        announcement: None,
        client_id,
    };
    Ok(Outcome::Item {
        item,
        created: true,
    })
}

pub(super) fn edit(tx: &mut dyn Tx, cmd: EditMessage) -> StoreResult<Outcome> {
    let EditMessage {
        app,
        actor,
        room,
        seq,
        text,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    require_joined(tx, app, &rs, &actor)?;
    let item = message(tx, app, room, seq)?;
    if item.sender.as_ref() != Some(&actor) {
        return Err(DomainError::not_allowed("only the sender may edit a message").into());
    }
    if item.deleted {
        return Err(DomainError::new(ErrorCode::MessageDeleted, "the message was deleted").into());
    }
    if item.text.as_deref() != Some(text.as_str()) {
        let pos = Pos(rs.room.last_pos.0 + 1);
        tx.append(
            app,
            EventBody::MessageEdited {
                room,
                seq,
                pos,
                text,
                redacted: false,
            },
        )?;
    }
    Ok(Outcome::Item {
        item: message(tx, app, room, seq)?,
        created: false,
    })
}

pub(super) fn delete(tx: &mut dyn Tx, cmd: DeleteMessage) -> StoreResult<Outcome> {
    let DeleteMessage {
        app,
        actor,
        room,
        seq,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    let me = require_joined(tx, app, &rs, &actor)?;
    let item = message(tx, app, room, seq)?;
    if item.sender.as_ref() != Some(&actor) && me.role < Role::Admin {
        return Err(
            DomainError::not_allowed("only the sender or an admin may delete a message").into(),
        );
    }
    if !item.deleted {
        let pos = Pos(rs.room.last_pos.0 + 1);
        tx.append(
            app,
            EventBody::MessageDeleted {
                room,
                seq,
                pos,
                by: Some(actor),
            },
        )?;
    }
    Ok(Outcome::Item {
        item: message(tx, app, room, seq)?,
        created: false,
    })
}

pub(super) fn mark_read(tx: &mut dyn Tx, cmd: MarkRead) -> StoreResult<Outcome> {
    let MarkRead {
        app,
        actor,
        room,
        seq,
    } = cmd;
    let rs = load_room(tx, app, room)?;
    let me = require_joined(tx, app, &rs, &actor)?;
    if seq.0 < 0 || seq > rs.room.last_seq {
        return Err(DomainError::new(
            ErrorCode::SeqOutOfRange,
            format!("seq must be between 0 and {}", rs.room.last_seq),
        )
        .into());
    }
    if seq <= me.read_seq {
        return Ok(Outcome::ReadMarker(me.read_seq));
    }
    tx.append(
        app,
        EventBody::ReadMarkerSet {
            room,
            user: actor,
            seq,
        },
    )?;
    Ok(Outcome::ReadMarker(seq))
}
