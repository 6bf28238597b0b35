//! The in-process backend: the default for a single node, and the reference the Redis backend is
//! tested against.
//!
//! Keys are spread over a fixed number of shards, each a `Mutex<HashMap>`, so that concurrent
//! requests rarely wait for one another. Every operation runs under exactly one shard lock, taken
//! and released without awaiting in between: that is what makes `take`, `swap_existing`,
//! `compare_and_swap` and `increment` atomic. Expired entries are invisible at once, removed when
//! touched, and swept periodically by a background task so that abandoned ones do not pile up.
//!
//! The store may be given a memory bound ([`MemoryStore::with_capacity`]): the bytes of every
//! key and value, plus a fixed allowance per entry, are counted; a write that would pass the
//! bound first sweeps its shard, then fails with [`StoreError::Full`]. Without it, anyone able to
//! make the provider store something (an interaction per `/authorize`) could grow the process
//! until the machine runs out of memory.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::{Instant, MissedTickBehavior};

use crate::{Counter, SessionStore, StoreError, StoreResult, ttl_millis};

/// A power of two well above the core counts we run on, so that lock contention stays negligible.
const SHARDS: usize = 64;
const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
const WRONG_KIND: StoreError = StoreError::Invalid("the key holds a value of another kind");
const NOT_A_COUNTER: StoreError = StoreError::Invalid("the key holds a value that is not a counter");
/// What an entry costs beyond its key and value (map slot, expiry, allocation headers): an
/// estimate, generous rather than exact, so that the bound errs on the safe side.
const ENTRY_OVERHEAD: usize = 96;
/// Least time between two sweeps of every shard made by writes that found the store full.
const FULL_SWEEP_SPACING_MS: u64 = 1000;
/// What a set member costs beyond its text.
const MEMBER_OVERHEAD: usize = 48;

/// The in-process [`SessionStore`]: fast, but private to one process (state is lost on restart
/// and not shared between nodes).
///
/// Create it inside a tokio runtime: [`MemoryStore::new`] spawns the periodic sweep of expired
/// entries on the current runtime. Outside a runtime it still works, but without the sweep
/// (expired entries are then only removed when touched); a warning is logged.
///
/// Cloning is cheap and gives another handle on the same data. The sweep task only holds a weak
/// reference: it ends once the last handle is dropped.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    hasher: RandomState,
    shards: [Mutex<HashMap<String, Entry>>; SHARDS],
    /// Bytes held, as [`entry_size`] counts them; changed only under the lock of the shard
    /// whose entry changed.
    used: AtomicUsize,
    capacity: usize,
    /// When a write last swept every shard to make room (milliseconds since `started`).
    last_full_sweep: AtomicU64,
    started: Instant,
}

struct Entry {
    value: Value,
    expires_at: Instant,
}

/// Mirrors the Redis types we use, so that both backends agree on what mixing them means.
enum Value {
    Bytes(Vec<u8>),
    // Kept as a number to make `increment` cheap; reads see its decimal text, as on Redis.
    Counter(u64),
    Set(HashSet<String>),
}

impl Value {
    /// The value as `get` returns it; sets are not values.
    fn to_bytes(&self) -> StoreResult<Vec<u8>> {
        match self {
            Value::Bytes(bytes) => Ok(bytes.clone()),
            Value::Counter(n) => Ok(n.to_string().into_bytes()),
            Value::Set(_) => Err(WRONG_KIND),
        }
    }

    fn into_bytes(self) -> StoreResult<Vec<u8>> {
        match self {
            Value::Bytes(bytes) => Ok(bytes),
            other => other.to_bytes(),
        }
    }

    fn equals_bytes(&self, expected: &[u8]) -> StoreResult<bool> {
        match self {
            Value::Bytes(bytes) => Ok(bytes == expected),
            Value::Counter(n) => Ok(n.to_string().as_bytes() == expected),
            Value::Set(_) => Err(WRONG_KIND),
        }
    }
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at > now
    }
}

