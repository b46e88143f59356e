//! Conformance cases for meetups and RSVPs: numbering and announcements, the upcoming
//! listing and its paging, edits by the organizer or an admin, cancellation, RSVP counts and
//! `my_meetups`.

use super::support::*;
use super::{app_with_users, group};
use crate::command::{Command, UpdateMeetup};
use crate::error::ErrorCode;
use crate::event::EventBody;
use crate::ids::{AppId, MeetupNumber, Pos, RoomNumber, Timestamp};
use crate::meetups::{MeetupQuery, MeetupView, Rsvp, RsvpCounts};
use crate::model::Visibility;
use crate::store::Store;
use std::sync::Arc;

fn counts(yes: i64, no: i64, maybe: i64, none: i64) -> RsvpCounts {
    RsvpCounts {
        yes,
        no,
        maybe,
        none,
    }
}

/// Every meetup of a room, following cursors in pages of `limit`; also the page sizes.
async fn list_all(
    store: &Arc<dyn Store>,
    app: AppId,
    room: RoomNumber,
    viewer: &str,
    upcoming: bool,
    now: Timestamp,
    limit: usize,
) -> (Vec<MeetupView>, Vec<usize>) {
    let (mut out, mut sizes): (Vec<MeetupView>, Vec<usize>) = (Vec::new(), Vec::new());
    loop {
        let query = MeetupQuery {
            upcoming,
            now,
            after: out
                .last()
                .map(|v| (v.meetup.takes_place_on, v.meetup.number)),
        };
        let page = store
            .meetups(app, room, &uid(viewer), query, limit)
            .await
            .expect("meetups");
        sizes.push(page.rows.len());
        out.extend(page.rows);
        if !page.has_more {
            return (out, sizes);
        }
        assert!(sizes.len() < 100, "paging does not end");
    }
}

/// Meetups are numbered 1..n per room; the organizer answers `yes`; creation is an
/// announcement in the timeline and a change at the room's next position; a non-member
/// creates nothing.
pub async fn meetups_are_numbered_and_announced(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "mnum", 4).await;
    let room = group(&store, app, "u0", &["u1", "u2"], Visibility::Private).await;
    let other = group(&store, app, "u1", &["u0"], Visibility::Private).await;
    let at = Timestamp(Timestamp::now().0 + 2 * DAY);
    let before = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room")
        .room;
    let log_before = log_len(&store, app).await;
    assert_eq!(
        meetup(&store, app, "u1", room, "picnic", at).await,
        MeetupNumber(1)
    );
    assert_eq!(
        meetup(&store, app, "u0", room, "walk", at).await,
        MeetupNumber(2)
    );
    assert_eq!(
        meetup(&store, app, "u0", other, "dinner", at).await,
        MeetupNumber(1)
    );

    let v = view(&store, app, room, MeetupNumber(1), "u1").await;
    assert_eq!(v.room, room);
    assert_eq!(v.meetup.name, "picnic");
    assert_eq!(v.meetup.location, "picnic place");
    assert_eq!(v.meetup.takes_place_on, at);
    assert_eq!(v.meetup.organizer, uid("u1"));
    assert!(!v.meetup.cancelled);
    assert_eq!(v.meetup.created_at, v.meetup.updated_at);
    assert_eq!(v.rsvp, Rsvp::Yes, "the organizer starts at yes");
    assert_eq!(v.counts, counts(1, 0, 0, 2));
    assert_eq!(
        view(&store, app, room, MeetupNumber(1), "u0").await.rsvp,
        Rsvp::None
    );
    assert_eq!(
        view(&store, app, other, MeetupNumber(1), "u1")
            .await
            .meetup
            .name,
        "dinner"
    );

    // Two announcements in the room, each a change at the next position with its item.
    let items = timeline(&store, app, room).await;
    let last_two: Vec<String> = items[items.len() - 2..].iter().map(announced).collect();
    assert_eq!(last_two, ["meetup_created", "meetup_created"]);
    let a = items[items.len() - 2].announcement.as_ref().expect("data");
    assert_eq!(a["meetup"], 1);
    assert_eq!(a["by"], "u1");
    let after = store
        .access(app, room, None)
        .await
        .expect("access")
        .expect("room")
        .room;
    assert_eq!(after.last_seq.0, before.last_seq.0 + 2);
    assert_eq!(after.last_pos.0, before.last_pos.0 + 2);
    let changes = all_changes(&store, app, room).await;
    let c = &changes[changes.len() - 2];
    assert_eq!(c.pos, Pos(before.last_pos.0 + 1));
    match &c.body {
        EventBody::MeetupCreated {
            meetup,
            pos,
            seq,
            organizer,
            ..
        } => {
            assert_eq!(
                (*meetup, *pos, organizer),
                (MeetupNumber(1), c.pos, &uid("u1"))
            );
            assert_eq!(c.item.as_ref().map(|i| i.seq), Some(*seq));
        }
        other => panic!("expected the meetup's creation, got {other:?}"),
    }
    let logged: Vec<&'static str> = events_since(&store, app, log_before)
        .await
        .iter()
        .map(|e| e.body.type_name())
        .collect();
    assert_eq!(logged, ["meetup_created"; 3]);

    // A non-member (private room: not found) and an unknown room create nothing.
    refused(
        &store,
        app,
        room,
        new_meetup(app, "u3", room, "x", at),
        ErrorCode::RoomNotFound,
    )
    .await;
    refused(
        &store,
        app,
        room,
        new_meetup(app, "u0", RoomNumber(99), "x", at),
        ErrorCode::RoomNotFound,
    )
    .await;
    assert_eq!(
        meetup(&store, app, "u2", room, "third", at).await,
        MeetupNumber(3)
    );
    assert_eq!(
        store
            .meetup(app, room, MeetupNumber(4), &uid("u0"))
            .await
            .expect("meetup"),
        None
    );
}

