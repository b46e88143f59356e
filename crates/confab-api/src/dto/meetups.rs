//! Meetups and RSVPs on the wire. Times are RFC 3339 strings; meetups are numbered per room.

use super::{NameText, RsvpName, ShortText};
use confab_core::meetups::{MeetupView, RsvpCounts};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMeetupReq {
    #[schema(value_type = NameText, inline)]
    pub name: String,
    #[schema(value_type = NameText, inline)]
    pub location: String,
    /// RFC 3339, e.g. `2026-12-24T18:00:00+01:00`.
    #[schema(format = DateTime)]
    pub takes_place_on: String,
    #[schema(value_type = Option<ShortText>, inline)]
    pub image_url: Option<String>,
}

/// Fields left out keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeetupReq {
    #[schema(value_type = Option<NameText>, inline)]
    pub name: Option<String>,
    #[schema(value_type = Option<NameText>, inline)]
    pub location: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub takes_place_on: Option<String>,
    #[schema(value_type = Option<ShortText>, inline)]
    pub image_url: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RsvpReq {
    #[schema(value_type = RsvpName, inline)]
    pub rsvp: String,
}

/// How many joined members gave each answer (`none`: not answered yet).
#[derive(Debug, Serialize, ToSchema)]
pub struct RsvpCountsDto {
    pub yes: i64,
    pub no: i64,
    pub maybe: i64,
    pub none: i64,
}

impl From<RsvpCounts> for RsvpCountsDto {
    fn from(c: RsvpCounts) -> Self {
        RsvpCountsDto {
            yes: c.yes,
            no: c.no,
            maybe: c.maybe,
            none: c.none,
        }
    }
}

/// A meetup as the caller sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeetupDto {
    pub room: i64,
    pub number: i64,
    pub name: String,
    pub location: String,
    pub takes_place_on: String,
    pub image_url: Option<String>,
    pub organizer: String,
    pub created_at: String,
    pub updated_at: String,
    pub cancelled: bool,
    /// The caller's answer: `yes`, `no`, `maybe` or `none`.
    pub my_rsvp: String,
    pub counts: RsvpCountsDto,
}

impl From<&MeetupView> for MeetupDto {
    fn from(v: &MeetupView) -> Self {
        let m = &v.meetup;
        MeetupDto {
            room: v.room.0,
            number: m.number.0,
            name: m.name.clone(),
            location: m.location.clone(),
            takes_place_on: m.takes_place_on.to_rfc3339(),
            image_url: m.image_url.clone(),
            organizer: m.organizer.0.clone(),
            created_at: m.created_at.to_rfc3339(),
            updated_at: m.updated_at.to_rfc3339(),
            cancelled: m.cancelled,
            my_rsvp: v.rsvp.as_str().to_owned(),
            counts: v.counts.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeetupListDto {
    pub meetups: Vec<MeetupDto>,
    pub next_cursor: Option<String>,
}