/// How much a write may add to the entry it touches.
#[derive(Clone, Copy)]
enum Growth {
    /// The entry becomes one of this size (as [`entry_size`] counts).
    Replace(usize),
    /// The entry gains this many bytes (or is created with them).
    Add(usize),
}

/// The bytes an entry is counted for against the store's bound.
fn entry_size(key: &str, value: &Value) -> usize {
    let value = match value {
        Value::Bytes(bytes) => bytes.len(),
        Value::Counter(_) => 8,
        Value::Set(members) => members.iter().map(|m| m.len() + MEMBER_OVERHEAD).sum(),
    };
    ENTRY_OVERHEAD + key.len() + value
}

impl MemoryStore {
    /// An empty store, with the expired-entry sweep running every ten seconds.
    pub fn new() -> Self {
        Self::with_sweep_interval(DEFAULT_SWEEP_INTERVAL)
    }

    /// An empty store whose expired entries are swept every `interval` (a shorter interval bounds
    /// memory more tightly at the cost of more frequent sweeps).
    pub fn with_sweep_interval(interval: Duration) -> Self {
        Self::build(interval, usize::MAX)
    }

    /// An empty store holding at most about `bytes` of keys and values (see the module doc);
    /// writes past it fail with [`StoreError::Full`] until entries expire.
    pub fn with_capacity(bytes: usize) -> Self {
        Self::build(DEFAULT_SWEEP_INTERVAL, bytes)
    }

    fn build(interval: Duration, capacity: usize) -> Self {
        let shards = std::array::from_fn(|_| Mutex::new(HashMap::new()));
        let inner = Arc::new(Inner {
            hasher: RandomState::new(),
            shards,
            used: AtomicUsize::new(0),
            capacity,
            last_full_sweep: AtomicU64::new(0),
            started: Instant::now(),
        });
        spawn_sweeper(Arc::downgrade(&inner), interval);
        MemoryStore { inner }
    }

    /// Bytes currently counted against the bound.
    pub fn used_bytes(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Truncating the hash is fine: only its low bits pick the shard.
        let index = self.inner.hasher.hash_one(key) as usize;
        self.inner.lock_shard(index)
    }

    /// Runs `f` on the live entry under `key` (expired ones are removed first), under its shard
    /// lock, for operations that cannot grow the store.
    fn with_live<T>(&self, key: &str, f: impl FnOnce(&mut HashMap<String, Entry>, bool) -> T) -> T {
        let (mut shard, before, live, _) = self.open(key);
        let outcome = f(&mut shard, live);
        self.close(&shard, key, before);
        outcome
    }

    /// As [`MemoryStore::with_live`], for an operation that may grow the entry under `key` by
    /// `growth`: refused with [`StoreError::Full`] when that would pass the bound, even after
    /// sweeping the shard, then (at most once a second) every shard.
    fn with_live_growing<T>(
        &self,
        key: &str,
        growth: Growth,
        f: impl FnOnce(&mut HashMap<String, Entry>, bool) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut swept_all = false;
        loop {
            let (mut shard, before, live, now) = self.open(key);
            let growth = match (growth, live) {
                (Growth::Replace(size), true) => size.saturating_sub(before),
                (Growth::Replace(size), false) => size,
                (Growth::Add(bytes), true) => bytes,
                (Growth::Add(bytes), false) => bytes + ENTRY_OVERHEAD + key.len(),
            };
            if growth > 0 && self.over_capacity(growth, before, live) {
                self.inner.sweep_locked(&mut shard, now);
                if self.over_capacity(growth, before, live) {
                    self.close(&shard, key, before);
                    drop(shard);
                    // Expired entries elsewhere may be what fills the store; a full sweep costs
                    // a pass over every entry, so a store kept full by live ones gets one a
                    // second, not one per refused write.
                    if !swept_all && self.inner.may_sweep_all(now) {
                        swept_all = true;
                        for index in 0..SHARDS {
                            self.inner.sweep(index);
                        }
                        continue;
                    }
                    return Err(StoreError::Full);
                }
            }
            let outcome = f(&mut shard, live);
            self.close(&shard, key, before);
            return outcome;
        }
    }

