//! The events a batch projects in memory (`pending`) rather than row by row: sends, edits,
//! deletions, read markers, memberships (see `memberships`), room creations and settings (see
//! `rooms`), logins and sightings, meetups and polls (see `planning`).

use crate::rows;
use crate::tx::PgTx;
use confab_core::event::{Event, EventBody};
use confab_core::ids::{AppId, RoomNumber, Seq};
use confab_core::model::{Item, ItemKind};
use confab_core::store::StoreResult;

impl PgTx<'_> {
    /// Empties the text of a deleted message (see `EventBody::MessagePosted`) in the events
    /// of this transaction not yet inserted; the rows committed before are redacted by the
    /// flush (`pending`).
    pub(crate) fn redact(&mut self, app: AppId, room: RoomNumber, seq: Seq) {
        for ev in self.batch.events.iter_mut().filter(|e| e.app == app) {
            match &mut ev.body {
                EventBody::MessagePosted {
                    room: r,
                    seq: s,
                    text,
                    redacted,
                    ..
                }
                | EventBody::MessageEdited {
                    room: r,
                    seq: s,
                    text,
                    redacted,
                    ..
                } if *r == room && *s == seq => {
                    text.clear();
                    *redacted = true;
                }
                _ => {}
            }
        }
    }

    /// Projects `ev` in memory if it is one of the buffered kinds; `false` if it is not.
    pub(crate) fn buffer(&mut self, ev: &Event) -> StoreResult<bool> {
        let (app, at) = (ev.app, ev.at);
        let p = &mut self.batch.pending;
        let mut messages = 0;
        match &ev.body {
            EventBody::MessagePosted {
                room,
                seq,
                pos,
                sender,
                text,
                reply_to,
                client_id,
                ..
            } => {
                messages = 1;
                p.post(
                    app,
                    *room,
                    Item {
                        seq: *seq,
                        pos: *pos,
                        kind: ItemKind::Message,
                        sender: sender.clone(),
                        text: Some(text.clone()),
                        reply_to: *reply_to,
                        reply_count: 0,
                        created_at: at,
                        edited_at: None,
                        deleted: false,
                        announcement: None,
                        client_id: client_id.clone(),
                    },
                );
            }
            EventBody::MessageEdited {
                room,
                seq,
                pos,
                text,
                ..
            } => p.edit((app, *room, *seq), *pos, at, Some(text.clone())),
            EventBody::MessageDeleted { room, seq, pos, .. } => {
                let key = (app, *room, *seq);
                let parent = match p.reply_to(&key) {
                    Some(parent) => parent,
                    // The rules read the item first, so this is only a safety net; a parent
                    // never changes, so nothing needs writing out before this read.
                    None => {
                        let r = self.c.one(
                            "SELECT reply_to FROM items WHERE app_id = $1 AND room_no = $2
                               AND seq = $3",
                            &[&app.0, &room.0, &seq.0],
                        )?;
                        rows::get::<Option<i64>>(&r, 0)?.map(Seq)
                    }
                };
                let p = &mut self.batch.pending;
                p.edit(key, *pos, at, None);
                if let Some(parent) = parent {
                    p.unreply(app, *room, parent);
                }
                messages = -1;
            }
            EventBody::ReadMarkerSet { room, user, seq } => {
                p.mark((app, *room, user.clone()), *seq);
            }
            EventBody::Membership { .. } => self.buffer_membership(ev)?,
            EventBody::RoomCreated { .. } | EventBody::RoomUpdated { .. } => {
                self.buffer_room(ev)?
            }
            EventBody::MeetupCreated { .. }
            | EventBody::MeetupUpdated { .. }
            | EventBody::MeetupCancelled { .. }
            | EventBody::RsvpChanged { .. }
            | EventBody::PollCreated { .. }
            | EventBody::VoteCast { .. }
            | EventBody::VoteWithdrawn { .. }
            | EventBody::PollClosed { .. } => self.buffer_plan(ev)?,
            EventBody::UserSeen { user } => p.seen(app, user.clone(), at, false),
            EventBody::UserLoggedIn { user } => p.seen(app, user.clone(), at, true),
            _ => return Ok(false),
        }
        let d = self.batch.deltas.entry(app).or_default();
        d.events += 1;
        d.messages += messages;
        Ok(true)
    }
}
