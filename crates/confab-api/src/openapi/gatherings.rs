//! The OpenAPI rows of meetups, polls and alerts (issue 13), kept apart so the main table stays
//! readable; [`super::routes`] appends them.

use super::Caller::User;
use super::{Route, r};
use crate::dto::{
    AlertDto, AlertListDto, CreateMeetupReq, CreatePollReq, MeetupDto, MeetupListDto, PollDto,
    PollListDto, RsvpCountsDto, RsvpReq, UpdateMeetupReq, VoteReq,
};
use utoipa::openapi::ComponentsBuilder;
use utoipa::openapi::path::HttpMethod::{Delete as D, Get as G, Patch as PA, Post as P, Put as PU};

const PAGE: &[&str] = &["cursor", "limit"];

pub(super) fn routes() -> Vec<Route> {
    vec![
        r(
            G,
            "/v1/me/meetups",
            "My upcoming meetups across the rooms I have joined, soonest first",
            User,
            None,
            "200",
            Some("MeetupListDto"),
            PAGE,
        ),
        r(
            G,
            "/v1/me/alerts",
            "My alerts: open polls I may vote on and have not (pending_poll, \
             pending_reschedule_poll, pending_relocation_poll), by room and poll",
            User,
            None,
            "200",
            Some("AlertListDto"),
            PAGE,
        ),
        r(
            P,
            "/v1/rooms/{number}/meetups",
            "Plan a meetup (joined members); the organizer's RSVP starts at yes",
            User,
            Some("CreateMeetupReq"),
            "201",
            Some("MeetupDto"),
            &[],
        ),
        r(
            G,
            "/v1/rooms/{number}/meetups",
            "The room's meetups, soonest first: upcoming ones (default) or `scope=all`, with my \
             RSVP and the counts of each answer",
            User,
            None,
            "200",
            Some("MeetupListDto"),
            &["scope", "cursor", "limit"],
        ),
        r(
            G,
            "/v1/rooms/{number}/meetups/{meetup}",
            "One meetup with my RSVP and the counts",
            User,
            None,
            "200",
            Some("MeetupDto"),
            &[],
        ),
        r(
            PA,
            "/v1/rooms/{number}/meetups/{meetup}",
            "Edit name, location, time or image (the organizer or a room admin); a move is \
             announced",
            User,
            Some("UpdateMeetupReq"),
            "200",
            Some("MeetupDto"),
            &[],
        ),
        r(
            D,
            "/v1/rooms/{number}/meetups/{meetup}",
            "Cancel the meetup (the organizer or a room admin); its open polls close",
            User,
            None,
            "200",
            Some("MeetupDto"),
            &[],
        ),
        r(
            PU,
            "/v1/rooms/{number}/meetups/{meetup}/rsvp",
            "Answer a meetup (joined members): yes, no, maybe or none",
            User,
            Some("RsvpReq"),
            "200",
            Some("MeetupDto"),
            &[],
        ),
        r(
            P,
            "/v1/rooms/{number}/polls",
            "Create a poll (joined members); its eligible voters are fixed now",
            User,
            Some("CreatePollReq"),
            "201",
            Some("PollDto"),
            &[],
        ),
        r(
            G,
            "/v1/rooms/{number}/polls",
            "The room's polls, open ones first, newest first in each group",
            User,
            None,
            "200",
            Some("PollListDto"),
            PAGE,
        ),
        r(
            G,
            "/v1/rooms/{number}/polls/{poll}",
            "One poll: status, outcome, tallies (an undisclosed poll's only once closed), my \
             vote, the eligible voters",
            User,
            None,
            "200",
            Some("PollDto"),
            &[],
        ),
        r(
            PU,
            "/v1/rooms/{number}/polls/{poll}/vote",
            "Vote (eligible voters, open polls): the whole vote, replacing any earlier one; \
             empty withdraws it. The last missing vote closes the poll",
            User,
            Some("VoteReq"),
            "200",
            Some("PollDto"),
            &[],
        ),
        r(
            P,
            "/v1/rooms/{number}/polls/{poll}/close",
            "Close the poll now (its creator, the meetup's organizer or a room admin)",
            User,
            None,
            "200",
            Some("PollDto"),
            &[],
        ),
    ]
}

/// The schemas these rows name.
pub(super) fn schemas(components: ComponentsBuilder) -> ComponentsBuilder {
    components
        .schema_from::<CreateMeetupReq>()
        .schema_from::<UpdateMeetupReq>()
        .schema_from::<RsvpReq>()
        .schema_from::<RsvpCountsDto>()
        .schema_from::<MeetupDto>()
        .schema_from::<MeetupListDto>()
        .schema_from::<CreatePollReq>()
        .schema_from::<VoteReq>()
        .schema_from::<PollDto>()
        .schema_from::<PollListDto>()
        .schema_from::<AlertDto>()
        .schema_from::<AlertListDto>()
}