    /// Locks the shard of `key` and removes its entry if expired. Returns the lock, the entry's
    /// size before (expired or not: [`MemoryStore::close`] accounts for it), and whether it is live.
    fn open(&self, key: &str) -> (MutexGuard<'_, HashMap<String, Entry>>, usize, bool, Instant) {
        let now = Instant::now();
        let mut shard = self.shard(key);
        let before = shard.get(key).map_or(0, |e| entry_size(key, &e.value));
        let live = match shard.get(key) {
            Some(entry) if entry.is_live(now) => true,
            Some(_) => {
                shard.remove(key);
                false
            }
            None => false,
        };
        (shard, before, live, now)
    }

    /// Accounts for the change of the entry under `key` since [`MemoryStore::open`], lock still held.
    fn close(&self, shard: &HashMap<String, Entry>, key: &str, before: usize) {
        let after = shard.get(key).map_or(0, |e| entry_size(key, &e.value));
        self.inner.account(before, after);
    }

    /// Whether adding `growth` bytes would pass the bound; an expired entry of `before` bytes,
    /// already removed but not yet accounted, is left out of the bytes in use.
    fn over_capacity(&self, growth: usize, before: usize, live: bool) -> bool {
        let used = self.inner.used.load(Ordering::Relaxed);
        let used = if live { used } else { used.saturating_sub(before) };
        used.saturating_add(growth) > self.inner.capacity
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("shards", &SHARDS).finish_non_exhaustive()
    }
}

impl Inner {
    fn lock_shard(&self, index: usize) -> MutexGuard<'_, HashMap<String, Entry>> {
        // No code here panics while holding a shard lock; if some future code did, every entry
        // would still be a valid one (at worst a set missing a member), so carry on rather than fail.
        match self.shards[index % SHARDS].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn sweep(&self, index: usize) -> usize {
        let now = Instant::now();
        let mut shard = self.lock_shard(index);
        self.sweep_locked(&mut shard, now)
    }

    /// Removes the expired entries of a locked shard; returns how many.
    fn sweep_locked(&self, shard: &mut HashMap<String, Entry>, now: Instant) -> usize {
        let before = shard.len();
        let mut freed = 0;
        shard.retain(|key, entry| {
            let keep = entry.is_live(now);
            if !keep {
                freed += entry_size(key, &entry.value);
            }
            keep
        });
        self.account(freed, 0);
        before - shard.len()
    }

