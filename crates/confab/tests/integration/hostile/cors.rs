//! CORS for browser clients: preflights and answers for allowed origins only, none at all
//! when no origin is configured, and credentials never read from the URL.

use crate::common::{Server, assert_error};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let s = Server::start_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let preflight = |origin: &'static str| {
        s.client
            .request(reqwest::Method::OPTIONS, format!("{}/v1/rooms", s.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            )
            .send()
    };
    let ok = preflight("https://app.example").await.expect("sent");
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    let h = ok.headers();
    let get = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(get("access-control-allow-origin"), "https://app.example");
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(get("access-control-allow-methods").contains(m), "{h:?}");
    }
    assert!(
        get("access-control-allow-headers").contains("authorization"),
        "{h:?}"
    );
    assert!(
        get("access-control-allow-headers").contains("content-type"),
        "{h:?}"
    );
    assert!(
        get("access-control-max-age").parse::<u32>().is_ok(),
        "{h:?}"
    );
    assert!(h.get("access-control-allow-credentials").is_none());

    let refused = preflight("https://evil.example").await.expect("sent");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let status = refused.status();
    let body: Value = refused.json().await.expect("json");
    assert_error(&(status, body), StatusCode::FORBIDDEN, "origin_not_allowed");

    // Real requests: the allowed origin may read the answer, another may not.
    let app = s.app("cors").await;
    let alice = s.user(&app, "alice").await;
    for (origin, allowed) in [
        ("https://app.example", true),
        ("https://evil.example", false),
    ] {
        let resp = s
            .client
            .get(format!("{}/v1/rooms", s.base))
            .bearer_auth(&alice)
            .header("Origin", origin)
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), StatusCode::OK);
        let acao = resp.headers().get("access-control-allow-origin").cloned();
        assert_eq!(acao.is_some(), allowed, "{origin}: {acao:?}");
    }
    // Credentials are read from the Authorization header only, never from the URL.
    let (status, _) = s
        .call(
            reqwest::Method::GET,
            &format!("/v1/rooms?access_token={alice}"),
            None,
            None,
        )
        .await;
    assert!(status.is_client_error(), "{status}");
    assert_ne!(status, StatusCode::OK);

    // With no origins configured, there are no CORS headers at all.
    let plain = Server::start().await;
    let resp = plain
        .client
        .get(format!("{}/healthz", plain.base))
        .header("Origin", "https://app.example")
        .send()
        .await
        .expect("sent");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}
