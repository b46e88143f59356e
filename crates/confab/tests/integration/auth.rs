//! Credentials and input checks: the admin key, app secrets, user tokens, profiles, malformed
//! and oversized requests, and the isolation of apps from each other.

use crate::common::{Server, TestApp};
use reqwest::StatusCode;
use serde_json::json;

mod apps;
mod requests;
mod tokens;
mod users;

/// Mints a token for an existing user without touching their profile.
async fn token(s: &Server, app: &TestApp, id: &str) -> String {
    let (status, body) = s
        .post(&format!("/v1/users/{id}/tokens"), &app.secret, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().expect("token").to_owned()
}