    /// Whether a write that finds the store full may sweep every shard now (once a second).
    fn may_sweep_all(&self, now: Instant) -> bool {
        let at = u64::try_from(now.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX);
        let last = self.last_full_sweep.load(Ordering::Relaxed);
        (last == 0 || at.saturating_sub(last) >= FULL_SWEEP_SPACING_MS)
            && self.last_full_sweep.compare_exchange(last, at.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    /// Records that an entry went from `before` to `after` bytes.
    fn account(&self, before: usize, after: usize) {
        if after > before {
            self.used.fetch_add(after - before, Ordering::Relaxed);
        } else if before > after {
            let freed = before - after;
            // Never below zero, whatever the interleaving of shards.
            let _ = self.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| Some(u.saturating_sub(freed)));
        }
    }
}

/// A write of `value` as the whole entry under `key`.
fn bytes_entry(key: &str, value: &[u8]) -> Growth {
    Growth::Replace(ENTRY_OVERHEAD + key.len() + value.len())
}

fn expiry(now: Instant, ttl: Duration) -> StoreResult<Instant> {
    let ms = ttl_millis(ttl)?;
    now.checked_add(Duration::from_millis(ms)).ok_or(StoreError::Invalid("time to live too long"))
}

fn spawn_sweeper(store: Weak<Inner>, interval: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("MemoryStore created outside a tokio runtime: expired entries are only removed when touched");
        return;
    };
    runtime.spawn(async move {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
        // A late sweep is harmless; a burst of catch-up sweeps is wasted work.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some(inner) = store.upgrade() else { return };
            let mut removed = 0;
            for index in 0..SHARDS {
                removed += inner.sweep(index);
                // One shard at a time, letting requests run in between on a busy runtime.
                tokio::task::yield_now().await;
            }
            drop(inner);
            if removed > 0 {
                tracing::debug!(removed, "swept expired session-store entries");
            }
        }
    });
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        let expires_at = expiry(Instant::now(), ttl)?;
        self.with_live_growing(key, bytes_entry(key, value), |shard, _| {
            shard.insert(key.to_owned(), Entry { value: Value::Bytes(value.to_vec()), expires_at });
            Ok(())
        })
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        let expires_at = expiry(Instant::now(), ttl)?;
        self.with_live_growing(key, bytes_entry(key, value), |shard, live| {
            if !live {
                shard.insert(key.to_owned(), Entry { value: Value::Bytes(value.to_vec()), expires_at });
            }
            Ok(!live)
        })
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.with_live(key, |shard, _| shard.get(key).map(|e| e.value.to_bytes()).transpose())
    }

    async fn get_many(&self, keys: &[&str]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            // Redis' MGET answers "nothing" for a key of another kind rather than failing.
            let value = self.with_live(key, |shard, _| match shard.get(*key) {
                Some(Entry { value: Value::Set(_), .. }) | None => None,
                Some(entry) => entry.value.to_bytes().ok(),
            });
            values.push(value);
        }
        Ok(values)
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.with_live(key, |shard, _| {
            if let Some(Entry { value: Value::Set(_), .. }) = shard.get(key) {
                return Err(WRONG_KIND);
            }
            shard.remove(key).map(|entry| entry.value.into_bytes()).transpose()
        })
    }

    async fn swap_existing(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<Option<Vec<u8>>> {
        let expires_at = expiry(Instant::now(), ttl)?;
        self.with_live_growing(key, bytes_entry(key, value), |shard, _| {
            let Some(entry) = shard.get_mut(key) else {
                return Ok(None);
            };
            if let Value::Set(_) = entry.value {
                return Err(WRONG_KIND);
            }
            let previous = std::mem::replace(&mut entry.value, Value::Bytes(value.to_vec()));
            entry.expires_at = expires_at;
            previous.into_bytes().map(Some)
        })
    }

    async fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8], ttl: Duration) -> StoreResult<bool> {
        let expires_at = expiry(Instant::now(), ttl)?;
        self.with_live_growing(key, bytes_entry(key, new), |shard, _| {
            let Some(entry) = shard.get_mut(key) else {
                return Ok(false);
            };
            if !entry.value.equals_bytes(expected)? {
                return Ok(false);
            }
            *entry = Entry { value: Value::Bytes(new.to_vec()), expires_at };
            Ok(true)
        })
    }

    async fn delete(&self, key: &str) -> StoreResult<bool> {
        Ok(self.with_live(key, |shard, live| live && shard.remove(key).is_some()))
    }

    async fn increment(&self, key: &str, ttl: Duration) -> StoreResult<Counter> {
        let now = Instant::now();
        let expires_at = expiry(now, ttl)?;
        self.with_live_growing(key, Growth::Replace(entry_size(key, &Value::Counter(0))), |shard, _| {
            let Some(entry) = shard.get_mut(key) else {
                shard.insert(key.to_owned(), Entry { value: Value::Counter(1), expires_at });
                return Ok(Counter { value: 1, resets_in: ttl });
            };
            let current = match &entry.value {
                Value::Counter(n) => *n,
                // Like Redis' INCR on a value that happens to be a decimal number.
                Value::Bytes(bytes) => std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|text| text.parse::<i64>().ok())
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or(NOT_A_COUNTER)?,
                Value::Set(_) => return Err(WRONG_KIND),
            };
            // Redis counters are signed 64-bit: overflow at the same point.
            let next = current
                .checked_add(1)
                .filter(|n| i64::try_from(*n).is_ok())
                .ok_or(StoreError::Invalid("counter overflow"))?;
            // The expiry stays as the first increment set it: the window does not slide.
            entry.value = Value::Counter(next);
            Ok(Counter { value: next, resets_in: entry.expires_at.saturating_duration_since(now) })
        })
    }

    async fn decrement(&self, key: &str) -> StoreResult<()> {
        self.with_live(key, |shard, _| {
            let Some(entry) = shard.get_mut(key) else {
                return Ok(());
            };
            let current = match &entry.value {
                Value::Counter(n) => *n,
                // As the Redis script does: a value that is not a counter is left alone.
                Value::Bytes(bytes) => {
                    match std::str::from_utf8(bytes).ok().and_then(|text| text.parse::<u64>().ok()) {
                        Some(n) => n,
                        None => return Ok(()),
                    }
                }
                Value::Set(_) => return Err(WRONG_KIND),
            };
            entry.value = Value::Counter(current.saturating_sub(1));
            Ok(())
        })
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()> {
        let expires_at = expiry(Instant::now(), ttl)?;
        self.with_live_growing(key, Growth::Add(member.len() + MEMBER_OVERHEAD), |shard, _| {
            let entry =
                shard.entry(key.to_owned()).or_insert_with(|| Entry { value: Value::Set(HashSet::new()), expires_at });
            let Value::Set(members) = &mut entry.value else {
                return Err(WRONG_KIND);
            };
            members.insert(member.to_owned());
            entry.expires_at = expires_at;
            Ok(())
        })
    }

    async fn set_remove(&self, key: &str, member: &str) -> StoreResult<()> {
        self.with_live(key, |shard, _| {
            let Some(entry) = shard.get_mut(key) else {
                return Ok(());
            };
            let Value::Set(members) = &mut entry.value else {
                return Err(WRONG_KIND);
            };
            members.remove(member);
            // As on Redis, an empty set is no set at all.
            if members.is_empty() {
                shard.remove(key);
            }
            Ok(())
        })
    }

    async fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        self.with_live(key, |shard, _| match shard.get(key) {
            None => Ok(Vec::new()),
            Some(Entry { value: Value::Set(members), .. }) => Ok(members.iter().cloned().collect()),
            Some(_) => Err(WRONG_KIND),
        })
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn stored_entries(store: &MemoryStore) -> usize {
        (0..SHARDS).map(|i| store.inner.lock_shard(i).len()).sum()
    }

    #[tokio::test]
    async fn sweep_removes_entries_nobody_touches_again() {
        let store = MemoryStore::with_sweep_interval(Duration::from_millis(50));
        for i in 0..200 {
            store.put(&format!("k{i}"), b"v", Duration::from_millis(20)).await.unwrap();
        }
        store.put("kept", b"v", Duration::from_secs(60)).await.unwrap();
        assert_eq!(stored_entries(&store), 201);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stored_entries(&store), 1);
    }

    #[tokio::test]
    async fn the_sweeper_does_not_keep_the_store_alive() {
        let store = MemoryStore::with_sweep_interval(Duration::from_millis(10));
        let weak = Arc::downgrade(&store.inner);
        tokio::time::sleep(Duration::from_millis(30)).await;
        drop(store);
        // The sweeper may be between an upgrade and its drop for a moment; give it a few ticks.
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn works_without_a_runtime_but_with_lazy_purge_only() {
        let store = MemoryStore::new();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            store.put("k", b"v", Duration::from_millis(1)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(stored_entries(&store), 1);
            assert_eq!(store.get("k").await.unwrap(), None);
            assert_eq!(stored_entries(&store), 0);
        });
    }

    #[tokio::test]
    async fn an_absurd_time_to_live_is_refused_not_a_panic() {
        let store = MemoryStore::new();
        let err = store.put("k", b"v", Duration::MAX).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)));
    }
}