/// The upcoming listing leaves out past and cancelled meetups, goes soonest first (number
/// breaks ties) and pages by cursor without loss or repeat; the full listing has them all.
pub async fn meetups_list_upcoming_first(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "mlist", 2).await;
    let room = group(&store, app, "u0", &["u1"], Visibility::Private).await;
    let now = Timestamp::now();
    let mut want = Vec::new();
    for (i, days) in [5i64, 1, 3, 7, 2, 3, 6].into_iter().enumerate() {
        let at = Timestamp(now.0 + days * DAY);
        let m = meetup(&store, app, "u0", room, &format!("m{i}"), at).await;
        want.push((at, m));
    }
    let past = meetup(&store, app, "u1", room, "past", Timestamp(now.0 - DAY)).await;
    let gone = meetup(&store, app, "u1", room, "gone", Timestamp(now.0 + 4 * DAY)).await;
    run(&store, cancel(app, "u1", room, gone)).await;
    want.sort();
    let (upcoming, sizes) = list_all(&store, app, room, "u1", true, now, 3).await;
    let got: Vec<_> = upcoming
        .iter()
        .map(|v| (v.meetup.takes_place_on, v.meetup.number))
        .collect();
    assert_eq!(got, want, "upcoming, soonest first");
    assert_eq!(sizes, [3, 3, 1]);
    assert!(
        upcoming
            .iter()
            .all(|v| v.rsvp == Rsvp::None && v.room == room)
    );
    // Every meetup, the past and the cancelled included.
    let (every, _) = list_all(&store, app, room, "u0", false, now, 4).await;
    let mut all = want.clone();
    all.push((Timestamp(now.0 - DAY), past));
    all.push((Timestamp(now.0 + 4 * DAY), gone));
    all.sort();
    let got: Vec<_> = every
        .iter()
        .map(|v| (v.meetup.takes_place_on, v.meetup.number))
        .collect();
    assert_eq!(got, all);
    assert!(
        every
            .iter()
            .any(|v| v.meetup.cancelled && v.meetup.number == gone)
    );
    // A later `now` leaves out what took place before it.
    let later = Timestamp(now.0 + 3 * DAY);
    let (rest, _) = list_all(&store, app, room, "u0", true, later, 10).await;
    let got: Vec<_> = rest
        .iter()
        .map(|v| (v.meetup.takes_place_on, v.meetup.number))
        .collect();
    let left: Vec<_> = want.iter().copied().filter(|(t, _)| *t >= later).collect();
    assert_eq!(got, left);
}

