//! Room creations and setting changes projected in memory, as `projection::rooms` writes them
//! one event at a time: a new room's row as created (inserted by the flush before anything
//! moves it), new settings, and the announcement items these and membership events put in
//! the timeline. The transaction's cache of the room follows, so later commands read it from
//! memory; a new room is also found by number, alias and pair before it is written
//! (`PgTx::last_room_number`, `room_by_alias`, `direct_room`).

use crate::projection::missing;
use crate::tx::PgTx;
use confab_core::error::StoreError;
use confab_core::event::{Event, EventBody};
use confab_core::ids::{Seq, UserId};
use confab_core::model::{Item, ItemKind, Room};
use confab_core::rules::announcement;
use confab_core::store::{RoomState, StoreResult, Tx};

impl PgTx<'_> {
    /// Projects `ev`, a `RoomCreated` or `RoomUpdated` event, in memory.
    pub(crate) fn buffer_room(&mut self, ev: &Event) -> StoreResult<()> {
        let (app, at) = (ev.app, ev.at);
        match &ev.body {
            EventBody::RoomCreated {
                room,
                kind,
                name,
                image_url,
                visibility,
                alias,
                creator,
                direct,
                pos,
                seq,
            } => {
                let mut state = RoomState {
                    room: Room {
                        number: *room,
                        kind: *kind,
                        name: name.clone(),
                        image_url: image_url.clone(),
                        visibility: *visibility,
                        alias: alias.clone(),
                        creator: creator.clone(),
                        created_at: at,
                        updated_at: at,
                        member_count: 0,
                        messages_count: 0,
                        last_seq: Seq(0),
                        last_pos: *pos,
                        deleted: false,
                    },
                    direct: direct.clone(),
                };
                self.batch.pending.create_room(app, state.clone());
                self.batch.created.insert((app, *room));
                self.batch.deltas.entry(app).or_default().rooms += 1;
                if let Some(seq) = seq {
                    self.announce(ev, *seq, creator.as_ref())?;
                    state.room.last_seq = *seq;
                }
                self.batch.rooms.insert((app, *room), state);
            }
            EventBody::RoomUpdated {
                room,
                by,
                name,
                image_url,
                visibility,
                pos,
                seq,
            } => {
                // In the cache: the rules read it, and a room with buffered writes never
                // leaves it.
                let mut rs = self.room(app, *room)?.ok_or_else(|| missing("room row"))?;
                let r = &mut rs.room;
                r.name = name.clone().or(r.name.take());
                r.image_url = image_url.clone().or(r.image_url.take());
                r.visibility = visibility.unwrap_or(r.visibility);
                r.updated_at = at;
                r.last_pos = *pos;
                self.batch.pending.update_room(
                    (app, *room),
                    *pos,
                    at,
                    (name.clone(), image_url.clone(), *visibility),
                );
                if let Some(seq) = seq {
                    self.announce(ev, *seq, Some(by))?;
                    rs.room.last_seq = *seq;
                }
                self.batch.rooms.insert((app, *room), rs);
            }
            other => {
                return Err(StoreError::internal(format!(
                    "rooms: {} is not a room creation or change",
                    other.type_name()
                )));
            }
        }
        Ok(())
    }

    /// Records the announcement item `ev` puts in its room's timeline at `seq`, made by `by`
    /// (as `projection::announce` writes it).
    pub(crate) fn announce(
        &mut self,
        ev: &Event,
        seq: Seq,
        by: Option<&UserId>,
    ) -> StoreResult<()> {
        let (text, data) = announcement(&ev.body).ok_or_else(|| missing("announcement text"))?;
        let (room, pos) = ev.body.room_pos().ok_or_else(|| missing("room position"))?;
        self.batch.pending.announce(
            ev.app,
            room,
            Item {
                seq,
                pos,
                kind: ItemKind::Announcement,
                sender: by.cloned(),
                text: Some(text),
                reply_to: None,
                reply_count: 0,
                created_at: ev.at,
                edited_at: None,
                deleted: false,
                announcement: Some(data),
                client_id: None,
            },
        );
        Ok(())
    }
}
