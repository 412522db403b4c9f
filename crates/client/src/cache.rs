//! A small in-memory cache whose entries are fresh until an absolute instant.
//!
//! The metadata cache uses it with the instant the core computed from the response's HTTP caching
//! headers (`Cache-Control`, `Expires`, `Age`), or a default lifetime when the server gave none. It is
//! bounded, so that an application that lets users type any homeserver cannot grow it without limit.

use crate::single_flight::lock;
use matrix_oidc_core::Timestamp;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

#[derive(Debug)]
pub(crate) struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Timestamp)>>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    /// A cache of at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The entry for `key` if it is fresh at `now`.
    pub(crate) fn get(&self, key: &K, now: Timestamp) -> Option<V> {
        let map = lock(&self.entries);
        map.get(key)
            .filter(|(_, fresh_until)| now < *fresh_until)
            .map(|(v, _)| v.clone())
    }

    /// Stores `value` as fresh until `fresh_until` (an instant not after `now` stores nothing).
    pub(crate) fn insert(&self, key: K, value: V, fresh_until: Timestamp, now: Timestamp) {
        let mut map = lock(&self.entries);
        if fresh_until <= now {
            map.remove(&key);
            return;
        }
        if !map.contains_key(&key) && map.len() >= self.capacity {
            map.retain(|_, (_, until)| now < *until);
            if map.len() >= self.capacity {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, (_, until))| *until)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(key, (value, fresh_until));
    }

    /// Forgets `key`; returns whether it was there.
    pub(crate) fn remove(&self, key: &K) -> bool {
        lock(&self.entries).remove(key).is_some()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_unix_seconds(s)
    }

    #[test]
    fn fresh_until_is_exclusive_and_past_entries_are_not_stored() {
        let c = TtlCache::new(4);
        c.insert("a", 1, t(10), t(0));
        assert_eq!(c.get(&"a", t(9)), Some(1));
        assert_eq!(c.get(&"a", t(10)), None);
        c.insert("b", 2, t(5), t(5));
        assert_eq!(c.get(&"b", t(0)), None);
        assert_eq!(c.len(), 1);
        assert!(c.remove(&"a"));
        assert!(!c.remove(&"a"));
    }

    #[test]
    fn bounded_evicting_expired_then_soonest_to_expire() {
        let c = TtlCache::new(2);
        c.insert("a", 1, t(10), t(0));
        c.insert("b", 2, t(20), t(0));
        c.insert("c", 3, t(30), t(0));
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&"a", t(1)), None, "the soonest to expire went");
        assert_eq!(c.get(&"b", t(1)), Some(2));
        // At t=25 "b" is expired: it goes first, "c" stays.
        c.insert("d", 4, t(40), t(25));
        assert_eq!(c.get(&"c", t(25)), Some(3));
        assert_eq!(c.get(&"d", t(25)), Some(4));
        // Replacing an existing key never evicts another.
        c.insert("d", 5, t(50), t(25));
        assert_eq!(c.get(&"c", t(25)), Some(3));
        assert_eq!(c.get(&"d", t(25)), Some(5));
    }
}
