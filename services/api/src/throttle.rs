//! Request throttling, in fixed windows, per API process:
//!
//! * failed authentications per client address (`CAIRN_AUTH_FAILURES_PER_MINUTE`, default 30): beyond
//!   the limit every request from that address answers 429 until the minute is over, before any key is
//!   looked at — a key cannot be guessed faster than that;
//! * requests per user for roles that enforce a rate limit (MISP's `enforce_rate_limit` and
//!   `rate_limit_count`, requests per 15 minutes).
//!
//! Both answer 429 JSON with `Retry-After`; nothing is written.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// MISP's rate-limit window.
pub const RATE_WINDOW: Duration = Duration::from_secs(15 * 60);
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Entries kept before stale windows are swept.
const SWEEP_AT: usize = 10_000;

/// Counts per key in fixed windows.
#[derive(Debug)]
struct Windows<K> {
    counts: Mutex<HashMap<K, (Instant, u64)>>,
}

impl<K> Default for Windows<K> {
    fn default() -> Self {
        Self { counts: Mutex::new(HashMap::new()) }
    }
}

impl<K: Hash + Eq + Copy> Windows<K> {
    /// The seconds left in `key`'s window if it already holds `limit` events.
    fn over(&self, key: K, limit: u64, window: Duration) -> Option<u64> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (start, n) = counts.get(&key)?;
        let left = window.checked_sub(start.elapsed())?;
        (*n >= limit).then(|| left.as_secs().max(1))
    }

    /// Counts one event for `key`; returns the count in the current window.
    fn count(&self, key: K, window: Duration) -> u64 {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= SWEEP_AT {
            counts.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = counts.entry(key).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        entry.1
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    failures: Windows<IpAddr>,
    requests: Windows<i64>,
}

impl Throttle {
    /// Seconds to wait when `ip` has failed authentication `limit` times this minute.
    pub fn auth_blocked(&self, ip: IpAddr, limit: u64) -> Option<u64> {
        if limit == 0 { None } else { self.failures.over(ip, limit, FAILURE_WINDOW) }
    }

    pub fn auth_failed(&self, ip: IpAddr) -> u64 {
        self.failures.count(ip, FAILURE_WINDOW)
    }

    /// Counts a request of `user_id` against `limit` per [`RATE_WINDOW`]; the seconds to wait when over.
    pub fn request(&self, user_id: i64, limit: u64) -> Option<u64> {
        if let Some(wait) = self.requests.over(user_id, limit, RATE_WINDOW) {
            return Some(wait);
        }
        self.requests.count(user_id, RATE_WINDOW);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_block_an_address_after_the_limit_and_only_that_address() {
        let t = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().expect("ip"), "10.0.0.2".parse().expect("ip"));
        for _ in 0..3 {
            assert!(t.auth_blocked(a, 3).is_none());
            t.auth_failed(a);
        }
        assert!(t.auth_blocked(a, 3).is_some_and(|s| (1..=60).contains(&s)));
        assert!(t.auth_blocked(b, 3).is_none());
        assert!(t.auth_blocked(a, 0).is_none(), "0 turns throttling off");
    }

    #[test]
    fn requests_are_counted_per_user_in_the_window() {
        let t = Throttle::default();
        assert!((0..5).all(|_| t.request(7, 5).is_none()));
        assert!(t.request(7, 5).is_some());
        assert!(t.request(8, 5).is_none());
    }
}
