//! The happy path: planning and answering meetups, a reschedule poll that moves the meetup, and
//! cancelling.

use super::{DAY, from_now, party};
use reqwest::StatusCode;
use serde_json::{Value, json};

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
