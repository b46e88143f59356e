//! The one HTTP GET this crate makes: a provider's discovery document or key set. HTTPS
//! (rustls, `ring` provider, the system's root certificates), plain HTTP only to loopback,
//! one deadline for the whole exchange, a bound on the body, no redirects, no proxy.
//!
//! Why not reqwest: enabling its rustls support in this crate turns it on for every crate of
//! the workspace that uses reqwest (Cargo unifies features), and reqwest then panics on
//! `Client::new()` unless a process-wide rustls provider was installed first. A fetch of a
//! small JSON document once in minutes needs none of its pooling; hyper is already built.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::Url;

use crate::config::{FetchPolicy, check_fetch_url, is_loopback_host, policy_allows_url};

/// Why a fetch failed; only ever logged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("refused URL: {0}")]
    Url(String),
    #[error("{0} did not answer within {1:?}")]
    Timeout(String, Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("HTTP exchange failed: {0}")]
    Http(String),
    #[error("answered with status {0}")]
    Status(u16),
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
}

/// A fetched document and how long the server said it may be cached.
pub(crate) struct Fetched {
    pub body: Bytes,
    pub max_age: Option<Duration>,
}

pub(crate) struct Http {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
    max_bytes: usize,
    policy: FetchPolicy,
}

impl Http {
    pub(crate) fn new(
        timeout: Duration,
        max_bytes: usize,
        extra_roots: &[Vec<u8>],
        policy: FetchPolicy,
    ) -> Result<Http, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        for der in extra_roots {
            roots.add(rustls::pki_types::CertificateDer::from(der.clone()))?;
        }
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "cannot read a system root certificate");
        }
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 && extra_roots.is_empty() {
            // Loopback tests still work; every https fetch will fail and be logged.
            tracing::warn!("no system root certificate found: https key fetches will fail");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Http {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            timeout,
            max_bytes,
            policy,
        })
    }

    pub(crate) async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        match tokio::time::timeout(self.timeout, self.get_within(url)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(url.to_owned(), self.timeout)),
        }
    }

    async fn get_within(&self, raw: &str) -> Result<Fetched, FetchError> {
        check_fetch_url(raw).map_err(FetchError::Url)?;
        policy_allows_url(raw, self.policy).map_err(FetchError::Url)?;
        let url = Url::parse(raw).map_err(|e| FetchError::Url(e.to_string()))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(FetchError::Url("no host".into())),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| FetchError::Url("no port".into()))?;
        let https = url.scheme() == "https";
        let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| FetchError::Connect(format!("{host}: {e}")))?
            .collect();
        // `localhost` must not resolve anywhere else for plain http.
        if !https && (!is_loopback_host(&url) || addrs.iter().any(|a| !a.ip().is_loopback())) {
            return Err(FetchError::Url(
                "plain http to a non-loopback address".into(),
            ));
        }
        // Checked on the addresses connected to, so a name cannot lead inside either.
        if let Some(a) = addrs.iter().find(|a| !self.policy.allows(a.ip())) {
            return Err(FetchError::Url(format!(
                "{host} resolves to {}, an address this server does not fetch from",
                a.ip()
            )));
        }
        let mut last = FetchError::Connect(format!("{host}: no address"));
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = FetchError::Connect(format!("{addr}: {e}")),
            }
        }
        let tcp = tcp.ok_or(last)?;
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or(&host)),
            None => url.host_str().unwrap_or(&host).to_owned(),
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| FetchError::Url(e.to_string()))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| FetchError::Connect(format!("TLS with {host}: {e}")))?;
            self.exchange(tls, &authority, &path).await
        } else {
            self.exchange(tcp, &authority, &path).await
        }
    }

    async fn exchange<S>(&self, io: S, authority: &str, path: &str) -> Result<Fetched, FetchError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        // The connection task ends with the exchange (or with the caller's deadline, when
        // the sender is dropped).
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "key fetch connection ended");
            }
        });
        let request = http::Request::get(path)
            .header(http::header::HOST, authority)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "confab-oidc")
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let status = response.status();
        if status != http::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let max_age = response
            .headers()
            .get_all(http::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(max_age_of);
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_bytes as u64) {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let body = Limited::new(response.into_body(), self.max_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge(self.max_bytes)
                } else {
                    FetchError::Http(e.to_string())
                }
            })?
            .to_bytes();
        Ok(Fetched { body, max_age })
    }
}

/// The lifetime a `Cache-Control` value gives: `max-age=N`, or zero for `no-store` /
/// `no-cache` (the caller clamps it to its bounds).
pub(crate) fn max_age_of(value: &str) -> Option<Duration> {
    let mut found = None;
    for directive in value.split(',') {
        let d = directive.trim();
        let lower = d.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            found = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        let s = Duration::from_secs;
        assert_eq!(
            max_age_of("public, max-age=19845, must-revalidate, no-transform"),
            Some(s(19845))
        );
        assert_eq!(max_age_of("Max-Age=\"60\""), Some(s(60)));
        assert_eq!(max_age_of("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age_of("public"), None);
        assert_eq!(max_age_of("max-age=soon"), None);
    }
}
