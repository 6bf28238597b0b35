//! The one building block for rate limits (logins per source address, interactions per address
//! and per browser, mailed codes, pushes): fixed-window counters kept in the session store, so
//! that with Redis a limit holds across every node, and in process it costs one map entry.
//!
//! A fixed window lets a client spend up to twice the rate across a window boundary; for the
//! limits this serves (tens of events per minutes) that is immaterial, and it keeps each check
//! to one atomic increment (one round trip) with an exact `Retry-After`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::keys::{KeyPrefix, RATE_LIMITS};
use crate::{SessionStore, StoreError, StoreResult};

/// At most `max` events per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub max: u64,
    pub window: Duration,
}

impl Rate {
    pub const fn new(max: u64, window: Duration) -> Self {
        Rate { max, window }
    }
}

/// Whether an event stays within its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the rate: the window reopens in `retry_after`. `first` is set for the first event
    /// refused in this window, so that a caller can record the crossing once rather than every
    /// refused event (which would let the refused grow the audit log).
    Limited {
        retry_after: Duration,
        first: bool,
    },
}

impl Verdict {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allowed)
    }

    /// Whole seconds to wait (at least one), for `Retry-After`; `None` when allowed.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Verdict::Allowed => None,
            Verdict::Limited { retry_after, .. } => Some(retry_after.as_secs().max(1)),
        }
    }
}

/// Subjects are short by construction (an address prefix, a hash, a cookie); a long one is a
/// caller's mistake that would let input grow the store.
const MAX_SUBJECT: usize = 200;

/// One named limit over the session store (e.g. `login-address`, `interaction-browser`).
#[derive(Clone)]
pub struct RateLimiter {
    store: Arc<dyn SessionStore>,
    name: KeyPrefix,
    rate: Rate,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("name", &self.name).field("rate", &self.rate).finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// `name` is declared with its crate's other families (see [`crate::keys`]).
    pub fn new(store: Arc<dyn SessionStore>, name: KeyPrefix, rate: Rate) -> Self {
        RateLimiter { store, name, rate }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    fn key(&self, subject: &str) -> StoreResult<String> {
        if subject.len() > MAX_SUBJECT {
            return Err(StoreError::Invalid("rate-limit subject too long"));
        }
        Ok(RATE_LIMITS.key(format!("{}:{subject}", self.name.name())))
    }

    /// Counts one event for `subject` and says whether it stays within the rate. Events over the
    /// rate are counted too: hammering does not earn anything, and the window still closes on
    /// time.
    pub async fn hit(&self, subject: &str) -> StoreResult<Verdict> {
        let counter = self.store.increment(&self.key(subject)?, self.rate.window).await?;
        if counter.value > self.rate.max {
            metrics::counter!("caducee_rate_limited_total", "limit" => self.name.name()).increment(1);
            let retry_after = counter.resets_in.max(Duration::from_secs(1));
            return Ok(Verdict::Limited { retry_after, first: counter.value == self.rate.max.saturating_add(1) });
        }
        Ok(Verdict::Allowed)
    }

    /// Takes back one event of `subject`, which turned out not to count (a login that
    /// succeeded): the limit then counts only what went wrong, and what is still in flight.
    pub async fn forgive(&self, subject: &str) -> StoreResult<()> {
        self.store.decrement(&self.key(subject)?).await
    }

    /// Forgets every event of `subject`.
    pub async fn clear(&self, subject: &str) -> StoreResult<()> {
        self.store.delete(&self.key(subject)?).await.map(|_| ())
    }
}

/// The rate-limit subject of a request's source: [`address_subject`] of its address, and one
/// shared subject for every request whose address is unknown (they share a budget: failing
/// closed, not open).
pub fn source_subject(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "unknown".to_owned(), address_subject)
}

/// The rate-limit subject of a source address: the address itself for IPv4 (and IPv4-mapped
/// IPv6), its /64 for IPv6, since one subscriber commonly holds a whole /64 and would otherwise
/// get a fresh budget for every address in it.
pub fn address_subject(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ipv6_addresses_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_subject(a), address_subject(b));
        assert_ne!(address_subject(a), address_subject(c));
        assert_eq!(address_subject(a), "2001:db8:1:2::/64");
        assert_eq!(address_subject("203.0.113.9".parse().unwrap()), "203.0.113.9");
        assert_eq!(address_subject("::ffff:203.0.113.9".parse().unwrap()), "203.0.113.9");
    }
}
