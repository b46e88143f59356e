//! Polls closing: undisclosed votes kept secret until then, the deadline closer, and the races of
//! last votes and closes.

use super::{DAY, Party, WAIT, from_now, party};
use crate::common::assert_error;
use crate::ws::login;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

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
