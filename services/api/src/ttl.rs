//! A small in-process map whose entries expire after a fixed time: the brief caches that spare a
//! request its lookups of slowly changing facts (instance settings, sharing-group memberships, API
//! keys). The process that changes such a fact clears the map at once; other replicas see the change
//! within the TTL.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries beyond this many are dropped wholesale (the maps hold one entry per organisation or key).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct TtlMap<K, V> {
    ttl: Duration,
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    entries: HashMap<K, (Instant, V)>,
    cleared_at: Instant,
}

impl<K: Eq + Hash, V: Clone> TtlMap<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, inner: Mutex::new(Inner { entries: HashMap::new(), cleared_at: Instant::now() }) }
    }

    /// The entry for `key` if it is younger than the TTL.
    pub fn get(&self, key: &K) -> Option<V> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.entries.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    /// Records `value` as read from the database starting at `read_at`. A value whose read began
    /// before the last [`Self::clear`] is not kept: it may predate the change that cleared the map.
    pub fn insert(&self, key: K, value: V, read_at: Instant) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if read_at <= inner.cleared_at {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.clear();
        }
        inner.entries.insert(key, (read_at, value));
    }

    pub fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.entries.clear();
        inner.cleared_at = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_clearing_drops_reads_begun_before_it() {
        let map = TtlMap::new(Duration::from_millis(50));
        let before = Instant::now();
        map.insert(1, "a", Instant::now());
        assert_eq!(map.get(&1), Some("a"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(map.get(&1), None, "expired");
        map.clear();
        map.insert(2, "stale", before);
        assert_eq!(map.get(&2), None, "a read begun before the clear is not kept");
        map.insert(2, "fresh", Instant::now());
        assert_eq!(map.get(&2), Some("fresh"));
    }
}
