//! Attempt counters and lockouts, kept in the session store so that every node counts the same
//! failures. National identifiers are public (RPPS is open data), so a lock keyed by the
//! identifier alone would let anyone lock any professional out with a few guesses a day. The
//! rules, as well-kept providers set them (Azure AD's smart lockout, OWASP's device cookies):
//!
//! - **Hard lock per (identifier, source)**: a source is a browser holding a device cookie this
//!   identifier signed in with ([`crate::device`]), or else the address (its /64 for IPv6).
//!   `max_failures` failures lock that pair for a growing delay. An attacker hammering an
//!   identifier locks only themselves out; the professional, from another address or from a
//!   browser that already signed in, still gets in.
//! - **Soft, bounded spacing per identifier**: once an identifier has taken
//!   `identifier_delay_after` failures (from any sources) within its window, each further
//!   failure from an untrusted source makes that source wait before its next attempt on it,
//!   doubling up to `identifier_max_delay` (a few minutes). This caps the guessing rate of an
//!   attacker with many addresses without ever holding the professional off for longer, and a
//!   new source is never made to wait for the others' failures.
//! - **Per source address, across identifiers** (password spraying): at most
//!   `address_max_attempts` attempts that did not succeed (failures, and those still being
//!   checked) per window. Signed-in browsers are not counted, so a shared hospital address does
//!   not shut out those who already signed in there.
//!
//! Keys hold a keyed hash of the identifier (never the text), whether or not an account has it:
//! a lock never tells an attacker that an identifier exists, and the store does not list who
//! was targeted. Each attempt is counted before it is verified, so a burst of parallel guesses
//! cannot slip past a limit while the first ones are still being checked.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use directory::KeyedHash;
use serde::{Deserialize, Serialize};
use session_store::{Rate, RateLimiter, SessionStore, StoreError, source_subject};

/// The lockout rules; see the module doc. Defaults in docs/configuration.md.
#[derive(Debug, Clone)]
pub struct LockoutPolicy {
    /// Failures of one (identifier, source) pair within `window` before the pair is locked.
    pub max_failures: u64,
    pub window: Duration,
    /// The first lock of a pair lasts this long; each further one twice as long...
    pub base_delay: Duration,
    /// ...up to this.
    pub max_delay: Duration,
    /// How long a pair's escalation level is remembered after its last lock.
    pub level_memory: Duration,
    /// Failures on one identifier (any sources) within `identifier_window` before untrusted
    /// sources are spaced out.
    pub identifier_delay_after: u64,
    pub identifier_window: Duration,
    /// The first spacing; it doubles with each further failure on the identifier...
    pub identifier_base_delay: Duration,
    /// ...up to this: the longest the professional can be held off by others' failures.
    pub identifier_max_delay: Duration,
    /// Attempts that did not succeed from one address (/64 for IPv6) across identifiers...
    pub address_max_attempts: u64,
    /// ...per this window.
    pub address_window: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            base_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(3600),
            level_memory: Duration::from_secs(24 * 3600),
            identifier_delay_after: 10,
            identifier_window: Duration::from_secs(3600),
            identifier_base_delay: Duration::from_secs(5),
            identifier_max_delay: Duration::from_secs(300),
            address_max_attempts: 30,
            address_window: Duration::from_secs(15 * 60),
        }
    }
}

/// Where an attempt comes from, as the lockout tells attempts apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// A browser holding a device cookie this identifier signed in with (its nonce).
    TrustedDevice(String),
    /// Any other browser: its address, if known.
    Address(Option<IpAddr>),
}

impl Source {
    fn address_subject(&self) -> Option<String> {
        match self {
            Source::TrustedDevice(_) => None,
            Source::Address(ip) => Some(source_subject(*ip)),
        }
    }

    fn pair_suffix(&self) -> String {
        match self {
            Source::TrustedDevice(nonce) => format!("d:{nonce}"),
            Source::Address(_) => format!("a:{}", self.address_subject().unwrap_or_default()),
        }
    }
}

