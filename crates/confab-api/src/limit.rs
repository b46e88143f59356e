//! Rate limits: token buckets keyed by who is asking, so no single user, tenant or address can
//! take the server for itself.
//!
//! - **sends**, per user of an app: REST and WebSocket sends, edits, deletes, and WebSocket
//!   replays (`resume`) all draw from the same bucket, whatever path they come by;
//! - **reads**, per user (or per app for `/v1/events`): the expensive reads (history pages,
//!   threads, `/changes`, `/events`, search; a search with a 1–2 character term scans, so it
//!   costs more);
//! - **app**, per app: every request authenticated as the app or one of its users;
//! - **anonymous**, per client address: the seed-004 routes, whose only credential is a public
//!   token, and (in a bucket of its own) app creation without the admin key.
//!
//! Keys are hashed with a per-limiter random seed into a `u64`, so the hot path allocates
//! nothing and a client cannot aim collisions. Each map is bounded: when it reaches its size,
//! buckets that have refilled (idle callers) are dropped, and if a flood of distinct keys keeps
//! it over half full it is emptied, which forgets limits for a moment rather than growing.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use confab_core::ids::{AppId, UserId};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A sustained rate with a burst. A rate of 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    pub const fn new(per_second: f64, burst: f64) -> Self {
        Rate { per_second, burst }
    }

    /// No limit at all: nothing is counted and nothing is stored.
    pub const OFF: Rate = Rate::new(0.0, 0.0);

    fn is_off(&self) -> bool {
        self.per_second <= 0.0
    }
}

/// Every limit of the API.
#[derive(Debug, Clone)]
pub struct LimitConfig {
    pub sends: Rate,
    pub reads: Rate,
    pub app: Rate,
    pub anonymous: Rate,
    pub app_creations: Rate,
    /// Most buckets one limiter keeps.
    pub max_keys: usize,
}

impl Default for LimitConfig {
    fn default() -> Self {
        LimitConfig {
            sends: Rate::new(20.0, 20.0),
            reads: Rate::new(20.0, 60.0),
            app: Rate::new(2000.0, 4000.0),
            anonymous: Rate::new(20.0, 60.0),
            app_creations: Rate::new(20.0 / 3600.0, 5.0),
            max_keys: 100_000,
        }
    }
}

/// What a read costs from the reads budget; a short search term scans the room.
pub const READ_COST: f64 = 1.0;
pub const SHORT_SEARCH_COST: f64 = 10.0;
/// Changes replayed by a `resume` per unit of the sends budget.
pub const REPLAYED_PER_TOKEN: u64 = 100;

/// The cost of a search for `q`: higher when a term is 1–2 characters (those scan).
pub fn search_cost(q: &str) -> f64 {
    if q.split_whitespace().any(|t| t.chars().count() <= 2) {
        SHORT_SEARCH_COST
    } else {
        READ_COST
    }
}

/// The limiters of one server, shared by REST handlers and WebSocket sessions.
pub struct Limits {
    sends: Limiter,
    reads: Limiter,
    app: Limiter,
    anonymous: Limiter,
    app_creations: Limiter,
}

impl Limits {
    pub fn new(c: &LimitConfig) -> Self {
        Limits {
            sends: Limiter::new(c.sends, c.max_keys),
            reads: Limiter::new(c.reads, c.max_keys),
            app: Limiter::new(c.app, c.max_keys),
            anonymous: Limiter::new(c.anonymous, c.max_keys),
            app_creations: Limiter::new(c.app_creations, c.max_keys),
        }
    }

    /// One write by `user` (a send, edit or delete), over REST or the socket.
    pub fn write(&self, app: AppId, user: &UserId) -> Result<(), Duration> {
        self.sends.take((app, user.as_str()), 1.0)
    }

    /// A replay of `changes` changes over `rooms` rooms for `user`, from the sends budget.
    pub fn replay(
        &self,
        app: AppId,
        user: &UserId,
        rooms: u64,
        changes: u64,
    ) -> Result<(), Duration> {
        let cost = 1 + rooms + changes / REPLAYED_PER_TOKEN;
        self.sends.take((app, user.as_str()), cost as f64)
    }

    /// An expensive read by a user.
    pub fn user_read(&self, app: AppId, user: &UserId, cost: f64) -> Result<(), Duration> {
        self.reads.take((app, Some(user.as_str())), cost)
    }

    /// An expensive read by an app backend (its own bucket, apart from its users').
    pub fn app_read(&self, app: AppId, cost: f64) -> Result<(), Duration> {
        self.reads.take((app, None::<&str>), cost)
    }

    /// Any request on behalf of `app`.
    pub fn app(&self, app: AppId) -> Result<(), Duration> {
        self.app.take(app, 1.0)
    }

    /// A request from `peer` that carries no credential of its own.
    pub fn anonymous(&self, peer: Option<IpAddr>, cost: f64) -> Result<(), Duration> {
        match peer {
            Some(ip) => self.anonymous.take(address_key(ip), cost),
            None => Ok(()),
        }
    }

    /// An app created from `peer` without the admin key.
    pub fn app_creation(&self, peer: Option<IpAddr>) -> Result<(), Duration> {
        match peer {
            Some(ip) => self.app_creations.take(address_key(ip), 1.0),
            None => Ok(()),
        }
    }
}

/// The key of a client address. An IPv6 client usually holds a whole /64, so its addresses
/// count as one; an IPv4 address mapped into IPv6 counts as the IPv4 address.
fn address_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(u32::from(v4)),
            None => u128::from(v6) & !((1u128 << 64) - 1),
        },
    }
}

