//! Meetups, RSVPs, polls and alerts over HTTP and the WebSocket (issue 13): the happy path from
//! planning to a poll that moves the meetup, every refusal (with nothing logged), undisclosed
//! votes, the deadline closer, and the races that matter.

use crate::common::{Server, TestApp, assert_error};
use crate::ws::{login, store_changes};
use confab_core::ids::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// Generous: waiting for something that should come, never a timing assertion.
const WAIT: Duration = Duration::from_secs(30);

/// RFC 3339 time `ms` milliseconds from now (negative: in the past).
fn from_now(ms: i64) -> String {
    Timestamp(Timestamp::now().0 + ms).to_rfc3339()
}

const DAY: i64 = 86_400_000;

/// A room of Alice (owner), Bob and Carol (members); Dave is a user of the app outside it.
struct Party {
    s: Server,
    app: TestApp,
    alice: String,
    bob: String,
    carol: String,
    dave: String,
    room: i64,
}

async fn party(visibility: &str) -> Party {
    let s = Server::start().await;
    let app = s.app("meetups").await;
    let alice = s.user(&app, "alice").await;
    let bob = s.user(&app, "bob").await;
    let carol = s.user(&app, "carol").await;
    let dave = s.user(&app, "dave").await;
    let room = s.group(&alice, visibility, &["bob", "carol"]).await;
    Party {
        s,
        app,
        alice,
        bob,
        carol,
        dave,
        room,
    }
}

impl Party {
    fn path(&self, rest: &str) -> String {
        format!("/v1/rooms/{}{rest}", self.room)
    }

