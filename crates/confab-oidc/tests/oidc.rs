//! ID-token verification against a provider served by the test on loopback: every refusal
//! of issue 14 with its error code, and the key cache's promises (rotation, bounded refetch
//! under a flood of unknown key ids, cached keys while the provider is down).

use confab_oidc::test_util as support;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confab_oidc::{FetchPolicy, OidcError, ProviderConfig, Verifier, VerifierOptions, user_id_for};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::{FakeProvider, RSA1_PUBLIC_PEM, TestKey};

const WEB: &str = "web-client";
const SUB: &str = "110169484474386276334";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The claims of a good token for `issuer`, with `extra` added or replaced (null removes).
fn claims(issuer: &str, extra: Value) -> Value {
    let mut c = json!({
        "iss": issuer,
        "aud": WEB,
        "sub": SUB,
        "iat": now(),
        "exp": now() + 3600,
        "email": "ann@example.com",
        "email_verified": true,
        "name": "Ann",
        "picture": "https://example.com/ann.png",
        "nonce": "n-0S6",
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

/// The fake provider is on loopback: these tests allow it, as the server's tests do.
fn verifier(opts: VerifierOptions) -> Arc<Verifier> {
    let opts = VerifierOptions {
        fetch_policy: FetchPolicy {
            allow_loopback_http: true,
            allow_private_networks: false,
        },
        ..opts
    };
    Arc::new(Verifier::new(opts).expect("verifier builds"))
}

/// Production settings, except a cool-down long enough never to pass during a test.
fn long_cooldown() -> VerifierOptions {
    VerifierOptions {
        refetch_cooldown: Duration::from_secs(3600),
        ..VerifierOptions::default()
    }
}

/// No cool-down and no minimum cache lifetime: every miss or expiry refetches.
fn no_cooldown() -> VerifierOptions {
    VerifierOptions {
        refetch_cooldown: Duration::ZERO,
        ..VerifierOptions::default()
    }
}

async fn setup(opts: VerifierOptions) -> (FakeProvider, ProviderConfig, Arc<Verifier>, TestKey) {
    let rsa = TestKey::rsa1();
    let ec = TestKey::ec1();
    let idp = FakeProvider::start(&[&rsa, &ec]).await;
    let config = idp.config("corp", &[WEB]);
    (idp, config, verifier(opts), rsa)
}

#[tokio::test]
async fn valid_rs256_and_es256_tokens_give_the_identity() {
    let (idp, config, v, rsa) = setup(long_cooldown()).await;
    let ec = TestKey::ec1();
    for key in [&rsa, &ec] {
        let token = key.sign(&claims(&idp.issuer, json!({})));
        let id = v
            .verify(&config, &token, Some("n-0S6"))
            .await
            .unwrap_or_else(|e| panic!("{:?} token refused: {e:?}", key.alg));
        assert_eq!(id.provider, "corp");
        assert_eq!(id.subject, SUB);
        assert_eq!(id.email.as_deref(), Some("ann@example.com"));
        assert_eq!(id.name.as_deref(), Some("Ann"));
        assert_eq!(id.picture.as_deref(), Some("https://example.com/ann.png"));
        assert_eq!(id.user_id(), user_id_for(&config, SUB));
    }
    assert_eq!(idp.discovery_fetches(), 1);
    assert_eq!(idp.jwks_fetches(), 1, "both keys come from one cached set");
}

#[tokio::test]
async fn time_claims_are_checked_with_a_minute_of_leeway() {
    let (idp, config, v, rsa) = setup(long_cooldown()).await;
    let t = now();
    let cases = [
        (
            json!({"exp": t - 3600, "iat": t - 7200}),
            Some(OidcError::TokenExpired),
        ),
        (json!({"exp": t - 20}), None),
        (json!({"nbf": t + 3600}), Some(OidcError::TokenNotYetValid)),
        (json!({"nbf": t + 20}), None),
        (json!({"iat": t + 3600}), Some(OidcError::IssuedInFuture)),
        (
            json!({"exp": null}),
            Some(OidcError::MalformedToken("no exp")),
        ),
    ];
    for (extra, want) in cases {
        let token = rsa.sign(&claims(&idp.issuer, extra.clone()));
        let got = v.verify(&config, &token, None).await.err();
        assert_eq!(got, want, "{extra}");
    }
}

#[tokio::test]
async fn issuer_audience_and_azp_must_match() {
    let (idp, config, v, rsa) = setup(long_cooldown()).await;
    let cases = [
        (json!({"aud": "someone-else"}), OidcError::WrongAudience),
        (json!({"aud": null}), OidcError::WrongAudience),
        (
            json!({"iss": "https://accounts.google.com"}),
            OidcError::WrongIssuer,
        ),
        (
            json!({"iss": format!("{}/", idp.issuer)}),
            OidcError::WrongIssuer,
        ),
        (
            json!({"aud": [WEB, "other"], "azp": "other"}),
            OidcError::AzpMismatch,
        ),
        (json!({"aud": [WEB, "other"]}), OidcError::AzpMismatch),
    ];
    for (extra, want) in cases {
        let token = rsa.sign(&claims(&idp.issuer, extra.clone()));
        assert_eq!(v.verify(&config, &token, None).await, Err(want), "{extra}");
    }
    let several = json!({"aud": [WEB, "other"], "azp": WEB});
    let token = rsa.sign(&claims(&idp.issuer, several));
    assert!(v.verify(&config, &token, None).await.is_ok());
}

#[tokio::test]
async fn a_tampered_payload_fails_the_signature() {
    let (idp, config, v, rsa) = setup(long_cooldown()).await;
    let token = rsa.sign(&claims(&idp.issuer, json!({})));
    let parts: Vec<&str> = token.split('.').collect();
    let forged = claims(&idp.issuer, json!({"sub": "admin"}));
    let forged = URL_SAFE_NO_PAD.encode(forged.to_string());
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    assert_eq!(
        v.verify(&config, &tampered, None).await,
        Err(OidcError::BadSignature)
    );
    let cut = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        &parts[2][..parts[2].len() - 4]
    );
    assert_eq!(
        v.verify(&config, &cut, None).await,
        Err(OidcError::BadSignature)
    );
}

#[tokio::test]
async fn alg_none_and_hmac_with_the_public_key_are_refused() {
    let (idp, config, v, _rsa) = setup(long_cooldown()).await;
    let body = URL_SAFE_NO_PAD.encode(claims(&idp.issuer, json!({})).to_string());
    for alg in ["none", "None", "NONE"] {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": "rsa-1"}).to_string());
        let token = format!("{header}.{body}.");
        assert_eq!(
            v.verify(&config, &token, None).await,
            Err(OidcError::AlgorithmNotAllowed),
            "{alg}"
        );
    }
    // The classic confusion attack: the provider's public key used as an HMAC secret.
    for secret in [
        RSA1_PUBLIC_PEM.as_bytes(),
        RSA1_PUBLIC_PEM.trim().as_bytes(),
    ] {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("rsa-1".into());
        let claims = claims(&idp.issuer, json!({}));
        let token = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(secret))
            .expect("HS256 signs");
        assert_eq!(
            v.verify(&config, &token, None).await,
            Err(OidcError::AlgorithmNotAllowed)
        );
    }
    // ES256 is not in an RS256-only provider's list, even with a good signature.
    let mut rs_only = config.clone();
    rs_only.algorithms = vec![confab_oidc::SigningAlgorithm::RS256];
    let token = TestKey::ec1().sign(&claims(&idp.issuer, json!({})));
    assert_eq!(
        v.verify(&rs_only, &token, None).await,
        Err(OidcError::AlgorithmNotAllowed)
    );
}

#[tokio::test]
async fn an_access_token_does_not_pass_for_an_id_token() {
    let (idp, config, v, rsa) = setup(long_cooldown()).await;
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(rsa.kid.clone());
    h.typ = Some("at+jwt".into());
    let token = jsonwebtoken::encode(&h, &claims(&idp.issuer, json!({})), &rsa.enc).expect("signs");
    assert_eq!(
        v.verify(&config, &token, None).await,
        Err(OidcError::MalformedToken(
            "an access token, not an ID token"
        ))
    );
}

#[tokio::test]
async fn malformed_tokens_are_named_so() {
    let (_idp, config, v, _rsa) = setup(long_cooldown()).await;
    let big = "a".repeat(confab_oidc::MAX_TOKEN_BYTES + 1);
    for token in ["", "abc", "a.b", "a.b.c.d", "!!.??.xx", big.as_str()] {
        let got = v.verify(&config, token, None).await;
        assert!(
            matches!(got, Err(OidcError::MalformedToken(_))),
            "{:.20}: {got:?}",
            token
        );
    }
}

#[tokio::test]
async fn a_rotated_key_costs_exactly_one_refetch() {
    let (idp, config, v, rsa1) = setup(no_cooldown()).await;
    let token = rsa1.sign(&claims(&idp.issuer, json!({})));
    assert!(v.verify(&config, &token, None).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 1);

    let rsa2 = TestKey::rsa2();
    idp.rotate_to(&[&rsa2]);
    let token2 = rsa2.sign(&claims(&idp.issuer, json!({})));
    assert!(v.verify(&config, &token2, None).await.is_ok());
    assert_eq!(
        idp.jwks_fetches(),
        2,
        "the unknown kid refetched the set once"
    );
    assert!(v.verify(&config, &token2, None).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 2, "the new key is cached");
    assert_eq!(idp.discovery_fetches(), 1);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_does_not_hammer_the_provider() {
    let (idp, config, v, rsa) = setup(long_cooldown()).await;
    let good = rsa.sign(&claims(&idp.issuer, json!({})));
    assert!(v.verify(&config, &good, None).await.is_ok());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let token = rsa.sign_as(&format!("random-{i}"), &claims(&idp.issuer, json!({})));
        let (v, config) = (v.clone(), config.clone());
        tasks.push(tokio::spawn(async move {
            v.verify(&config, &token, None).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), Err(OidcError::UnknownKey));
    }
    assert_eq!(idp.jwks_fetches(), 1, "no refetch within the cool-down");
    assert!(v.verify(&config, &good, None).await.is_ok());
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_cooldown_even_on_a_cold_cache() {
    let (idp, config, v, rsa) = setup(long_cooldown()).await;
    for i in 0..20 {
        let token = rsa.sign_as(&format!("random-{i}"), &claims(&idp.issuer, json!({})));
        assert_eq!(
            v.verify(&config, &token, None).await,
            Err(OidcError::UnknownKey)
        );
    }
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn concurrent_verifications_share_one_fetch() {
    // With a cool-down, callers arriving during the fetch must wait for it, not give up.
    let (idp, config, v, rsa) = setup(long_cooldown()).await;
    let token = rsa.sign(&claims(&idp.issuer, json!({})));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (v, config, token) = (v.clone(), config.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            v.verify(&config, &token, None).await
        }));
    }
    for t in tasks {
        assert!(t.await.expect("task").is_ok());
    }
    assert_eq!(idp.discovery_fetches(), 1);
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn a_fetch_outlives_the_request_that_started_it() {
    let (idp, config, v, rsa) = setup(long_cooldown()).await;
    idp.switches
        .held
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let token = rsa.sign(&claims(&idp.issuer, json!({})));
    let first = {
        let (v, config, token) = (v.clone(), config.clone(), token.clone());
        tokio::spawn(async move { v.verify(&config, &token, None).await })
    };
    // Wait until the provider has the request, then cancel the caller (a client that hung
    // up), and only then let the provider answer.
    tokio::time::timeout(Duration::from_secs(10), async {
        while idp.discovery_fetches() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the provider is asked");
    first.abort();
    idp.release();
    // Within the cool-down, so this works only if the first fetch went on and was cached.
    let id = v.verify(&config, &token, None).await;
    assert!(id.is_ok(), "{id:?}");
    assert_eq!(idp.discovery_fetches(), 1);
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_provider_is_down() {
    // Documents expire at once, so every verification tries to refresh them.
    let opts = VerifierOptions {
        min_cache_ttl: Duration::ZERO,
        ..no_cooldown()
    };
    let (idp, config, v, rsa) = setup(opts).await;
    *idp.switches.cache_control.lock().expect("lock") = Some("no-store".into());
    let token = rsa.sign(&claims(&idp.issuer, json!({})));
    assert!(v.verify(&config, &token, None).await.is_ok());
    idp.set_failing(true);
    for _ in 0..3 {
        assert!(v.verify(&config, &token, None).await.is_ok());
    }
    assert_eq!(idp.jwks_fetches(), 4, "each refresh was tried and failed");
    assert_eq!(idp.discovery_fetches(), 4);
    idp.set_failing(false);
    assert!(v.verify(&config, &token, None).await.is_ok());
}

#[tokio::test]
async fn an_unreachable_provider_with_nothing_cached_is_a_503() {
    let (idp, config, v, rsa) = setup(long_cooldown()).await;
    idp.set_failing(true);
    let token = rsa.sign(&claims(&idp.issuer, json!({})));
    for _ in 0..3 {
        let e = v.verify(&config, &token, None).await.expect_err("no keys");
        assert_eq!(e.code(), "oidc_provider_unavailable");
        assert_eq!(e.http_status(), 503);
    }
    assert_eq!(idp.discovery_fetches(), 1, "retries wait for the cool-down");

    // A key set URL given directly: the same, without discovery.
    let mut direct = config.clone();
    direct.jwks_uri = Some(format!("{}/jwks", idp.issuer));
    let e = v.verify(&direct, &token, None).await.expect_err("no keys");
    assert_eq!(e.http_status(), 503);
    assert_eq!(idp.jwks_fetches(), 1);

    // Nothing listens: refused connections.
    let gone = "http://127.0.0.1:9/".to_owned();
    let mut nowhere = config.clone();
    nowhere.issuer = gone.clone();
    let token = rsa.sign(&claims(&gone, json!({})));
    let e = v.verify(&nowhere, &token, None).await.expect_err("no keys");
    assert_eq!(e.http_status(), 503);
}

#[tokio::test]
async fn a_hanging_or_oversized_key_server_is_given_up() {
    let opts = VerifierOptions {
        http_timeout: Duration::from_millis(300),
        max_response_bytes: 16 * 1024,
        ..long_cooldown()
    };
    let (idp, config, v, rsa) = setup(opts).await;
    let token = rsa.sign(&claims(&idp.issuer, json!({})));
    idp.switches
        .hanging
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let e = tokio::time::timeout(Duration::from_secs(30), v.verify(&config, &token, None))
        .await
        .expect("the fetch deadline ends the wait");
    assert_eq!(e.map_err(|e| e.code()), Err("oidc_provider_unavailable"));

    let (idp, config, v, rsa) = setup(VerifierOptions {
        max_response_bytes: 16 * 1024,
        ..long_cooldown()
    })
    .await;
    idp.switches
        .padding
        .store(64 * 1024, std::sync::atomic::Ordering::SeqCst);
    let token = rsa.sign(&claims(&idp.issuer, json!({})));
    let e = v.verify(&config, &token, None).await;
    assert_eq!(e.map_err(|e| e.code()), Err("oidc_provider_unavailable"));
}

#[tokio::test]
async fn an_unverified_email_is_dropped_or_refused_by_an_allow_list() {
    let (idp, mut config, v, rsa) = setup(long_cooldown()).await;
    let unverified = rsa.sign(&claims(&idp.issuer, json!({"email_verified": false})));
    let id = v
        .verify(&config, &unverified, None)
        .await
        .expect("signs in");
    assert_eq!(id.email, None, "the unverified address is not used");

    config.allowed_emails = vec!["@example.com".into()];
    assert_eq!(
        v.verify(&config, &unverified, None).await,
        Err(OidcError::EmailNotVerified)
    );
    let verified = rsa.sign(&claims(&idp.issuer, json!({})));
    assert!(v.verify(&config, &verified, None).await.is_ok());
    let stranger = rsa.sign(&claims(&idp.issuer, json!({"email": "eve@evil.example"})));
    assert_eq!(
        v.verify(&config, &stranger, None).await,
        Err(OidcError::EmailNotAllowed)
    );

    config.allowed_emails.clear();
    config.hosted_domains = vec!["example.com".into()];
    assert_eq!(
        v.verify(&config, &verified, None).await,
        Err(OidcError::HostedDomainNotAllowed)
    );
    let workspace = rsa.sign(&claims(&idp.issuer, json!({"hd": "example.com"})));
    assert!(v.verify(&config, &workspace, None).await.is_ok());
}

#[tokio::test]
async fn a_given_nonce_must_match() {
    let (idp, config, v, rsa) = setup(long_cooldown()).await;
    let token = rsa.sign(&claims(&idp.issuer, json!({})));
    assert_eq!(
        v.verify(&config, &token, Some("other")).await,
        Err(OidcError::NonceMismatch)
    );
    assert!(v.verify(&config, &token, Some("n-0S6")).await.is_ok());
    assert!(
        v.verify(&config, &token, None).await.is_ok(),
        "no nonce given"
    );
    let without = rsa.sign(&claims(&idp.issuer, json!({"nonce": null})));
    assert_eq!(
        v.verify(&config, &without, Some("n-0S6")).await,
        Err(OidcError::NonceMismatch)
    );
}

#[tokio::test]
async fn a_disabled_provider_refuses_before_any_fetch() {
    let (idp, mut config, v, rsa) = setup(long_cooldown()).await;
    config.enabled = false;
    let token = rsa.sign(&claims(&idp.issuer, json!({})));
    assert_eq!(
        v.verify(&config, &token, None).await,
        Err(OidcError::ProviderDisabled)
    );
    assert_eq!(idp.discovery_fetches() + idp.jwks_fetches(), 0);
}

#[tokio::test]
async fn a_token_for_another_apps_client_never_passes() {
    // Two apps trust the same issuer, each with its own client id.
    let (idp, _, v, rsa) = setup(long_cooldown()).await;
    let app_a = idp.config("google", &["app-a-web", "app-a-android"]);
    let app_b = idp.config("google", &["app-b-web"]);
    let for_b = rsa.sign(&claims(&idp.issuer, json!({"aud": "app-b-web"})));
    assert_eq!(
        v.verify(&app_a, &for_b, None).await,
        Err(OidcError::WrongAudience)
    );
    assert!(v.verify(&app_b, &for_b, None).await.is_ok());
    let for_a = rsa.sign(&claims(&idp.issuer, json!({"aud": "app-a-android"})));
    assert!(v.verify(&app_a, &for_a, None).await.is_ok());
    assert_eq!(
        v.verify(&app_b, &for_a, None).await,
        Err(OidcError::WrongAudience)
    );
}

#[tokio::test]
async fn a_key_of_another_kind_under_the_named_kid_is_not_used() {
    let (idp, config, v, rsa) = setup(long_cooldown()).await;
    // Signed with RSA but naming the EC key: no key fits, whatever the signature.
    let token = rsa.sign_as("ec-1", &claims(&idp.issuer, json!({})));
    assert_eq!(
        v.verify(&config, &token, None).await,
        Err(OidcError::UnknownKey)
    );
    // Signed with the other RSA key under rsa-1's kid: the signature fails.
    let token = TestKey::rsa2().sign_as("rsa-1", &claims(&idp.issuer, json!({})));
    assert_eq!(
        v.verify(&config, &token, None).await,
        Err(OidcError::BadSignature)
    );
}

#[tokio::test]
async fn keys_are_fetched_over_https_from_a_trusted_authority_only() {
    let rsa = TestKey::rsa1();
    let idp = FakeProvider::start_tls(&[&rsa]).await;
    assert!(idp.issuer.starts_with("https://127.0.0.1:"));
    let config = idp.config("corp", &[WEB]);
    let token = rsa.sign(&claims(&idp.issuer, json!({})));

    let untrusting = verifier(long_cooldown());
    let e = untrusting.verify(&config, &token, None).await;
    assert_eq!(e.map_err(|e| e.code()), Err("oidc_provider_unavailable"));

    let trusting = verifier(VerifierOptions {
        extra_root_certificates: vec![support::tls_ca_der()],
        ..long_cooldown()
    });
    let id = trusting
        .verify(&config, &token, None)
        .await
        .expect("verified over https");
    assert_eq!(id.subject, SUB);
    assert_eq!(idp.discovery_fetches(), 1);
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn by_default_nothing_is_fetched_from_loopback() {
    let rsa = TestKey::rsa1();
    let idp = FakeProvider::start(&[&rsa]).await;
    let config = idp.config("corp", &[WEB]);
    let token = rsa.sign(&claims(&idp.issuer, json!({})));
    let strict = Arc::new(Verifier::new(long_cooldown()).expect("verifier builds"));
    let e = strict.verify(&config, &token, None).await;
    assert_eq!(e.map_err(|e| e.code()), Err("oidc_provider_unavailable"));
    let mut direct = config.clone();
    direct.jwks_uri = Some(format!("{}/jwks", idp.issuer));
    let e = strict.verify(&direct, &token, None).await;
    assert_eq!(e.map_err(|e| e.code()), Err("oidc_provider_unavailable"));
    assert_eq!(idp.discovery_fetches() + idp.jwks_fetches(), 0);
    assert!(config.check_fetch_policy(strict.fetch_policy()).is_err());
}
