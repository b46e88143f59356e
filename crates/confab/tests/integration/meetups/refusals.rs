//! Every refusal of the meetup and poll routes, each with nothing logged.

use super::{DAY, from_now, party};
use crate::common::assert_error;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What is tried, how, by whom, with what body, and the status and code it must get.
type Refusal<'a> = (
    &'static str,
    reqwest::Method,
    String,
    &'a String,
    Option<Value>,
    StatusCode,
    &'static str,
);

/// Each refusal: its status and code, and nothing logged (no change, no event of the room).
#[tokio::test]
async fn meetups_every_refusal_is_answered_and_logs_nothing() {
    let p = party("public").await;
    p.meetup(&p.alice, "Dinner", &from_now(10 * DAY), "Luigi's")
        .await;
    p.meetup(&p.alice, "Lunch", &from_now(2 * DAY), "Cafe")
        .await;
    let (status, _) =
        p.s.put(&p.path("/meetups/1/rsvp"), &p.carol, json!({"rsvp": "no"}))
            .await;
    assert_eq!(status, StatusCode::OK);
    // 1: three choices, one selection; 2: about the dinner (Carol declined); 3: closed.
    p.poll(
        &p.alice,
        json!({"question": "Q", "kind": "generic", "choices": ["a", "b", "c"]}),
    )
    .await;
    p.poll(
        &p.alice,
        json!({"question": "Where?", "kind": "relocate", "choices": ["Luigi's", "Mario's"], "meetup": 1}),
    )
    .await;
    p.poll(
        &p.bob,
        json!({"question": "Closed", "kind": "generic", "choices": ["x", "y"]}),
    )
    .await;
    let (status, _) = p.s.post(&p.path("/polls/3/close"), &p.bob, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    p.meetup(&p.bob, "Gone", &from_now(DAY), "Nowhere").await;
    let (status, _) = p.s.delete(&p.path("/meetups/3"), &p.bob).await;
    assert_eq!(status, StatusCode::OK);

    let timeline_refusal = p.s.get(&p.path("/messages"), &p.dave).await;
    assert_error(&timeline_refusal, StatusCode::FORBIDDEN, "not_a_member");
    let twenty_one: Vec<String> = (0..21).map(|i| format!("c{i}")).collect();
    let when = from_now(DAY);
    use reqwest::Method as M;
    let cases: Vec<Refusal> = vec![
        (
            "non-member creates",
            M::POST,
            p.path("/meetups"),
            &p.dave,
            Some(json!({"name": "X", "location": "Y", "takes_place_on": when})),
            StatusCode::FORBIDDEN,
            "not_a_member",
        ),
        (
            "non-member answers",
            M::PUT,
            p.path("/meetups/1/rsvp"),
            &p.dave,
            Some(json!({"rsvp": "yes"})),
            StatusCode::FORBIDDEN,
            "not_a_member",
        ),
        (
            "non-member votes",
            M::PUT,
            p.path("/polls/1/vote"),
            &p.dave,
            Some(json!({"choices": [0]})),
            StatusCode::FORBIDDEN,
            "not_a_member",
        ),
        (
            "non-member makes a poll",
            M::POST,
            p.path("/polls"),
            &p.dave,
            Some(json!({"question": "Q", "kind": "generic", "choices": ["a", "b"]})),
            StatusCode::FORBIDDEN,
            "not_a_member",
        ),
        (
            "non-member closes",
            M::POST,
            p.path("/polls/1/close"),
            &p.dave,
            Some(json!({})),
            StatusCode::FORBIDDEN,
            "not_a_member",
        ),
        (
            "ineligible voter (answered no)",
            M::PUT,
            p.path("/polls/2/vote"),
            &p.carol,
            Some(json!({"choices": [0]})),
            StatusCode::FORBIDDEN,
            "not_eligible",
        ),
        (
            "closed poll",
            M::PUT,
            p.path("/polls/3/vote"),
            &p.alice,
            Some(json!({"choices": [0]})),
            StatusCode::CONFLICT,
            "poll_closed",
        ),
        (
            "choice out of range",
            M::PUT,
            p.path("/polls/1/vote"),
            &p.bob,
            Some(json!({"choices": [3]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "choice_out_of_range",
        ),
        (
            "negative choice",
            M::PUT,
            p.path("/polls/1/vote"),
            &p.bob,
            Some(json!({"choices": [-1]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "choice_out_of_range",
        ),
        (
            "too many choices",
            M::PUT,
            p.path("/polls/1/vote"),
            &p.bob,
            Some(json!({"choices": [0, 1]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_choices",
        ),
        (
            "a choice twice",
            M::PUT,
            p.path("/polls/1/vote"),
            &p.bob,
            Some(json!({"choices": [0, 0]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_choices",
        ),
        (
            "a poll of 21 choices",
            M::POST,
            p.path("/polls"),
            &p.bob,
            Some(json!({"question": "Q", "kind": "generic", "choices": twenty_one})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_choices",
        ),
        (
            "a poll of 1 choice",
            M::POST,
            p.path("/polls"),
            &p.bob,
            Some(json!({"question": "Q", "kind": "generic", "choices": ["a"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "edit by a non-organizer",
            M::PATCH,
            p.path("/meetups/1"),
            &p.bob,
            Some(json!({"name": "Mine now"})),
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
        (
            "cancel by a non-organizer",
            M::DELETE,
            p.path("/meetups/1"),
            &p.bob,
            None,
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
        (
            "close by someone else",
            M::POST,
            p.path("/polls/1/close"),
            &p.carol,
            Some(json!({})),
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
        (
            "reschedule poll without a meetup",
            M::POST,
            p.path("/polls"),
            &p.bob,
            Some(
                json!({"question": "When?", "kind": "reschedule", "choices": [from_now(DAY), from_now(2 * DAY)]}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "reschedule choices that are not times",
            M::POST,
            p.path("/polls"),
            &p.bob,
            Some(
                json!({"question": "When?", "kind": "reschedule", "choices": ["soon", "later"], "meetup": 1}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "bad meetup time",
            M::POST,
            p.path("/meetups"),
            &p.bob,
            Some(json!({"name": "X", "location": "Y", "takes_place_on": "tomorrow"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "bad new time",
            M::PATCH,
            p.path("/meetups/1"),
            &p.alice,
            Some(json!({"takes_place_on": "2026-13-01T00:00:00Z"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "bad closes_at",
            M::POST,
            p.path("/polls"),
            &p.bob,
            Some(
                json!({"question": "Q", "kind": "generic", "choices": ["a", "b"], "closes_at": "soon"}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "closes_at in the past",
            M::POST,
            p.path("/polls"),
            &p.bob,
            Some(
                json!({"question": "Q", "kind": "generic", "choices": ["a", "b"], "closes_at": from_now(-DAY)}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "unknown kind",
            M::POST,
            p.path("/polls"),
            &p.bob,
            Some(json!({"question": "Q", "kind": "quiz", "choices": ["a", "b"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "unknown answer",
            M::PUT,
            p.path("/meetups/1/rsvp"),
            &p.bob,
            Some(json!({"rsvp": "perhaps"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            "answer to a cancelled meetup",
            M::PUT,
            p.path("/meetups/3/rsvp"),
            &p.bob,
            Some(json!({"rsvp": "yes"})),
            StatusCode::CONFLICT,
            "meetup_cancelled",
        ),
        (
            "poll of a cancelled meetup",
            M::POST,
            p.path("/polls"),
            &p.bob,
            Some(
                json!({"question": "Where?", "kind": "relocate", "choices": ["a", "b"], "meetup": 3}),
            ),
            StatusCode::CONFLICT,
            "meetup_cancelled",
        ),
        (
            "unknown meetup",
            M::PUT,
            p.path("/meetups/99/rsvp"),
            &p.bob,
            Some(json!({"rsvp": "yes"})),
            StatusCode::NOT_FOUND,
            "meetup_not_found",
        ),
        (
            "unknown poll",
            M::PUT,
            p.path("/polls/99/vote"),
            &p.bob,
            Some(json!({"choices": [0]})),
            StatusCode::NOT_FOUND,
            "poll_not_found",
        ),
        (
            "non-member reads meetups",
            M::GET,
            p.path("/meetups"),
            &p.dave,
            None,
            timeline_refusal.0,
            "not_a_member",
        ),
        (
            "non-member reads a poll",
            M::GET,
            p.path("/polls/1"),
            &p.dave,
            None,
            timeline_refusal.0,
            "not_a_member",
        ),
        (
            "non-member lists polls",
            M::GET,
            p.path("/polls"),
            &p.dave,
            None,
            timeline_refusal.0,
            "not_a_member",
        ),
    ];
    for (what, method, path, token, body, status, code) in cases {
        let before = p.logged().await;
        let got = p.s.call(method, &path, Some(token), body).await;
        assert_eq!(got.0, status, "{what}: {}", got.1);
        assert_eq!(got.1["error"]["code"], code, "{what}: {}", got.1);
        assert_eq!(p.logged().await, before, "{what}: nothing is logged");
    }
    // A user who joins after a poll was made is not one of its voters.
    let (status, _) = p.s.post(&p.path("/join"), &p.dave, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let before = p.logged().await;
    assert_error(
        &p.vote(&p.dave, 1, json!([0])).await,
        StatusCode::FORBIDDEN,
        "not_eligible",
    );
    assert_eq!(p.logged().await, before);
    assert_eq!(p.get(&p.dave, "/polls/1").await["my_vote"], Value::Null);
    // A private room is not found for someone outside it, as its timeline is.
    let private = p.s.group(&p.alice, "private", &[]).await;
    let hidden =
        p.s.get(&format!("/v1/rooms/{private}/messages"), &p.bob)
            .await;
    assert_error(&hidden, StatusCode::NOT_FOUND, "room_not_found");
    for rest in ["/meetups", "/meetups/1", "/polls", "/polls/1"] {
        let got = p.s.get(&format!("/v1/rooms/{private}{rest}"), &p.bob).await;
        assert_error(&got, StatusCode::NOT_FOUND, "room_not_found");
    }
}
