//! Attempt counters and lockouts, kept in the session store so that every node counts the same
//! failures. Keys are derived from the identifier as typed, whether or not an account has it,
//! so a lockout never tells an attacker that an identifier exists.
//!
//! Each attempt is counted before it is verified: a burst of parallel guesses cannot slip past
//! the limit while the first ones are still being checked.

use std::sync::Arc;
use std::time::Duration;

use session_store::{SessionStore, StoreError};

/// How many failures open a lockout, and how long it lasts.
#[derive(Debug, Clone)]
pub struct LockoutPolicy {
    /// Failures allowed within `window` before the lock.
    pub max_failures: u64,
    pub window: Duration,
    /// The first lock lasts this long; each further one twice as long...
    pub base_delay: Duration,
    /// ...up to this.
    pub max_delay: Duration,
    /// How long the escalation level is remembered after the last lock.
    pub level_memory: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            base_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(24 * 3600),
            level_memory: Duration::from_secs(24 * 3600),
        }
    }
}

/// The state of an identifier before an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead and verify.
    Allowed,
    /// Locked: try again after this many seconds.
    Locked { retry_after: u64 },
}

pub struct Lockout {
    store: Arc<dyn SessionStore>,
    policy: LockoutPolicy,
}

fn lock_key(id: &str) -> String {
    format!("lock:{id}")
}
fn attempts_key(id: &str) -> String {
    format!("attempts:{id}")
}
fn level_key(id: &str) -> String {
    format!("lock-level:{id}")
}

impl Lockout {
    pub fn new(store: Arc<dyn SessionStore>, policy: LockoutPolicy) -> Self {
        Lockout { store, policy }
    }

    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    /// Counts an attempt for `id` and says whether it may be verified.
    pub async fn admit(&self, id: &str, now: i64) -> Result<Admission, StoreError> {
        if let Some(until) = self.locked_until(id).await? {
            return Ok(Admission::Locked { retry_after: u64::try_from(until - now).unwrap_or(1).max(1) });
        }
        let attempts = self.store.increment(&attempts_key(id), self.policy.window).await?;
        if attempts > self.policy.max_failures {
            // Only reachable by attempts racing the lock that the last failure opens.
            let until = self.lock(id, now).await?;
            return Ok(Admission::Locked { retry_after: u64::try_from(until - now).unwrap_or(1).max(1) });
        }
        Ok(Admission::Allowed)
    }

    /// The attempt failed. Returns the end of the lockout it opened, if it opened one.
    pub async fn failed(&self, id: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let attempts = self
            .store
            .get(&attempts_key(id))
            .await?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        if attempts >= self.policy.max_failures {
            return Ok(Some(self.lock(id, now).await?));
        }
        Ok(None)
    }

    /// The attempt succeeded: the slate is wiped.
    pub async fn succeeded(&self, id: &str) -> Result<(), StoreError> {
        self.store.delete(&attempts_key(id)).await?;
        self.store.delete(&level_key(id)).await?;
        Ok(())
    }

    /// An administrator lifts the lock and the escalation.
    pub async fn reset(&self, id: &str) -> Result<(), StoreError> {
        self.store.delete(&lock_key(id)).await?;
        self.succeeded(id).await
    }

    async fn locked_until(&self, id: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .store
            .get(&lock_key(id))
            .await?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<i64>().ok()))
    }

    async fn lock(&self, id: &str, now: i64) -> Result<i64, StoreError> {
        if let Some(until) = self.locked_until(id).await? {
            return Ok(until);
        }
        let level = self.store.increment(&level_key(id), self.policy.level_memory).await?;
        let factor =
            1u64.checked_shl(u32::try_from(level.saturating_sub(1)).unwrap_or(u32::MAX).min(30)).unwrap_or(u64::MAX);
        let delay =
            self.policy.base_delay.saturating_mul(u32::try_from(factor).unwrap_or(u32::MAX)).min(self.policy.max_delay);
        let until = now + i64::try_from(delay.as_secs()).unwrap_or(i64::MAX / 2);
        // Two racing failures may both get here: put_if_absent keeps the first lock's end.
        self.store
            .put_if_absent(&lock_key(id), until.to_string().as_bytes(), delay.max(Duration::from_secs(1)))
            .await?;
        self.store.delete(&attempts_key(id)).await?;
        Ok(self.locked_until(id).await?.unwrap_or(until))
    }
}