/// The organizer and room admins edit a meetup; moves are announced, renames are not, an
/// edit that changes nothing logs nothing; another member is not allowed; a non-member is
/// not a member.
pub async fn meetup_edits_by_organizer_or_admin(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "medit", 5).await;
    let room = group(&store, app, "u0", &["u1", "u2", "u3"], Visibility::Public).await;
    run(&store, make_admin(app, "u0", room, "u2")).await;
    let at = Timestamp(Timestamp::now().0 + DAY);
    let m = meetup(&store, app, "u1", room, "lunch", at).await;
    let edit = |actor: &str| UpdateMeetup {
        app,
        actor: uid(actor),
        room,
        meetup: m,
        name: None,
        location: None,
        takes_place_on: None,
        image_url: None,
    };
    let items = timeline(&store, app, room).await.len();
    // A rename by the organizer: recorded, not announced.
    run(
        &store,
        Command::UpdateMeetup(UpdateMeetup {
            name: Some("brunch".into()),
            image_url: Some("https://example.com/b.png".into()),
            ..edit("u1")
        }),
    )
    .await;
    let v = view(&store, app, room, m, "u0").await;
    assert_eq!(v.meetup.name, "brunch");
    assert_eq!(
        v.meetup.image_url.as_deref(),
        Some("https://example.com/b.png")
    );
    assert!(v.meetup.updated_at >= v.meetup.created_at);
    assert_eq!(timeline(&store, app, room).await.len(), items);
    // A move by the organizer and one by an admin: each announced.
    run(
        &store,
        Command::UpdateMeetup(UpdateMeetup {
            location: Some("Harbour".into()),
            ..edit("u1")
        }),
    )
    .await;
    let later = Timestamp(at.0 + DAY);
    run(
        &store,
        Command::UpdateMeetup(UpdateMeetup {
            takes_place_on: Some(later),
            ..edit("u2")
        }),
    )
    .await;
    let v = view(&store, app, room, m, "u0").await;
    assert_eq!(
        (v.meetup.location.as_str(), v.meetup.takes_place_on),
        ("Harbour", later)
    );
    assert_eq!(
        v.meetup.organizer,
        uid("u1"),
        "an admin's edit keeps the organizer"
    );
    let tl = timeline(&store, app, room).await;
    assert_eq!(tl.len(), items + 2);
    assert_eq!(announced(&tl[items]), "meetup_moved");
    assert_eq!(announced(&tl[items + 1]), "meetup_moved");
    let changes = all_changes(&store, app, room).await;
    assert!(matches!(
        &changes[changes.len() - 1].body,
        EventBody::MeetupUpdated { by, poll: None, takes_place_on: Some(t), .. }
            if *by == uid("u2") && *t == later
    ));
    // The same values again: nothing to log.
    unchanged(
        &store,
        app,
        room,
        Command::UpdateMeetup(UpdateMeetup {
            name: Some("brunch".into()),
            location: Some("Harbour".into()),
            takes_place_on: Some(later),
            ..edit("u0")
        }),
    )
    .await;
    // Another member, a non-member, an unknown meetup.
    let rename = |actor: &str| {
        Command::UpdateMeetup(UpdateMeetup {
            name: Some("hijacked".into()),
            ..edit(actor)
        })
    };
    refused(&store, app, room, rename("u3"), ErrorCode::NotAllowed).await;
    refused(
        &store,
        app,
        room,
        cancel(app, "u3", room, m),
        ErrorCode::NotAllowed,
    )
    .await;
    refused(&store, app, room, rename("u4"), ErrorCode::NotAMember).await;
    refused(
        &store,
        app,
        room,
        cancel(app, "u4", room, m),
        ErrorCode::NotAMember,
    )
    .await;
    let unknown = Command::UpdateMeetup(UpdateMeetup {
        meetup: MeetupNumber(9),
        name: Some("x".into()),
        ..edit("u1")
    });
    refused(&store, app, room, unknown, ErrorCode::MeetupNotFound).await;
    assert_eq!(view(&store, app, room, m, "u3").await.meetup.name, "brunch");
}