/// The `429 rate_limited` answer, with the wait rounded up to whole seconds in `Retry-After`.
pub fn refused(wait: Duration) -> ApiError {
    ApiError::rate_limited(wait, "too many requests, retry later")
}

/// The wait in milliseconds for WebSocket frames (at least 1).
pub fn wait_ms(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The client address the server loop put in the request, if any: a router driven without
/// the loop has none, and is then not metered by address.
pub fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Meters a seed-004 route by client address. Taken before anything else is read, so an
/// unknown token or a bad body costs the same as a good one.
pub struct Anonymous {
    pub peer: Option<IpAddr>,
}

impl Anonymous {
    /// The extra cost of a search whose keyword has a short term.
    pub fn search(&self, state: &AppState, keyword: &str) -> Result<(), ApiError> {
        let extra = search_cost(keyword) - READ_COST;
        if extra > 0.0 {
            state.limits.anonymous(self.peer, extra).map_err(refused)?;
        }
        Ok(())
    }
}

impl FromRequestParts<AppState> for Anonymous {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = peer(parts);
        state.limits.anonymous(peer, READ_COST).map_err(refused)?;
        Ok(Anonymous { peer })
    }
}

/// Meters app creation without the admin key, per client address. With the admin key (or
/// when creation is closed, so the key is required anyway) nothing is counted here.
pub struct AppCreation;

impl FromRequestParts<AppState> for AppCreation {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let admin = crate::extract::Admin::check(&parts.headers, state).is_ok();
        if state.config.open_app_creation && !admin {
            state.limits.app_creation(peer(parts)).map_err(refused)?;
        }
        Ok(AppCreation)
    }
}

/// Token buckets keyed by a hash of the caller.
struct Limiter {
    rate: Rate,
    max_keys: usize,
    seed: RandomState,
    buckets: Mutex<HashMap<u64, Bucket, BuildHasherDefault<Prehashed>>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Limiter {
    fn new(rate: Rate, max_keys: usize) -> Self {
        Limiter {
            rate,
            max_keys: max_keys.max(2),
            seed: RandomState::new(),
            buckets: Mutex::new(HashMap::default()),
        }
    }

    /// Takes `cost` tokens from `key`'s bucket, or says how long until they are there. A cost
    /// above the burst is granted to a full bucket, which then goes into debt: one large
    /// operation is possible, and it is paid for before the next.
    fn take(&self, key: impl Hash, cost: f64) -> Result<(), Duration> {
        if self.rate.is_off() {
            return Ok(());
        }
        let key = self.seed.hash_one(key);
        let (rate, burst) = (self.rate.per_second, self.rate.burst.max(1.0));
        let now = Instant::now();
        // Only arithmetic runs under the lock, so a poisoned lock still holds sound buckets.
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= self.max_keys && !buckets.contains_key(&key) {
            self.evict(&mut buckets, now);
        }
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= cost || b.tokens >= burst {
            b.tokens -= cost;
            Ok(())
        } else {
            let wait = (cost.min(burst) - b.tokens) / rate;
            Err(Duration::from_secs_f64(wait.clamp(0.001, 86_400.0 * 365.0)))
        }
    }

    /// Makes room: drops the buckets that have refilled (their callers are idle, and a new
    /// bucket starts full anyway); if that leaves the map over half full, empties it.
    fn evict(
        &self,
        buckets: &mut HashMap<u64, Bucket, BuildHasherDefault<Prehashed>>,
        now: Instant,
    ) {
        let (rate, burst) = (self.rate.per_second, self.rate.burst.max(1.0));
        buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        if buckets.len() > self.max_keys / 2 {
            tracing::warn!(
                keys = buckets.len(),
                "rate limiter full of active callers: its counts start over"
            );
            buckets.clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The keys are already seeded hashes: hashing them again would only cost time.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; fold anything else in for completeness.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_says_how_long_to_wait() {
        let l = Limiter::new(Rate::new(2.0, 3.0), 100);
        for _ in 0..3 {
            assert!(l.take("a", 1.0).is_ok());
        }
        let wait = l.take("a", 1.0).expect_err("over the burst");
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        // Another key has its own bucket.
        assert!(l.take("b", 1.0).is_ok());
    }

    #[test]
    fn a_large_cost_is_granted_to_a_full_bucket_and_paid_back() {
        let l = Limiter::new(Rate::new(10.0, 5.0), 100);
        assert!(l.take("a", 50.0).is_ok());
        let wait = l.take("a", 1.0).expect_err("in debt");
        assert!(wait > Duration::from_secs(4), "{wait:?}");
    }

    #[test]
    fn off_counts_nothing() {
        let l = Limiter::new(Rate::OFF, 100);
        for _ in 0..1000 {
            assert!(l.take("a", 1.0).is_ok());
        }
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_bounded() {
        let l = Limiter::new(Rate::new(1.0, 5.0), 1000);
        for i in 0..100_000u32 {
            // Each key drains part of its bucket, so none can be dropped as idle.
            let _ = l.take(i, 2.0);
            assert!(l.len() <= 1000);
        }
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let v4: IpAddr = "192.0.2.7".parse().expect("ip");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(address_key(v4), address_key(mapped));
    }

    #[test]
    fn short_terms_cost_more() {
        assert_eq!(search_cost("hello world"), READ_COST);
        assert_eq!(search_cost("hello a"), SHORT_SEARCH_COST);
        assert_eq!(search_cost("ün"), SHORT_SEARCH_COST);
    }
}
