//! Short-lived shared state for the provider: SSO sessions, interactions, authorization codes,
//! challenges, one-time passwords and attempt counters.
//!
//! Owns the [`SessionStore`] trait and its two backends: [`MemoryStore`] (in process, the embedded
//! default) and [`RedisStore`] (shared by several stateless nodes; one Redis server, a Redis Cluster
//! or Redis Sentinel, see [`RedisTopology`]). Both pass one shared test suite (`tests/`), including
//! concurrent single-use takes, run against every kind of Redis deployment.
//!
//! Values are opaque bytes with a time to live; typed records are serialised by the callers. Every
//! operation that enforces single use or counting is atomic in both backends, so that two nodes can
//! never both consume the same code or both miss a failed attempt.
//!
//! Must not depend on any other crate of the workspace.

pub mod keys;
mod limit;
mod memory;
mod redis_backend;
mod redis_sentinel;
mod redis_topology;

use std::time::Duration;

use async_trait::async_trait;

pub use keys::KeyPrefix;
pub use limit::{Rate, RateLimiter, Verdict, address_subject, source_subject};
pub use memory::MemoryStore;
pub use redis_backend::RedisStore;
pub use redis_topology::{RedisTopology, SentinelSettings};

/// Why a store operation failed. Callers must fail closed on any of these: no login, no token.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or answered with an error.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The arguments cannot be honoured (for example a zero time to live).
    #[error("invalid session store request: {0}")]
    Invalid(&'static str),
    /// The in-process store holds as much as it may (its memory bound): nothing new is stored
    /// until entries expire. Callers fail closed, as when the store is unavailable.
    #[error("the in-process session store is full")]
    Full,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A counter after an increment: its value, and how long its window still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub value: u64,
    /// Time left until the counter expires (and the count starts again from zero).
    pub resets_in: Duration,
}

/// Short-lived key/value state with expiry and atomic single-use operations.
///
/// Keys are UTF-8 strings chosen by the callers (by convention `kind:id`); values are opaque bytes.
/// Every write takes a time to live: nothing in this store lives forever.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores `value` under `key`, replacing any previous value, expiring after `ttl`.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()>;

    /// Stores `value` only if `key` holds nothing. Returns whether it was stored.
    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool>;

    /// Reads the value under `key`, if any and not expired.
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;

    /// Reads several keys at once (one round trip on Redis). The answer has one entry per key, in order.
    async fn get_many(&self, keys: &[&str]) -> StoreResult<Vec<Option<Vec<u8>>>>;

    /// Atomically reads and removes the value under `key`: of concurrent callers, at most one gets it.
    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;

    /// Atomically replaces the value under an existing `key` with `value` (new time to live `ttl`)
    /// and returns the previous value; does nothing and returns `None` if the key holds nothing.
    /// Of concurrent callers, exactly one sees the original value; the others see `value`
    /// written by the first. Used to consume a code while leaving a marker that detects replays.
    async fn swap_existing(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<Option<Vec<u8>>>;

    /// Atomically replaces the value under `key` with `new` (time to live `ttl`) only if it
    /// currently equals `expected`. Returns whether it was replaced.
    async fn compare_and_swap(&self, key: &str, expected: &[u8], new: &[u8], ttl: Duration) -> StoreResult<bool>;

    /// Removes `key`. Returns whether something was removed.
    async fn delete(&self, key: &str) -> StoreResult<bool>;

    /// Atomically increments the counter under `key` and returns its new value with the time its
    /// window has left. A counter that did not exist starts at 1 and expires after `ttl`;
    /// incrementing does not extend its life, so a window opened by the first increment closes
    /// on time.
    async fn increment(&self, key: &str, ttl: Duration) -> StoreResult<Counter>;

    /// Atomically decrements the counter under `key` if it exists and is above zero (its window
    /// is unchanged); does nothing otherwise. Takes back an increment that turned out not to
    /// count (an attempt that succeeded).
    async fn decrement(&self, key: &str) -> StoreResult<()>;

    /// Adds `member` to the set under `key` and sets the set's time to live to `ttl`.
    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> StoreResult<()>;

    /// Removes `member` from the set under `key`.
    async fn set_remove(&self, key: &str, member: &str) -> StoreResult<()>;

    /// Lists the members of the set under `key` (empty if none), in no particular order.
    async fn set_members(&self, key: &str) -> StoreResult<Vec<String>>;

    /// Checks that the backend answers. Used by health checks and to fail closed early.
    async fn ping(&self) -> StoreResult<()>;
}

/// Longest accepted time to live: far beyond any real need, yet short enough that no backend
/// overflows its clock (Redis adds it to the current Unix time in signed milliseconds).
const MAX_TTL_MILLIS: u64 = i64::MAX.unsigned_abs() / 2;

/// Time to live in whole milliseconds, at least one: both backends refuse a zero time to live,
/// and both refuse an absurdly long one alike rather than each failing in its own way.
pub(crate) fn ttl_millis(ttl: Duration) -> StoreResult<u64> {
    let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return Err(StoreError::Invalid("time to live must be at least one millisecond"));
    }
    if ms > MAX_TTL_MILLIS {
        return Err(StoreError::Invalid("time to live too long"));
    }
    Ok(ms)
}