/// A cancelled meetup is announced, leaves the upcoming lists, and refuses RSVPs and edits;
/// cancelling it again logs nothing.
pub async fn cancelled_meetups_refuse_rsvps(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "mcancel", 3).await;
    let room = group(&store, app, "u0", &["u1", "u2"], Visibility::Private).await;
    let now = Timestamp::now();
    let m1 = meetup(&store, app, "u1", room, "one", Timestamp(now.0 + DAY)).await;
    let m2 = meetup(&store, app, "u1", room, "two", Timestamp(now.0 + 2 * DAY)).await;
    run(&store, set_rsvp(app, "u2", room, m1, Rsvp::Yes)).await;
    // The room's owner is an admin: they may cancel another's meetup.
    run(&store, cancel(app, "u0", room, m1)).await;
    let tl = timeline(&store, app, room).await;
    assert_eq!(announced(&tl[tl.len() - 1]), "meetup_cancelled");
    let v = view(&store, app, room, m1, "u2").await;
    assert!(v.meetup.cancelled);
    assert_eq!(v.rsvp, Rsvp::Yes, "answers stay readable");
    let (upcoming, _) = list_all(&store, app, room, "u2", true, now, 10).await;
    let numbers: Vec<_> = upcoming.iter().map(|v| v.meetup.number).collect();
    assert_eq!(numbers, [m2]);
    let mine = store
        .my_meetups(app, &uid("u2"), now, None, 10)
        .await
        .expect("my meetups");
    let numbers: Vec<_> = mine.rows.iter().map(|v| v.meetup.number).collect();
    assert_eq!(numbers, [m2]);
    refused(
        &store,
        app,
        room,
        set_rsvp(app, "u2", room, m1, Rsvp::No),
        ErrorCode::MeetupCancelled,
    )
    .await;
    refused(
        &store,
        app,
        room,
        set_rsvp(app, "u0", room, m1, Rsvp::Maybe),
        ErrorCode::MeetupCancelled,
    )
    .await;
    let rename = Command::UpdateMeetup(UpdateMeetup {
        app,
        actor: uid("u1"),
        room,
        meetup: m1,
        name: Some("revived".into()),
        location: None,
        takes_place_on: None,
        image_url: None,
    });
    refused(&store, app, room, rename, ErrorCode::MeetupCancelled).await;
    unchanged(&store, app, room, cancel(app, "u1", room, m1)).await;
    refused(
        &store,
        app,
        room,
        set_rsvp(app, "u0", room, MeetupNumber(7), Rsvp::Yes),
        ErrorCode::MeetupNotFound,
    )
    .await;
    assert_eq!(view(&store, app, room, m1, "u2").await.rsvp, Rsvp::Yes);
}

/// RSVP counts are among joined members: every answer counted once, members who have not
/// answered count as `none`, leavers drop out and newcomers count as `none`. The same
/// answer twice logs nothing; a non-member cannot answer.
pub async fn rsvps_count_joined_members(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "rsvp", 5).await;
    let room = group(&store, app, "u0", &["u1", "u2", "u3"], Visibility::Public).await;
    let m = meetup(
        &store,
        app,
        "u0",
        room,
        "party",
        Timestamp(Timestamp::now().0 + DAY),
    )
    .await;
    assert_eq!(
        view(&store, app, room, m, "u4").await.counts,
        counts(1, 0, 0, 3)
    );
    let items = timeline(&store, app, room).await.len();
    let log = log_len(&store, app).await;
    run(&store, set_rsvp(app, "u1", room, m, Rsvp::Yes)).await;
    run(&store, set_rsvp(app, "u2", room, m, Rsvp::No)).await;
    run(&store, set_rsvp(app, "u3", room, m, Rsvp::Maybe)).await;
    let logged = events_since(&store, app, log).await;
    assert_eq!(logged.len(), 3);
    assert!(matches!(
        &logged[1].body,
        EventBody::RsvpChanged { user, rsvp: Rsvp::No, meetup, .. } if *user == uid("u2") && *meetup == m
    ));
    assert_eq!(
        timeline(&store, app, room).await.len(),
        items,
        "RSVPs are not announced"
    );
    let changes = all_changes(&store, app, room).await;
    assert!(matches!(
        &changes[changes.len() - 1].body,
        EventBody::RsvpChanged { .. }
    ));
    assert_eq!(
        view(&store, app, room, m, "u0").await.counts,
        counts(2, 1, 1, 0)
    );
    for (u, r) in [
        ("u0", Rsvp::Yes),
        ("u1", Rsvp::Yes),
        ("u2", Rsvp::No),
        ("u3", Rsvp::Maybe),
    ] {
        assert_eq!(view(&store, app, room, m, u).await.rsvp, r, "{u}");
    }
    unchanged(&store, app, room, set_rsvp(app, "u1", room, m, Rsvp::Yes)).await;
    refused(
        &store,
        app,
        room,
        set_rsvp(app, "u4", room, m, Rsvp::Yes),
        ErrorCode::NotAMember,
    )
    .await;
    // A change of mind, a leaver and a newcomer.
    run(&store, set_rsvp(app, "u1", room, m, Rsvp::None)).await;
    run(
        &store,
        Command::Leave {
            app,
            actor: uid("u3"),
            room,
        },
    )
    .await;
    run(
        &store,
        Command::Join {
            app,
            actor: uid("u4"),
            room,
        },
    )
    .await;
    assert_eq!(
        view(&store, app, room, m, "u0").await.counts,
        counts(1, 1, 0, 2)
    );
    assert_eq!(view(&store, app, room, m, "u4").await.rsvp, Rsvp::None);
    run(&store, set_rsvp(app, "u4", room, m, Rsvp::Maybe)).await;
    assert_eq!(
        view(&store, app, room, m, "u0").await.counts,
        counts(1, 1, 1, 1)
    );
}

