//! Access tokens whose signature and issuer were checked recently, so that a resource server
//! calling userinfo or introspection with the same token many times pays for one ECDSA or RSA
//! verification, not one per call.
//!
//! Only the signature check is remembered: expiry is compared on every use, and revocation and
//! the session's end are read from the session store on every call, exactly as without it.
//! Entries are keyed by the SHA-256 of the whole token, so a token altered in any byte misses.
//! A signing key leaves the ring only once every token it signed has expired (see
//! [`crate::keys`]), so a remembered signature never outlives its key. Entries are per node,
//! which is harmless: another node verifies the token itself.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;

use crate::token::AccessTokenClaims;

/// Tokens kept at most; past it expired ones are dropped, and if none are, everything.
const CAPACITY: usize = 100_000;
/// Expired entries are swept once the map holds this many, and from then on each time it has
/// grown by a quarter since the last sweep ([`GROWTH_BEFORE_SWEEP`]): an amortised constant
/// cost per token (a sweep visits five entries for each token remembered since the last one,
/// at most), and a map at most a quarter larger than the tokens still alive. Sweeping only at
/// `CAPACITY`, as at first, let a node under a steady load hold 100,000 entries, most of them
/// expired; sweeping as the map doubled still let each node's memory swing by the tokens of
/// a whole lifetime (docs/benchmarks.md, «Soak»).
const FIRST_SWEEP: usize = 1024;
/// The next sweep runs once the map holds this many times what the last one left.
const GROWTH_BEFORE_SWEEP: (usize, usize) = (5, 4);
/// The table gives back its room after a sweep only when it is this many times larger than
/// what the next sweep lets it hold: a table resized at every sweep moves between sizes of a
/// few MiB each time the tokens alive cross a power of two, and the soak's nodes showed those
/// steps (14 MiB up and down) in their resident memory.
const SHRINK_FACTOR: usize = 4;

type TokenDigest = [u8; 32];

#[derive(Default)]
pub(crate) struct VerifiedTokens {
    entries: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    /// The claims behind an `Arc`: a slot of the table is a digest and a pointer (the table
    /// stays small whatever the claims hold), and a hit hands out the pointer, not a copy of
    /// every string of the claims.
    map: HashMap<TokenDigest, Arc<AccessTokenClaims>>,
    /// The size at which the next sweep runs (0 before the first: [`FIRST_SWEEP`]).
    sweep_at: usize,
}

fn token_digest(token: &str) -> TokenDigest {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

impl VerifiedTokens {
    /// The claims of `token` if it was verified before and has not expired at `now`, and its
    /// digest for [`VerifiedTokens::remember`] otherwise.
    pub(crate) fn lookup(&self, token: &str, now: i64) -> Result<Arc<AccessTokenClaims>, TokenDigest> {
        let key = token_digest(token);
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        match entries.map.get(&key) {
            Some(claims) if claims.exp > now => Ok(Arc::clone(claims)),
            _ => Err(key),
        }
    }

    /// Remembers claims just verified for the token whose digest `lookup` returned.
    pub(crate) fn remember(&self, key: TokenDigest, claims: Arc<AccessTokenClaims>, now: i64) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.map.len() >= entries.sweep_at.max(FIRST_SWEEP) {
            entries.map.retain(|_, c| c.exp > now);
            if entries.map.len() >= CAPACITY {
                entries.map.clear();
            }
            let live = entries.map.len();
            let (num, den) = GROWTH_BEFORE_SWEEP;
            let next = (live.saturating_mul(num) / den).clamp(FIRST_SWEEP, CAPACITY);
            entries.sweep_at = next;
            if entries.map.capacity() > SHRINK_FACTOR * next {
                entries.map.shrink_to(next);
            }
        }
        entries.map.insert(key, claims);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner).map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://idp".into(),
            sub: "s".into(),
            aud: "a".into(),
            client_id: "c".into(),
            exp,
            iat: 0,
            jti: "j".into(),
            scope: "openid".into(),
            sid: None,
            gid: "g".into(),
            auth_time: None,
            acr: None,
            azp: None,
            session_state: None,
            preferred_username: None,
            auth_mode: None,
            userinfo_claims: Vec::new(),
            cnf: None,
        }
    }

    #[test]
    fn remembered_until_expiry_and_only_for_the_same_token() {
        let cache = VerifiedTokens::default();
        let Err(key) = cache.lookup("a.b.c", 10) else { panic!("empty cache hit") };
        cache.remember(key, Arc::new(claims(100)), 10);
        assert_eq!(cache.lookup("a.b.c", 99).map(|c| c.exp).ok(), Some(100));
        assert!(cache.lookup("a.b.c", 100).is_err(), "expired");
        assert!(cache.lookup("a.b.d", 10).is_err(), "another token");
    }

    /// Under a steady stream of tokens, expired entries go long before the capacity: the map
    /// stays within a quarter above the tokens alive, whatever the number verified over time.
    #[test]
    fn expired_entries_are_swept_as_the_map_grows() {
        let cache = VerifiedTokens::default();
        // 100 new tokens a second, each living 60 s, for 20 minutes: 120,000 tokens, 6,000
        // alive at any moment.
        for i in 0..120_000_i64 {
            let now = i / 100;
            let Err(key) = cache.lookup(&format!("token-{i}"), now) else { panic!("new token hit") };
            cache.remember(key, Arc::new(claims(now + 60)), now);
            // 6,000 alive, and the 100 of the second that has just begun.
            assert!(cache.len() <= 6_100 * 5 / 4, "{} entries at {now} s", cache.len());
        }
        // The live ones are still remembered.
        let now = 119_999 / 100;
        assert!(cache.lookup("token-119999", now).is_ok());
        assert!(cache.lookup("token-119000", now).is_ok());
    }
}
