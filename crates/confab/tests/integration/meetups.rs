//! Meetups, RSVPs, polls and alerts over HTTP and the WebSocket (issue 13): the happy path from
//! planning to a poll that moves the meetup, every refusal (with nothing logged), undisclosed
//! votes, the deadline closer, and the races that matter.

use crate::common::{Server, TestApp};
use crate::ws::store_changes;
use confab_core::ids::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

mod planning;
mod polls;
mod refusals;

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
