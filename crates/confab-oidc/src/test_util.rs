//! A fake OpenID Connect provider on loopback (discovery document and key set, fetch
//! counters, switches to rotate keys, fail or hang) and the signing keys of the tests.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::ProviderConfig;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A signing key of the tests, with the public JWK a provider would publish for it.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub enc: EncodingKey,
    pub jwk: Value,
}

fn der_of(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("test key PEM is base64")
}

impl TestKey {
    fn new(kid: &str, alg: Algorithm, enc: EncodingKey) -> TestKey {
        let jwk = Jwk::from_encoding_key(&enc, alg).expect("public JWK of a test key");
        let mut jwk = serde_json::to_value(jwk).expect("JWK serializes");
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        TestKey {
            kid: kid.to_owned(),
            alg,
            enc,
            jwk,
        }
    }
    pub fn rsa1() -> TestKey {
        let der = der_of(include_str!("../test-keys/rsa1.pem"));
        TestKey::new("rsa-1", Algorithm::RS256, EncodingKey::from_rsa_der(&der))
    }
    pub fn rsa2() -> TestKey {
        let der = der_of(include_str!("../test-keys/rsa2.pem"));
        TestKey::new("rsa-2", Algorithm::RS256, EncodingKey::from_rsa_der(&der))
    }
    pub fn ec1() -> TestKey {
        let der = der_of(include_str!("../test-keys/ec1.pem"));
        TestKey::new("ec-1", Algorithm::ES256, EncodingKey::from_ec_der(&der))
    }

    /// A token with these claims, signed by this key, naming its `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// The same, naming another `kid`.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&h, claims, &self.enc).expect("test token signs")
    }
}

/// The public key of `rsa1.pem`, as an attacker would find it.
pub const RSA1_PUBLIC_PEM: &str = include_str!("../test-keys/rsa1.pub.pem");

#[derive(Default)]
pub struct Switches {
    pub keys: Mutex<Vec<Value>>,
    /// Answer 500 to everything.
    pub failing: AtomicBool,
    /// Never answer.
    pub hanging: AtomicBool,
    /// Hold discovery answers until `release` is notified with this cleared.
    pub held: AtomicBool,
    pub release: tokio::sync::Notify,
    pub cache_control: Mutex<Option<String>>,
    /// Pad the key set with this many bytes of whitespace.
    pub padding: AtomicUsize,
    pub discovery_fetches: AtomicUsize,
    pub jwks_fetches: AtomicUsize,
}

pub struct FakeProvider {
    pub issuer: String,
    pub switches: Arc<Switches>,
}

/// The certificate authority of the HTTPS fake provider (DER), to trust in a verifier.
pub fn tls_ca_der() -> Vec<u8> {
    der_of(include_str!("../test-keys/tls-ca.pem"))
}

impl FakeProvider {
    /// A provider over plain HTTP on loopback.
    pub async fn start(keys: &[&TestKey]) -> FakeProvider {
        Self::start_with(keys, false).await
    }

    /// A provider over HTTPS on 127.0.0.1, with a certificate of the tests' own authority.
    pub async fn start_tls(keys: &[&TestKey]) -> FakeProvider {
        Self::start_with(keys, true).await
    }

    async fn start_with(keys: &[&TestKey], tls: bool) -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let issuer = format!("{}://{addr}", if tls { "https" } else { "http" });
        let switches = Arc::new(Switches::default());
        *switches.keys.lock().expect("lock") = keys.iter().map(|k| k.jwk.clone()).collect();
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state((issuer.clone(), switches.clone()));
        if tls {
            tokio::spawn(serve_tls(listener, app));
        } else {
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .await
                    .expect("fake provider serves");
            });
        }
        FakeProvider { issuer, switches }
    }

    /// Publish exactly these keys from now on.
    pub fn rotate_to(&self, keys: &[&TestKey]) {
        *self.switches.keys.lock().expect("lock") = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    /// Let held discovery requests go.
    pub fn release(&self) {
        self.switches.held.store(false, Ordering::SeqCst);
        self.switches.release.notify_waiters();
    }

    pub fn set_failing(&self, on: bool) {
        self.switches.failing.store(on, Ordering::SeqCst);
    }

    pub fn jwks_fetches(&self) -> usize {
        self.switches.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> usize {
        self.switches.discovery_fetches.load(Ordering::SeqCst)
    }

    /// A provider setting for this issuer, found through discovery.
    pub fn config(&self, id: &str, client_ids: &[&str]) -> ProviderConfig {
        let c: ProviderConfig = serde_json::from_value(json!({
            "id": id,
            "issuer": self.issuer,
            "client_ids": client_ids,
        }))
        .expect("provider config parses");
        c.validate().expect("provider config is valid");
        c
    }
}

async fn serve_tls(listener: tokio::net::TcpListener, app: axum::Router) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = CertificateDer::from(der_of(include_str!("../test-keys/tls-server.pem")));
    let key = PrivatePkcs8KeyDer::from(der_of(include_str!("../test-keys/tls-server.key.pem")));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert], PrivateKeyDer::Pkcs8(key))
    .expect("test server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            // A client that refuses the certificate ends its handshake here.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}

type Shared = (String, Arc<Switches>);

async fn misbehave(s: &Switches) -> Option<Response> {
    if s.hanging.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    if s.failing.load(Ordering::SeqCst) {
        return Some(StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    None
}

fn with_cache_control(s: &Switches, body: String) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(cc) = s.cache_control.lock().expect("lock").clone() {
        r.headers_mut()
            .insert(header::CACHE_CONTROL, cc.parse().expect("header value"));
    }
    r
}

async fn discovery(State((issuer, s)): State<Shared>) -> Response {
    s.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    loop {
        // Created before the check, so a release between the two is not missed.
        let released = s.release.notified();
        if !s.held.load(Ordering::SeqCst) {
            break;
        }
        released.await;
    }
    if let Some(r) = misbehave(&s).await {
        return r;
    }
    let doc = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    });
    with_cache_control(&s, doc.to_string())
}

async fn jwks(State((_, s)): State<Shared>) -> Response {
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = misbehave(&s).await {
        return r;
    }
    let keys = s.keys.lock().expect("lock").clone();
    let mut body = json!({ "keys": keys }).to_string();
    body.push_str(&" ".repeat(s.padding.load(Ordering::SeqCst)));
    with_cache_control(&s, body)
}