/// Where an identifier stands ([`Lockout::status`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockStatus {
    /// Sources (browsers or addresses) locked out of it now.
    pub locked_sources: u32,
    /// Sources made to wait before their next attempt on it now.
    pub spaced_sources: u32,
    /// Failures on it from every source within the identifier's window.
    pub recent_failures: u64,
    /// When the last of those locks and waits ends (Unix seconds); none if none holds.
    pub until: Option<i64>,
}

impl LockStatus {
    fn ends_at(&mut self, until: i64) {
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
    }
}

/// Which rule refused an attempt (for the audit log; the person is told only when to retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope {
    /// This identifier from this source: too many failures.
    Pair,
    /// This identifier is being guessed from many places: this source waits a little.
    Spacing,
    /// This address has failed too often across identifiers.
    Address,
}

impl LockScope {
    pub fn as_str(&self) -> &'static str {
        match self {
            LockScope::Pair => "pair",
            LockScope::Spacing => "spacing",
            LockScope::Address => "address",
        }
    }
}

/// The state of an identifier before an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead and verify.
    Allowed,
    /// Refused: try again after this many seconds.
    Locked { retry_after: u64, scope: LockScope },
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Nothing more: the source may try again at once.
    Counted,
    /// The source must wait until `until` (Unix seconds).
    Locked { until: i64, scope: LockScope },
}

pub struct Lockout {
    store: Arc<dyn SessionStore>,
    policy: LockoutPolicy,
    identifiers: KeyedHash,
    per_address: RateLimiter,
}

fn lock_key(pair: &str) -> String {
    crate::store_keys::LOCK.key(pair)
}
fn wait_key(pair: &str) -> String {
    crate::store_keys::LOCK_WAIT.key(pair)
}
fn attempts_key(pair: &str) -> String {
    crate::store_keys::LOCK_ATTEMPTS.key(pair)
}
fn level_key(pair: &str) -> String {
    crate::store_keys::LOCK_LEVEL.key(pair)
}
fn failures_key(identifier: &str) -> String {
    crate::store_keys::LOCK_FAILURES.key(identifier)
}
fn pairs_key(identifier: &str) -> String {
    crate::store_keys::LOCK_PAIRS.key(identifier)
}

fn parse_i64(bytes: Option<&Vec<u8>>) -> Option<i64> {
    bytes.and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse().ok())
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

fn retry_after(until: i64, now: i64) -> u64 {
    u64::try_from(until.saturating_sub(now)).unwrap_or(1).max(1)
}

