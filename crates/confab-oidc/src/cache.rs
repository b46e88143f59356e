//! Cached documents fetched from providers (discovery documents, key sets), one slot per URL,
//! with the rule that keeps a provider from being hammered: at most one fetch attempt per
//! URL per cool-down, concurrent callers sharing the attempt in flight, and the last good
//! document kept when a refresh fails.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What a caller gets: the document (possibly stale, when a refresh failed or is cooling
/// down) or, when nothing was ever fetched, why not.
pub(crate) type Lookup<T> = Result<Arc<T>, String>;

pub(crate) struct Cache<T> {
    slots: Mutex<HashMap<String, Arc<Slot<T>>>>,
    cooldown: Duration,
}

struct Slot<T> {
    state: Mutex<State<T>>,
    /// Held while fetching: the single flight. Owned by the fetch task, so a caller that
    /// gives up (its request was cancelled) neither cancels nor forgets the fetch.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

struct State<T> {
    value: Option<Arc<T>>,
    expires: Option<Instant>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    /// An attempt has started and not finished: callers wait for it, whatever the cool-down.
    in_flight: bool,
    /// Counts finished attempts, so a caller that waited for another's attempt knows it
    /// happened and does not start its own.
    generation: u64,
}

fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    // No code holding these locks can panic halfway through an update.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Send + Sync + 'static> Cache<T> {
    pub(crate) fn new(cooldown: Duration) -> Self {
        Cache {
            slots: Mutex::new(HashMap::new()),
            cooldown,
        }
    }

    fn slot(&self, url: &str) -> Arc<Slot<T>> {
        let mut slots = lock(&self.slots);
        slots
            .entry(url.to_owned())
            .or_insert_with(|| {
                Arc::new(Slot {
                    state: Mutex::new(State {
                        value: None,
                        expires: None,
                        last_attempt: None,
                        last_error: None,
                        in_flight: false,
                        generation: 0,
                    }),
                    fetching: Arc::new(tokio::sync::Mutex::new(())),
                })
            })
            .clone()
    }

    /// The document at `url`. It is fetched when nothing is cached, when the cached one has
    /// expired, or when `lacks` says it lacks what the caller needs (an unknown key id) —
    /// but only if no attempt started within the cool-down; otherwise the cached document
    /// (if any) is returned as it is. A caller arriving while an attempt is in flight waits
    /// for it and gets its result. `fetch` returns the document and its lifetime; it runs
    /// in its own task, so it finishes (and is cached) even if every caller goes away.
    pub(crate) async fn get<F, Fut>(
        &self,
        url: &str,
        lacks: impl Fn(&T) -> bool,
        fetch: F,
    ) -> Lookup<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, Duration), String>> + Send + 'static,
    {
        let slot = self.slot(url);
        let seen = {
            let s = lock(&slot.state);
            let now = Instant::now();
            let fresh = s.expires.is_some_and(|e| now < e);
            match &s.value {
                Some(v) if fresh && !lacks(v) => return Ok(v.clone()),
                _ => {}
            }
            if !s.in_flight && !self.may_attempt(&s, now) {
                return current(&s);
            }
            s.generation
        };
        let flight = slot.fetching.clone().lock_owned().await;
        {
            let mut s = lock(&slot.state);
            if s.generation != seen {
                // An attempt finished while this caller waited: share its result.
                return current(&s);
            }
            let now = Instant::now();
            if !self.may_attempt(&s, now) {
                return current(&s);
            }
            s.last_attempt = Some(now);
            s.in_flight = true;
        }
        let fetch = fetch();
        let task_slot = slot.clone();
        let url = url.to_owned();
        let task = tokio::spawn(async move {
            let outcome = fetch.await;
            let mut s = lock(&task_slot.state);
            s.generation += 1;
            s.in_flight = false;
            match outcome {
                Ok((value, ttl)) => {
                    s.value = Some(Arc::new(value));
                    s.expires = Some(Instant::now() + ttl);
                    s.last_error = None;
                }
                Err(cause) => {
                    tracing::warn!(%url, %cause, "fetch from identity provider failed");
                    s.last_error = Some(cause);
                }
            }
            drop(flight);
            current(&s)
        });
        match task.await {
            Ok(found) => found,
            // Only if the fetch panicked: the slot stays marked in flight, which only makes
            // callers wait for the flight lock; the next attempt after the cool-down clears it.
            Err(e) => Err(format!("fetch task failed: {e}")),
        }
    }

    fn may_attempt(&self, s: &State<T>, now: Instant) -> bool {
        s.last_attempt
            .is_none_or(|t| now.saturating_duration_since(t) >= self.cooldown)
    }
}

fn current<T>(s: &State<T>) -> Lookup<T> {
    match &s.value {
        Some(v) => Ok(v.clone()),
        None => Err(s
            .last_error
            .clone()
            .unwrap_or_else(|| "not fetched yet; retry after the cool-down".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn fetch_ok(n: Arc<AtomicUsize>, v: u32) -> Result<(u32, Duration), String> {
        n.fetch_add(1, Ordering::SeqCst);
        Ok((v, Duration::from_secs(3600)))
    }

    #[tokio::test]
    async fn a_fresh_document_is_served_without_fetching() {
        let cache = Cache::new(Duration::ZERO);
        let n = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let v = cache.get("u", |_| false, || fetch_ok(n.clone(), 7)).await;
            assert_eq!(v.as_deref(), Ok(&7));
        }
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_lacking_document_is_refetched_once_per_cooldown() {
        let cache = Cache::new(Duration::from_secs(3600));
        let n = Arc::new(AtomicUsize::new(0));
        cache
            .get("u", |_| false, || fetch_ok(n.clone(), 1))
            .await
            .ok();
        for _ in 0..10 {
            let v = cache.get("u", |v| *v == 1, || fetch_ok(n.clone(), 2)).await;
            assert_eq!(v.as_deref(), Ok(&1), "the cool-down keeps the old document");
        }
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_last_good_document() {
        let cache = Cache::new(Duration::ZERO);
        let n = Arc::new(AtomicUsize::new(0));
        cache
            .get("u", |_| false, || fetch_ok(n.clone(), 1))
            .await
            .ok();
        let v = cache
            .get(
                "u",
                |_| true,
                || async { Err::<(u32, Duration), _>("down".to_owned()) },
            )
            .await;
        assert_eq!(v.as_deref(), Ok(&1));
        let empty: Cache<u32> = Cache::new(Duration::ZERO);
        let v = empty
            .get("u", |_| false, || async { Err("down".to_owned()) })
            .await;
        assert_eq!(v, Err("down".to_owned()));
    }
}