/// `my_meetups` lists the upcoming meetups of every room the user has joined, soonest first
/// (room and number break ties), paged by cursor, with the user's own answers.
pub async fn my_meetups_across_rooms(store: Arc<dyn Store>) {
    let app = app_with_users(&store, "mine", 3).await;
    let a = group(&store, app, "u0", &["u1"], Visibility::Public).await;
    let b = group(&store, app, "u0", &[], Visibility::Private).await;
    let c = group(&store, app, "u2", &[], Visibility::Private).await;
    let now = Timestamp::now();
    let t = |days: i64| Timestamp(now.0 + days * DAY);
    let a1 = meetup(&store, app, "u1", a, "a1", t(2)).await;
    let b1 = meetup(&store, app, "u0", b, "b1", t(1)).await;
    let a2 = meetup(&store, app, "u0", a, "a2", t(3)).await;
    let b2 = meetup(&store, app, "u0", b, "b2", t(2)).await;
    meetup(&store, app, "u0", b, "past", t(-1)).await;
    let a3 = meetup(&store, app, "u0", a, "a3", t(4)).await;
    run(&store, cancel(app, "u0", a, a3)).await;
    meetup(&store, app, "u2", c, "elsewhere", t(1)).await;
    run(&store, set_rsvp(app, "u0", a, a1, Rsvp::Maybe)).await;
    let mine = |who: &'static str| {
        let store = store.clone();
        async move {
            let mut out: Vec<MeetupView> = Vec::new();
            loop {
                let after = out
                    .last()
                    .map(|v| (v.meetup.takes_place_on, v.room, v.meetup.number));
                let page = store
                    .my_meetups(app, &uid(who), now, after, 2)
                    .await
                    .expect("my meetups");
                assert!(page.rows.len() <= 2);
                out.extend(page.rows);
                if !page.has_more {
                    return out
                        .into_iter()
                        .map(|v| (v.room, v.meetup.number, v.rsvp))
                        .collect::<Vec<_>>();
                }
            }
        }
    };
    // b1 (day 1), then day 2 in room order: a1 before b2, then a2.
    assert_eq!(
        mine("u0").await,
        [
            (b, b1, Rsvp::Yes),
            (a, a1, Rsvp::Maybe),
            (b, b2, Rsvp::Yes),
            (a, a2, Rsvp::Yes),
        ]
    );
    assert_eq!(mine("u1").await, [(a, a1, Rsvp::Yes), (a, a2, Rsvp::None)]);
    run(
        &store,
        Command::Leave {
            app,
            actor: uid("u1"),
            room: a,
        },
    )
    .await;
    assert!(mine("u1").await.is_empty(), "u1 left the room");
}