/// `base` doubled `steps` times, at most `max`.
fn doubled(base: Duration, steps: u64, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(u32::try_from(steps).unwrap_or(u32::MAX).min(30)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(max)
}

impl Lockout {
    /// `identifiers` keys the hash of identifiers in every key this lockout writes.
    pub fn new(store: Arc<dyn SessionStore>, policy: LockoutPolicy, identifiers: KeyedHash) -> Self {
        let per_address = RateLimiter::new(
            store.clone(),
            crate::store_keys::LIMIT_LOGINS_PER_ADDRESS,
            Rate::new(policy.address_max_attempts, policy.address_window),
        );
        Lockout { store, policy, identifiers, per_address }
    }

    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    /// The identifier as keys hold it: a keyed hash, 128 bits of it.
    fn id_key(&self, identifier: &str) -> String {
        let mut hex = self.identifiers.hex(&[identifier.as_bytes()]);
        hex.truncate(32);
        hex
    }

    fn pair(&self, identifier: &str, source: &Source) -> (String, String) {
        let id = self.id_key(identifier);
        let pair = format!("{id}:{}", source.pair_suffix());
        (id, pair)
    }

    /// Counts an attempt on `identifier` from `source` and says whether it may be verified.
    pub async fn admit(&self, identifier: &str, source: &Source, now: i64) -> Result<Admission, StoreError> {
        let (_, pair) = self.pair(identifier, source);
        // A lock or a wait holds while its entry lives (its time to live is its duration); the
        // end it records only says how long is left.
        let found = self.store.get_many(&[&lock_key(&pair), &wait_key(&pair)]).await?;
        if let Some(until) = parse_i64(found.first().and_then(Option::as_ref)) {
            return Ok(Admission::Locked { retry_after: retry_after(until, now), scope: LockScope::Pair });
        }
        if let Some(until) = parse_i64(found.get(1).and_then(Option::as_ref)) {
            return Ok(Admission::Locked { retry_after: retry_after(until, now), scope: LockScope::Spacing });
        }
        if let Some(admission) = self.admit_address(source).await? {
            return Ok(admission);
        }
        let attempts = self.store.increment(&attempts_key(&pair), self.policy.window).await?.value;
        if attempts > self.policy.max_failures {
            // Only reachable by attempts racing the lock that the last failure opens.
            let until = self.lock(&pair, now).await?;
            return Ok(Admission::Locked { retry_after: retry_after(until, now), scope: LockScope::Pair });
        }
        Ok(Admission::Allowed)
    }

    /// Counts an attempt that names no identifier worth counting (one that cannot be one)
    /// against its source address only.
    pub async fn admit_source(&self, source: &Source) -> Result<Admission, StoreError> {
        Ok(self.admit_address(source).await?.unwrap_or(Admission::Allowed))
    }

    async fn admit_address(&self, source: &Source) -> Result<Option<Admission>, StoreError> {
        let Some(subject) = source.address_subject() else {
            return Ok(None);
        };
        Ok(self
            .per_address
            .hit(&subject)
            .await?
            .retry_after_secs()
            .map(|retry_after| Admission::Locked { retry_after, scope: LockScope::Address }))
    }

    /// The attempt failed: counts it against the pair and the identifier, and says whether the
    /// source must now wait.
    pub async fn failed(&self, identifier: &str, source: &Source, now: i64) -> Result<AfterFailure, StoreError> {
        let (id, pair) = self.pair(identifier, source);
        // Remembered so that an administrator can lift every lock of the identifier.
        self.store.set_add(&pairs_key(&id), &pair, self.policy.level_memory).await?;
        let failures = self.store.increment(&failures_key(&id), self.policy.identifier_window).await?.value;
        let attempts = self
            .store
            .get(&attempts_key(&pair))
            .await?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        if attempts >= self.policy.max_failures {
            return Ok(AfterFailure::Locked { until: self.lock(&pair, now).await?, scope: LockScope::Pair });
        }
        let untrusted = matches!(source, Source::Address(_));
        if untrusted && failures >= self.policy.identifier_delay_after {
            let p = &self.policy;
            let delay = doubled(p.identifier_base_delay, failures - p.identifier_delay_after, p.identifier_max_delay);
            if !delay.is_zero() {
                let until = now.saturating_add(seconds(delay));
                self.store.put(&wait_key(&pair), until.to_string().as_bytes(), delay).await?;
                return Ok(AfterFailure::Locked { until, scope: LockScope::Spacing });
            }
        }
        Ok(AfterFailure::Counted)
    }

    /// The attempt succeeded: the pair's slate is wiped, and the address is not charged for it.
    /// The identifier's count of failures stays: it is others' doing, and decays with its window.
    pub async fn succeeded(&self, identifier: &str, source: &Source) -> Result<(), StoreError> {
        let (_, pair) = self.pair(identifier, source);
        self.clear_pair(&pair).await?;
        if let Some(subject) = source.address_subject() {
            self.per_address.forgive(&subject).await?;
        }
        Ok(())
    }

    /// Where the identifier stands now, from every source, for an administrator: read only
    /// (nothing is counted or lifted).
    pub async fn status(&self, identifier: &str, now: i64) -> Result<LockStatus, StoreError> {
        let id = self.id_key(identifier);
        let failures = parse_i64(self.store.get(&failures_key(&id)).await?.as_ref()).unwrap_or(0);
        // Only this identifier's pairs (a member that is not one was not written here).
        let pairs: Vec<String> = self
            .store
            .set_members(&pairs_key(&id))
            .await?
            .into_iter()
            .filter(|p| p.starts_with(&format!("{id}:")))
            .collect();
        let mut status = LockStatus { recent_failures: u64::try_from(failures).unwrap_or(0), ..LockStatus::default() };
        for pair in &pairs {
            let found = self.store.get_many(&[&lock_key(pair), &wait_key(pair)]).await?;
            let live = |i: usize| parse_i64(found.get(i).and_then(Option::as_ref)).filter(|until| *until > now);
            if let Some(until) = live(0) {
                status.locked_sources += 1;
                status.ends_at(until);
            }
            if let Some(until) = live(1) {
                status.spaced_sources += 1;
                status.ends_at(until);
            }
        }
        Ok(status)
    }

    /// An administrator lifts every lock and spacing of the identifier, from every source.
    pub async fn reset(&self, identifier: &str) -> Result<(), StoreError> {
        let id = self.id_key(identifier);
        for pair in self.store.set_members(&pairs_key(&id)).await? {
            // A member that is not one of this identifier's pairs was not written here.
            if pair.starts_with(&format!("{id}:")) {
                self.store.delete(&lock_key(&pair)).await?;
                self.clear_pair(&pair).await?;
            }
        }
        self.store.delete(&pairs_key(&id)).await?;
        self.store.delete(&failures_key(&id)).await?;
        Ok(())
    }

    async fn clear_pair(&self, pair: &str) -> Result<(), StoreError> {
        self.store.delete(&attempts_key(pair)).await?;
        self.store.delete(&level_key(pair)).await?;
        self.store.delete(&wait_key(pair)).await?;
        Ok(())
    }

    async fn lock(&self, pair: &str, now: i64) -> Result<i64, StoreError> {
        if let Some(until) = self.locked_until(pair).await? {
            return Ok(until);
        }
        let level = self.store.increment(&level_key(pair), self.policy.level_memory).await?.value;
        let delay = doubled(self.policy.base_delay, level.saturating_sub(1), self.policy.max_delay);
        let until = now.saturating_add(seconds(delay));
        // Two racing failures may both get here: put_if_absent keeps the first lock's end.
        let locked = self
            .store
            .put_if_absent(&lock_key(pair), until.to_string().as_bytes(), delay.max(Duration::from_secs(1)))
            .await?;
        if locked {
            metrics::counter!("caducee_lockouts_total").increment(1);
        }
        self.store.delete(&attempts_key(pair)).await?;
        Ok(self.locked_until(pair).await?.unwrap_or(until))
    }

    async fn locked_until(&self, pair: &str) -> Result<Option<i64>, StoreError> {
        Ok(parse_i64(self.store.get(&lock_key(pair)).await?.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_stop_at_their_cap() {
        let base = Duration::from_secs(5);
        let max = Duration::from_secs(300);
        assert_eq!(doubled(base, 0, max), base);
        assert_eq!(doubled(base, 3, max), Duration::from_secs(40));
        assert_eq!(doubled(base, 10, max), max);
        assert_eq!(doubled(base, u64::MAX, max), max);
    }

    #[test]
    fn sources_name_their_pairs_apart() {
        let a = Source::Address(Some("2001:db8::1".parse().unwrap_or(IpAddr::from([0u8; 4]))));
        let b = Source::Address(Some("2001:db8::2".parse().unwrap_or(IpAddr::from([0u8; 4]))));
        assert_eq!(a.pair_suffix(), b.pair_suffix(), "one /64, one source");
        assert_ne!(a.pair_suffix(), Source::TrustedDevice("n".into()).pair_suffix());
        assert_eq!(Source::TrustedDevice("n".into()).address_subject(), None, "a signed-in browser is not charged");
    }
}
