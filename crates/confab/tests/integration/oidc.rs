//! Sign-in with an OpenID Connect provider over real HTTP (issue 14): an app configures a
//! provider served by the test on loopback, clients exchange RS256 and ES256 ID tokens for
//! Confab user tokens, and every refusal answers its documented status and code.

use crate::common::{Server, TestApp, assert_error};
use confab_oidc::test_util::{FakeProvider, TestKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WEB: &str = "web-client";
const SUB: &str = "110169484474386276334";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The claims of a good token for `issuer`, with `extra` added or replaced (null removes).
fn claims(issuer: &str, extra: Value) -> Value {
    let mut c = json!({
        "iss": issuer, "aud": WEB, "sub": SUB, "iat": now(), "exp": now() + 3600,
        "email": "ann@example.com", "email_verified": true, "name": "Ann",
        "picture": "https://example.com/ann.png",
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        if v.is_null() {
            c.as_object_mut().map(|o| o.remove(k));
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// A server that may fetch keys from loopback, as the fake provider needs.
async fn server() -> Server {
    Server::start_with(|c| c.oidc_allow_loopback_http = true).await
}

async fn public_id(s: &Server, app: &TestApp) -> String {
    let (status, body) = s.get("/v1/app", &app.secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["public_id"].as_str().expect("public_id").to_owned()
}

async fn sign_in(s: &Server, app: &str, provider: &str, token: &str) -> (StatusCode, Value) {
    let body = json!({ "app": app, "provider": provider, "id_token": token });
    s.call(Method::POST, "/v1/auth/oidc", None, Some(body))
        .await
}

async fn put_provider(s: &Server, app: &TestApp, id: &str, settings: Value) -> (StatusCode, Value) {
    s.put(
        &format!("/v1/app/identity-providers/{id}"),
        &app.secret,
        settings,
    )
    .await
}

#[tokio::test]
async fn clients_exchange_rs256_and_es256_tokens_for_user_tokens() {
    let s = server().await;
    let app = s.app("oidc").await;
    let public = public_id(&s, &app).await;
    assert_eq!(public.len(), 32, "the key id of the app's tokens");
    let (rsa, ec) = (TestKey::rsa1(), TestKey::ec1());
    let idp = FakeProvider::start(&[&rsa, &ec]).await;
    let settings = json!({ "issuer": idp.issuer, "client_ids": [WEB] });
    let (status, made) = put_provider(&s, &app, "corp", settings.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["settings"]["algorithms"], json!(["RS256", "ES256"]));
    assert_eq!(made["settings"]["require_email_verified"], true);
    let (status, _) = put_provider(&s, &app, "corp", settings).await;
    assert_eq!(status, StatusCode::OK, "a second put replaces");
    let (status, list) = s.get("/v1/app/identity-providers", &app.secret).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["identity_providers"][0]["id"], "corp", "{list}");

    // RS256: a new person gets the documented derived user id and a working token.
    let (status, signed) = sign_in(
        &s,
        &public,
        "corp",
        &rsa.sign(&claims(&idp.issuer, json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let derived = confab_oidc::user_id_for(&idp.config("corp", &[WEB]), SUB);
    assert_eq!(signed["user_id"], derived.as_str());
    let token = signed["token"].as_str().expect("token");
    let (status, me) = s.get("/v1/me", token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "Ann");
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(me["image_url"], "https://example.com/ann.png");
    assert!(me["last_login_at"].is_string(), "{me}");

    // The same answer as the app-backend path.
    s.user(&app, "minted").await;
    let (_, minted) = s
        .post("/v1/users/minted/tokens", &app.secret, json!({}))
        .await;
    let keys = |v: &Value| {
        let mut k: Vec<String> = v
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&signed), keys(&minted));

    // ES256, same person, no name this time: same user, the name is kept.
    let quiet = claims(&idp.issuer, json!({ "name": null, "picture": null }));
    let (status, again) = sign_in(&s, &public, "corp", &ec.sign(&quiet)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["user_id"], derived.as_str());
    let (_, me) = s
        .get("/v1/me", again["token"].as_str().expect("token"))
        .await;
    assert_eq!(me["name"], "Ann", "a token without a name erases nothing");
    assert_eq!(me["image_url"], "https://example.com/ann.png");

    // An unverified e-mail is not taken.
    let other = claims(
        &idp.issuer,
        json!({ "sub": "someone", "email": "x@example.com", "email_verified": false }),
    );
    let (status, body) = sign_in(&s, &public, "corp", &rsa.sign(&other)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, me) = s
        .get("/v1/me", body["token"].as_str().expect("token"))
        .await;
    assert!(me["email"].is_null(), "{me}");

    // A linked identity signs in as the linked user.
    s.user(&app, "bob").await;
    let link = "/v1/app/users/bob/identities/corp";
    let (status, linked) = s
        .put(link, &app.secret, json!({ "subject": "bob-sub" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{linked}");
    assert_eq!(linked["user_id"], "bob");
    let bob = claims(&idp.issuer, json!({ "sub": "bob-sub", "name": "Robert" }));
    let (status, body) = sign_in(&s, &public, "corp", &rsa.sign(&bob)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "bob");
    let elsewhere = s
        .put(
            "/v1/app/users/minted/identities/corp",
            &app.secret,
            json!({ "subject": "bob-sub" }),
        )
        .await;
    assert_error(&elsewhere, StatusCode::CONFLICT, "identity_already_linked");
    let (status, _) = s
        .delete(&format!("{link}?subject=bob-sub"), &app.secret)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gone = s
        .delete(&format!("{link}?subject=bob-sub"), &app.secret)
        .await;
    assert_error(&gone, StatusCode::NOT_FOUND, "identity_not_found");

    // A nonce the client gives must be the token's.
    let body = json!({
        "app": public, "provider": "corp", "nonce": "n-1",
        "id_token": rsa.sign(&claims(&idp.issuer, json!({ "nonce": "n-2" }))),
    });
    let refused = s
        .call(Method::POST, "/v1/auth/oidc", None, Some(body))
        .await;
    assert_error(&refused, StatusCode::UNAUTHORIZED, "oidc_nonce_mismatch");

    // No provider setting reached the log.
    let (status, log) = s.get("/v1/events?limit=1000", &app.secret).await;
    assert_eq!(status, StatusCode::OK);
    let text = log.to_string();
    assert!(text.contains("user_logged_in"), "{text}");
    for secretish in [idp.issuer.as_str(), WEB, "client_ids", "bob-sub", SUB] {
        assert!(
            !text.contains(secretish),
            "{secretish} is in the log: {text}"
        );
    }
}

#[tokio::test]
async fn refused_exchanges_answer_their_codes() {
    let s = server().await;
    let (a, b) = (s.app("a").await, s.app("b").await);
    let (public_a, public_b) = (public_id(&s, &a).await, public_id(&s, &b).await);
    let rsa = TestKey::rsa1();
    let idp = FakeProvider::start(&[&rsa]).await;
    let settings = json!({ "issuer": idp.issuer, "client_ids": [WEB] });
    assert_eq!(
        put_provider(&s, &a, "corp", settings.clone()).await.0,
        StatusCode::CREATED
    );
    let good = rsa.sign(&claims(&idp.issuer, json!({})));
    assert_eq!(
        sign_in(&s, &public_a, "corp", &good).await.0,
        StatusCode::OK
    );

    // App A's token with app B's public id: B has no such provider, then one of its own.
    let unknown = sign_in(&s, &public_b, "corp", &good).await;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "oidc_unknown_provider");
    let theirs = json!({ "issuer": idp.issuer, "client_ids": ["b-client"] });
    assert_eq!(
        put_provider(&s, &b, "corp", theirs).await.0,
        StatusCode::CREATED
    );
    let cross = sign_in(&s, &public_b, "corp", &good).await;
    assert_error(&cross, StatusCode::UNAUTHORIZED, "oidc_wrong_audience");
    // An unknown app and an unknown provider answer alike.
    let nobody = sign_in(&s, &"0".repeat(32), "corp", &good).await;
    assert_error(&nobody, StatusCode::UNAUTHORIZED, "oidc_unknown_provider");
    let nothing = sign_in(&s, &public_a, "nope", &good).await;
    assert_error(&nothing, StatusCode::UNAUTHORIZED, "oidc_unknown_provider");
    // The app's token is not its public id.
    let by_token = sign_in(&s, &a.token, "corp", &good).await;
    assert_error(&by_token, StatusCode::UNAUTHORIZED, "oidc_unknown_provider");

    let expired = claims(
        &idp.issuer,
        json!({ "iat": now() - 7200, "exp": now() - 3600 }),
    );
    let r = sign_in(&s, &public_a, "corp", &rsa.sign(&expired)).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "oidc_token_expired");
    let elsewhere = claims(&idp.issuer, json!({ "aud": "another-client" }));
    let r = sign_in(&s, &public_a, "corp", &rsa.sign(&elsewhere)).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "oidc_wrong_audience");
    let r = sign_in(&s, &public_a, "corp", "not.a.token").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "oidc_malformed_token");

    // A disabled provider, then enabled again.
    let off = json!({ "issuer": idp.issuer, "client_ids": [WEB], "enabled": false });
    assert_eq!(put_provider(&s, &a, "corp", off).await.0, StatusCode::OK);
    let r = sign_in(&s, &public_a, "corp", &good).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "oidc_provider_disabled");
    assert_eq!(
        put_provider(&s, &a, "corp", settings).await.0,
        StatusCode::OK
    );
    assert_eq!(
        sign_in(&s, &public_a, "corp", &good).await.0,
        StatusCode::OK
    );

    // A body far larger than any ID token.
    let huge = "x".repeat(40 * 1024);
    let r = sign_in(&s, &public_a, "corp", &huge).await;
    assert_eq!(r.0, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.1);

    // The key server is down and nothing is cached: 503, the client may retry.
    let down = json!({ "issuer": "http://127.0.0.1:9", "client_ids": [WEB] });
    assert_eq!(
        put_provider(&s, &a, "down", down).await.0,
        StatusCode::CREATED
    );
    let token = rsa.sign(&claims("http://127.0.0.1:9", json!({})));
    let r = sign_in(&s, &public_a, "down", &token).await;
    assert_error(
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        "oidc_provider_unavailable",
    );

    // Deleting the provider ends its sign-ins.
    let (status, _) = s.delete("/v1/app/identity-providers/corp", &a.secret).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r = sign_in(&s, &public_a, "corp", &good).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "oidc_unknown_provider");
    let r = s.get("/v1/app/identity-providers/corp", &a.secret).await;
    assert_error(&r, StatusCode::NOT_FOUND, "identity_provider_not_found");
    // App B's provider of the same id is still there.
    let (status, _) = s.get("/v1/app/identity-providers/corp", &b.secret).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn provider_routes_refuse_bad_callers_and_settings() {
    let s = server().await;
    let (a, b) = (s.app("a").await, s.app("b").await);
    let google = json!({ "preset": "google", "client_ids": ["123.apps.googleusercontent.com"] });
    let (status, made) = put_provider(&s, &a, "google", google.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["settings"]["issuer"], "https://accounts.google.com");
    assert_eq!(made["settings"]["algorithms"], json!(["RS256"]));

    let path = "/v1/app/identity-providers/google";
    let r = s.call(Method::GET, path, None, None).await;
    assert_eq!(r.0, StatusCode::UNAUTHORIZED);
    let r = s.call(Method::PUT, path, None, Some(google.clone())).await;
    assert_eq!(r.0, StatusCode::UNAUTHORIZED);
    let r = s.get(path, "not-a-secret").await;
    assert_eq!(r.0, StatusCode::UNAUTHORIZED);
    // Another app's secret sees and deletes nothing of app A.
    let r = s.get(path, &b.secret).await;
    assert_error(&r, StatusCode::NOT_FOUND, "identity_provider_not_found");
    let r = s.delete(path, &b.secret).await;
    assert_error(&r, StatusCode::NOT_FOUND, "identity_provider_not_found");
    let (_, list) = s.get("/v1/app/identity-providers", &b.secret).await;
    assert_eq!(list["identity_providers"], json!([]));
    assert_eq!(s.get(path, &a.secret).await.0, StatusCode::OK);

    for bad in [
        json!({ "issuer": "https://id.example.com", "client_ids": ["c"], "algorithms": ["HS256"] }),
        json!({ "issuer": "https://id.example.com", "client_ids": ["c"], "algorithms": ["none"] }),
        json!({ "issuer": "ftp://id.example.com", "client_ids": ["c"] }),
        json!({ "issuer": "http://id.example.com", "client_ids": ["c"] }),
        json!({ "issuer": "https://id.example.com", "client_ids": ["c"], "jwks_uri": "https://10.0.0.1/keys" }),
        json!({ "issuer": "https://169.254.169.254", "client_ids": ["c"] }),
        json!({ "issuer": "https://id.example.com", "client_ids": [] }),
        json!({ "issuer": "https://id.example.com", "client_ids": ["c"], "secret": "x" }),
        json!({ "preset": "okta", "client_ids": ["c"] }),
    ] {
        let r = put_provider(&s, &a, "corp", bad.clone()).await;
        assert_error(
            &r,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_identity_provider",
        );
    }
    let r = put_provider(&s, &a, "Bad Id", google.clone()).await;
    assert_eq!(r.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.1);
    let moved = json!({ "issuer": "https://login.example.com", "client_ids": ["c"] });
    let r = put_provider(&s, &a, "google", moved).await;
    assert_error(&r, StatusCode::CONFLICT, "identity_provider_issuer_changed");

    // Links need the provider and the user.
    s.user(&a, "ann").await;
    let r = s
        .put(
            "/v1/app/users/ann/identities/corp",
            &a.secret,
            json!({ "subject": "s" }),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "identity_provider_not_found");
    let r = s
        .put(
            "/v1/app/users/nobody/identities/google",
            &a.secret,
            json!({ "subject": "s" }),
        )
        .await;
    assert_eq!(r.0, StatusCode::NOT_FOUND, "{}", r.1);
    let r = s
        .put(
            "/v1/app/users/ann/identities/google",
            &b.secret,
            json!({ "subject": "s" }),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "identity_provider_not_found");
}

#[tokio::test]
async fn by_default_the_server_fetches_nothing_from_loopback() {
    let s = Server::start().await;
    let app = s.app("strict").await;
    let rsa = TestKey::rsa1();
    let idp = FakeProvider::start(&[&rsa]).await;
    let r = put_provider(
        &s,
        &app,
        "corp",
        json!({ "issuer": idp.issuer, "client_ids": [WEB] }),
    )
    .await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_identity_provider",
    );
    assert!(
        r.1["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("oidc_allow_loopback_http"),
        "{}",
        r.1
    );
    assert_eq!(idp.discovery_fetches() + idp.jwks_fetches(), 0);
}
