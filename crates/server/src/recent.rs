//! A small in-process cache of directory rows read on every protocol request (clients,
//! accounts), so that a token, userinfo or introspection request does not wait on the database
//! for data that changes a few times a day.
//!
//! An entry is dropped when this process changes a client or a professional
//! ([`directory::Directory::change_count`] moved since it was loaded) and after [`MAX_AGE`]
//! whatever happens, which bounds how long a change made on another node goes unseen here.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long another node's change (a rotated client secret, a deleted client, new claims) may
/// go unseen by this one. Blocking an account does not wait for it: that ends the account's
/// sessions in the shared session store, which every request checks.
pub const MAX_AGE: Duration = Duration::from_secs(5);

/// Entries kept at most; past it the cache starts over, which only costs reads.
const CAPACITY: usize = 10_000;

/// Values by key, each tagged with the directory's change count read before it was loaded.
pub struct RecentCache<V> {
    entries: RwLock<HashMap<String, Entry<V>>>,
}

struct Entry<V> {
    change_count: u64,
    loaded_at: Instant,
    value: V,
}

impl<V: Clone> Default for RecentCache<V> {
    fn default() -> Self {
        RecentCache { entries: RwLock::new(HashMap::new()) }
    }
}

impl<V: Clone> RecentCache<V> {
    /// The value loaded under `change_count` less than [`MAX_AGE`] ago, if any.
    pub fn get(&self, key: &str, change_count: u64) -> Option<V> {
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(key)
            .filter(|e| e.change_count == change_count && e.loaded_at.elapsed() < MAX_AGE)
            .map(|e| e.value.clone())
    }

    /// Keeps `value`, loaded after reading `change_count`.
    pub fn put(&self, key: &str, change_count: u64, value: V) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CAPACITY && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_owned(), Entry { change_count, loaded_at: Instant::now(), value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_dropped_when_the_change_count_moves() {
        let cache = RecentCache::default();
        cache.put("a", 3, 1u32);
        assert_eq!(cache.get("a", 3), Some(1));
        assert_eq!(cache.get("a", 4), None);
        assert_eq!(cache.get("b", 3), None);
    }

    #[test]
    fn capacity_bounds_the_entries() {
        let cache = RecentCache::default();
        for i in 0..CAPACITY + 5 {
            cache.put(&i.to_string(), 0, i);
        }
        let len = cache.entries.read().unwrap().len();
        assert!(len <= CAPACITY, "{len}");
        assert_eq!(cache.get(&(CAPACITY + 4).to_string(), 0), Some(CAPACITY + 4));
    }
}