    async fn meetup(&self, token: &str, name: &str, when: &str, location: &str) -> Value {
        let body = json!({"name": name, "location": location, "takes_place_on": when});
        let (status, m) = self.s.post(&self.path("/meetups"), token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{m}");
        m
    }

    async fn poll(&self, token: &str, body: Value) -> Value {
        let (status, p) = self.s.post(&self.path("/polls"), token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{p}");
        p
    }

    async fn vote(&self, token: &str, poll: i64, choices: Value) -> (StatusCode, Value) {
        self.s
            .put(
                &self.path(&format!("/polls/{poll}/vote")),
                token,
                json!({ "choices": choices }),
            )
            .await
    }

    async fn get(&self, token: &str, rest: &str) -> Value {
        let (status, v) = self.s.get(&self.path(rest), token).await;
        assert_eq!(status, StatusCode::OK, "{rest}: {v}");
        v
    }

    async fn alerts(&self, token: &str) -> Vec<Value> {
        let (status, v) = self.s.get("/v1/me/alerts", token).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["alerts"].as_array().cloned().unwrap_or_default()
    }

    /// The caller's `alerts_count` for the room in `GET /v1/rooms`.
    async fn alerts_count(&self, token: &str) -> i64 {
        let (status, v) = self.s.get("/v1/rooms", token).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["rooms"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["number"] == self.room))
            .and_then(|r| r["alerts_count"].as_i64())
            .expect("the room with its alerts_count")
    }

    /// What has been logged about the room: its last change position and its events in the
    /// app's log (other events, such as users seen, do not count).
    async fn logged(&self) -> (i64, usize) {
        let pos = self.get(&self.alice, "").await["last_pos"]
            .as_i64()
            .expect("last_pos");
        let (status, events) = self.s.get("/v1/events?limit=1000", &self.app.secret).await;
        assert_eq!(status, StatusCode::OK, "{events}");
        let n = events["events"]
            .as_array()
            .map_or(0, |es| es.iter().filter(|e| e["room"] == self.room).count());
        (pos, n)
    }

    /// The announcement types of the room's timeline, oldest first.
    async fn announcements(&self) -> Vec<String> {
        let page = self.get(&self.alice, "/messages?limit=200").await;
        page["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["announcement"]["type"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The room's changes of type `ty`.
    async fn changes_of(&self, token: &str, ty: &str) -> Vec<Value> {
        store_changes(&self.s, token, self.room, 0)
            .await
            .into_iter()
            .filter(|c| c["type"] == ty)
            .collect()
    }
}

fn numbers(list: &Value, key: &str) -> Vec<i64> {
    list[key]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["number"].as_i64()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn meetups_plan_answer_and_list_upcoming_first() {
    let p = party("private").await;
    let dinner_at = from_now(10 * DAY);
    let dinner = p.meetup(&p.alice, "Dinner", &dinner_at, "Luigi's").await;
    assert_eq!(dinner["number"], 1);
    assert_eq!(dinner["organizer"], "alice");
    assert_eq!(dinner["takes_place_on"], dinner_at);
    assert_eq!(dinner["my_rsvp"], "yes", "the organizer starts at yes");
    assert_eq!(
        dinner["counts"],
        json!({"yes": 1, "no": 0, "maybe": 0, "none": 2})
    );
    let brunch = p.meetup(&p.bob, "Brunch", &from_now(3 * DAY), "Park").await;
    assert_eq!(brunch["number"], 2);
    // Times come in any offset and are answered in UTC.
    let (status, old) =
        p.s.post(
            &p.path("/meetups"),
            &p.carol,
            json!({"name": "Old", "location": "Pub", "takes_place_on": "2020-01-01T10:00:00+02:00",
                   "image_url": "https://example.com/pub.png"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{old}");
    assert_eq!(old["takes_place_on"], "2020-01-01T08:00:00.000Z");
    assert_eq!(old["image_url"], "https://example.com/pub.png");

    // Upcoming first: soonest first, the past one left out unless every one is asked for.
    assert_eq!(numbers(&p.get(&p.bob, "/meetups").await, "meetups"), [2, 1]);
    assert_eq!(
        numbers(&p.get(&p.bob, "/meetups?scope=all").await, "meetups"),
        [3, 2, 1]
    );
    let first = p.get(&p.bob, "/meetups?limit=1").await;
    assert_eq!(numbers(&first, "meetups"), [2]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = p
        .get(&p.bob, &format!("/meetups?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(numbers(&second, "meetups"), [1]);
    assert!(second["next_cursor"].is_null(), "{second}");

    // Answers and counts; the same answer twice logs nothing.
    let answer = |token: String, rsvp: &'static str| {
        let path = p.path("/meetups/1/rsvp");
        let s = &p.s;
        async move { s.put(&path, &token, json!({ "rsvp": rsvp })).await }
    };
    let (status, m) = answer(p.bob.clone(), "maybe").await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["my_rsvp"], "maybe");
    let (status, m) = answer(p.carol.clone(), "no").await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(
        m["counts"],
        json!({"yes": 1, "no": 1, "maybe": 1, "none": 0})
    );
    let before = p.logged().await;
    let (status, m) = answer(p.carol.clone(), "no").await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(
        p.logged().await,
        before,
        "the same answer again logs nothing"
    );
    let rsvps = p.changes_of(&p.alice, "rsvp_changed").await;
    assert_eq!(rsvps.len(), 2);
    assert_eq!(rsvps[1]["data"]["user"], "carol");
    assert_eq!(rsvps[1]["data"]["rsvp"], "no");
    let bobs = p.get(&p.bob, "/meetups/1").await;
    assert_eq!(bobs["my_rsvp"], "maybe");

    // Edits by the organizer, and by a room admin (the owner) of someone else's meetup.
    let (status, m) =
        p.s.patch(
            &p.path("/meetups/2"),
            &p.alice,
            json!({"name": "Late brunch", "location": "Garden"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(
        (m["name"].as_str(), m["location"].as_str()),
        (Some("Late brunch"), Some("Garden"))
    );
    let later = from_now(4 * DAY);
    let (status, m) =
        p.s.patch(
            &p.path("/meetups/2"),
            &p.bob,
            json!({"takes_place_on": later}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["takes_place_on"], later);

    // My upcoming meetups across my rooms: a second room of Carol's adds one.
    let other = p.s.group(&p.carol, "private", &[]).await;
    let (status, _) =
        p.s.post(
            &format!("/v1/rooms/{other}/meetups"),
            &p.carol,
            json!({"name": "Chess", "location": "Club", "takes_place_on": from_now(DAY)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, mine) = p.s.get("/v1/me/meetups", &p.carol).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let got: Vec<(i64, i64)> = mine["meetups"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["room"].as_i64().unwrap_or(0),
                        m["number"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(got, [(other, 1), (p.room, 2), (p.room, 1)]);
    let (_, bobs) = p.s.get("/v1/me/meetups?limit=2", &p.bob).await;
    assert_eq!(numbers(&bobs, "meetups"), [2, 1]);

    // Cancelling: announced, out of the upcoming list, no more answers.
    let (status, m) = p.s.delete(&p.path("/meetups/2"), &p.bob).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["cancelled"], true);
    assert_eq!(numbers(&p.get(&p.bob, "/meetups").await, "meetups"), [1]);
    let announced = p.announcements().await;
    for ty in ["meetup_created", "meetup_moved", "meetup_cancelled"] {
        assert!(announced.iter().any(|a| a == ty), "{ty} in {announced:?}");
    }
}

#[tokio::test]
async fn meetups_a_reschedule_poll_decides_moves_the_meetup_and_clears_alerts() {
    let p = party("private").await;
    p.meetup(&p.alice, "Dinner", &from_now(10 * DAY), "Luigi's")
        .await;
    // Carol is not coming: she is not asked.
    let (status, _) =
        p.s.put(&p.path("/meetups/1/rsvp"), &p.carol, json!({"rsvp": "no"}))
            .await;
    assert_eq!(status, StatusCode::OK);
    let (early, late) = (from_now(11 * DAY), from_now(12 * DAY));
    let poll = p
        .poll(
            &p.alice,
            json!({"question": "When?", "kind": "reschedule", "choices": [early, late], "meetup": 1}),
        )
        .await;
    assert_eq!(poll["number"], 1);
    assert_eq!(poll["status"], "open");
    assert_eq!(poll["voters"], json!(["alice", "bob"]));
    assert_eq!(poll["my_vote"], json!([]));
    assert_eq!(poll["tallies"], json!([0, 0]), "disclosed by default");
    assert_eq!(p.get(&p.carol, "/polls/1").await["my_vote"], Value::Null);

    // Bob and Alice have an alert; Carol none.
    let alerts = p.alerts(&p.bob).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["kind"], "pending_reschedule_poll");
    assert_eq!(
        (alerts[0]["room"].as_i64(), alerts[0]["poll"].as_i64()),
        (Some(p.room), Some(1))
    );
    assert_eq!(alerts[0]["meetup"], 1);
    assert_eq!(p.alerts_count(&p.bob).await, 1);
    assert_eq!(p.alerts_count(&p.alice).await, 1);
    assert!(p.alerts(&p.carol).await.is_empty());
    assert_eq!(p.alerts_count(&p.carol).await, 0);

    // A vote, a change of mind, a withdrawal and a vote again: the alert follows.
    let (status, v) = p.vote(&p.bob, 1, json!([0])).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["my_vote"], json!([0]));
    assert!(p.alerts(&p.bob).await.is_empty());
    assert_eq!(p.alerts_count(&p.bob).await, 0);
    let (_, v) = p.vote(&p.bob, 1, json!([])).await;
    assert_eq!(v["my_vote"], json!([]));
    assert_eq!(
        p.alerts(&p.bob).await.len(),
        1,
        "a withdrawn vote brings the alert back"
    );
    let (_, v) = p.vote(&p.bob, 1, json!([1])).await;
    assert_eq!(v["tallies"], json!([0, 1]));
    assert_eq!(v["status"], "open");

    // Alice's vote is the last one: the poll closes, decided, and the meetup moves.
    let (status, v) = p.vote(&p.alice, 1, json!([1])).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "closed");
    assert_eq!(v["reason"], "all_voted");
    assert_eq!(v["outcome"], "decided");
    assert_eq!(v["winner"], 1);
    assert_eq!(v["winning_choice"], late);
    assert_eq!(v["tallies"], json!([0, 2]));
    assert_eq!(p.get(&p.bob, "/meetups/1").await["takes_place_on"], late);
    assert!(p.alerts(&p.alice).await.is_empty());
    assert_eq!(p.alerts_count(&p.alice).await, 0);
    let announced = p.announcements().await;
    let tail: Vec<&str> = announced
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(tail, ["poll_closed", "meetup_moved"], "{announced:?}");
    let votes = p.changes_of(&p.carol, "vote_cast").await;
    assert_eq!(
        votes.last().map(|v| v["data"]["choices"].clone()),
        Some(json!([1]))
    );

    // A relocate poll closed by hand by its creator moves the place.
    let poll = p
        .poll(
            &p.bob,
            json!({"question": "Where?", "kind": "relocate", "choices": ["Luigi's", "Mario's"],
                   "meetup": 1, "max_selections": 2}),
        )
        .await;
    assert_eq!(poll["number"], 2);
    assert_eq!(poll["kind"], "relocate");
    assert_eq!(
        p.alerts(&p.alice).await[0]["kind"],
        "pending_relocation_poll"
    );
    let (status, v) = p.vote(&p.alice, 2, json!([1, 0])).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["my_vote"], json!([0, 1]));
    // Voting again replaces the whole vote.
    let (status, v) = p.vote(&p.alice, 2, json!([1])).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["tallies"], json!([0, 1]));
    let (status, closed) = p.s.post(&p.path("/polls/2/close"), &p.bob, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["closed_by"], "bob");
    assert_eq!(closed["reason"], "closed");
    assert_eq!(closed["winning_choice"], "Mario's");
    assert_eq!(p.get(&p.carol, "/meetups/1").await["location"], "Mario's");
    // Closed polls list after open ones; a generic poll with no votes ends without a winner.
    p.poll(
        &p.carol,
        json!({"question": "Dessert?", "kind": "generic", "choices": ["yes", "no"]}),
    )
    .await;
    assert_eq!(numbers(&p.get(&p.bob, "/polls").await, "polls"), [3, 2, 1]);
    let page = p.get(&p.bob, "/polls?limit=2").await;
    assert_eq!(numbers(&page, "polls"), [3, 2]);
    assert!(
        page["polls"][0].get("voters").is_none(),
        "listings leave voters out"
    );
    let cursor = page["next_cursor"].as_str().expect("next page");
    assert_eq!(
        numbers(
            &p.get(&p.bob, &format!("/polls?limit=2&cursor={cursor}"))
                .await,
            "polls"
        ),
        [1]
    );
    let (status, closed) =
        p.s.post(&p.path("/polls/3/close"), &p.alice, json!({}))
            .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["outcome"], "no_votes");
    assert_eq!(
        closed["closed_by"], "alice",
        "a room admin closes anyone's poll"
    );
}

#[tokio::test]
async fn meetups_cancelling_closes_its_polls_and_ends_their_alerts() {
    let p = party("private").await;
    p.meetup(&p.bob, "Hike", &from_now(5 * DAY), "Hill").await;
    p.poll(
        &p.bob,
        json!({"question": "Which hill?", "kind": "relocate", "choices": ["Hill", "Peak"], "meetup": 1}),
    )
    .await;
    assert_eq!(p.alerts(&p.carol).await.len(), 1);
    let (status, m) = p.s.delete(&p.path("/meetups/1"), &p.alice).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    let poll = p.get(&p.carol, "/polls/1").await;
    assert_eq!(poll["status"], "closed");
    assert_eq!(poll["reason"], "meetup_cancelled");
    assert!(p.alerts(&p.carol).await.is_empty());
    assert_eq!(p.alerts_count(&p.carol).await, 0);
}

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

/// An undisclosed poll: members see that a vote happened, never what, until it closes.
#[tokio::test]
async fn meetups_undisclosed_votes_stay_secret_until_the_poll_closes() {
    let p = party("private").await;
    let (mut carol_ws, _) = login(&p.s, &p.carol, None).await;
    let poll = p
        .poll(
            &p.alice,
            json!({"question": "Secret?", "kind": "generic", "choices": ["a", "b"], "results": "undisclosed"}),
        )
        .await;
    assert_eq!(poll["results"], "undisclosed");
    assert_eq!(poll["tallies"], Value::Null);
    let (status, v) = p.vote(&p.bob, 1, json!([1])).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["my_vote"], json!([1]), "Bob sees his own vote");
    assert_eq!(v["tallies"], Value::Null);

    // Carol's socket: the poll, then Bob's vote without its choices.
    let frames = carol_ws.changes(p.room, 2).await;
    assert_eq!(frames[0]["change"]["type"], "poll_created");
    let vote = &frames[1]["change"];
    assert_eq!(vote["type"], "vote_cast", "{vote}");
    assert_eq!(vote["data"]["user"], "bob");
    assert!(vote["data"].get("choices").is_none(), "{vote}");
    // The same through /changes and the app's event log.
    let cast = p.changes_of(&p.carol, "vote_cast").await;
    assert_eq!(cast.len(), 1);
    assert!(cast[0]["data"].get("choices").is_none(), "{}", cast[0]);
    let (_, events) = p.s.get("/v1/events?limit=1000", &p.app.secret).await;
    let logged: Vec<&Value> = events["events"]
        .as_array()
        .map(|es| es.iter().filter(|e| e["type"] == "vote_cast").collect())
        .unwrap_or_default();
    assert_eq!(logged.len(), 1);
    assert!(logged[0]["data"].get("choices").is_none(), "{}", logged[0]);
    let seen = p.get(&p.carol, "/polls/1").await;
    assert_eq!(seen["tallies"], Value::Null);
    assert_eq!(seen["voted_count"], 1);
    assert_eq!(seen["outcome"], Value::Null);

    // Closed: the tallies tell.
    let (status, closed) =
        p.s.post(&p.path("/polls/1/close"), &p.alice, json!({}))
            .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    let frame = carol_ws.changes(p.room, 1).await.remove(0);
    assert_eq!(frame["change"]["type"], "poll_closed");
    assert_eq!(frame["change"]["data"]["tallies"], json!([0, 1]));
    let seen = p.get(&p.carol, "/polls/1").await;
    assert_eq!(seen["tallies"], json!([0, 1]));
    assert_eq!(seen["winning_choice"], "b");
}

/// Waits (polling, with a generous deadline) until the room has a change of type `ty`.
async fn wait_for_change(p: &Party, ty: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(c) = p.changes_of(&p.alice, ty).await.pop() {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {ty} change within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn meetups_the_deadline_closer_closes_a_due_poll_and_moves_the_meetup() {
    let p = party("private").await;
    p.meetup(&p.alice, "Dinner", &from_now(10 * DAY), "Luigi's")
        .await;
    let late = from_now(12 * DAY);
    let poll = p
        .poll(
            &p.alice,
            json!({"question": "When?", "kind": "reschedule", "choices": [from_now(11 * DAY), late],
                   "meetup": 1, "closes_at": from_now(1_500)}),
        )
        .await;
    assert_eq!(poll["status"], "open");
    let (status, _) = p.vote(&p.bob, 1, json!([1])).await;
    assert_eq!(status, StatusCode::OK);
    let closing = wait_for_change(&p, "poll_closed").await;
    assert_eq!(closing["data"]["reason"], "deadline");
    assert_eq!(closing["data"]["by"], Value::Null);
    assert_eq!(closing["data"]["winning_choice"], late);
    let closed = p.get(&p.bob, "/polls/1").await;
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["reason"], "deadline");
    assert_eq!(closed["outcome"], "decided");
    assert_eq!(p.get(&p.bob, "/meetups/1").await["takes_place_on"], late);
    assert_error(
        &p.vote(&p.carol, 1, json!([0])).await,
        StatusCode::CONFLICT,
        "poll_closed",
    );
    assert!(p.alerts(&p.carol).await.is_empty());
    // Closed once, whatever the closer does on its next rounds.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(p.changes_of(&p.alice, "poll_closed").await.len(), 1);
}

/// The two last votes at once: both count and the poll closes exactly once; and a close racing
/// a vote: either the vote lands first and is in the tallies, or it is refused and is not.
#[tokio::test]
async fn meetups_racing_last_votes_and_close_against_vote_stay_consistent() {
    let p = party("private").await;
    for round in 0..4 {
        let n = round * 2 + 1;
        let poll = p
            .poll(
                &p.alice,
                json!({"question": format!("Race {n}"), "kind": "generic", "choices": ["a", "b"]}),
            )
            .await;
        assert_eq!(poll["number"], n);
        let (status, _) = p.vote(&p.alice, n, json!([0])).await;
        assert_eq!(status, StatusCode::OK);
        let (b, c) = tokio::join!(
            p.vote(&p.bob, n, json!([1])),
            p.vote(&p.carol, n, json!([1]))
        );
        assert_eq!(b.0, StatusCode::OK, "{}", b.1);
        assert_eq!(c.0, StatusCode::OK, "{}", c.1);
        let got = p.get(&p.alice, &format!("/polls/{n}")).await;
        assert_eq!(got["status"], "closed", "{got}");
        assert_eq!(got["reason"], "all_voted");
        assert_eq!(got["tallies"], json!([1, 2]));
        assert_eq!(got["voted_count"], 3);

        let m = n + 1;
        p.poll(
            &p.alice,
            json!({"question": format!("Race {m}"), "kind": "generic", "choices": ["a", "b"]}),
        )
        .await;
        let close_path = p.path(&format!("/polls/{m}/close"));
        let (closed, voted) = tokio::join!(
            p.s.post(&close_path, &p.alice, json!({})),
            p.vote(&p.bob, m, json!([1]))
        );
        assert_eq!(closed.0, StatusCode::OK, "{}", closed.1);
        let got = p.get(&p.alice, &format!("/polls/{m}")).await;
        assert_eq!(got["status"], "closed");
        assert_eq!(got["reason"], "closed");
        match voted.0 {
            StatusCode::OK => assert_eq!(got["tallies"], json!([0, 1]), "the vote counted"),
            StatusCode::CONFLICT => {
                assert_eq!(voted.1["error"]["code"], "poll_closed");
                assert_eq!(
                    got["tallies"],
                    json!([0, 0]),
                    "the refused vote left no trace"
                );
            }
            other => panic!("vote racing a close: {other} {}", voted.1),
        }
    }
    let closings = p.changes_of(&p.alice, "poll_closed").await;
    assert_eq!(closings.len(), 8, "each poll closed exactly once");
}
