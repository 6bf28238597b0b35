//! How keys are named: each crate that keeps state in the store declares its families of keys
//! in one module of its own (`store_keys`), with a list of them all, so that a test that sees
//! every crate can check that no two families of the workspace share a name.

use std::fmt::Display;

/// One family of keys (`sso` names `sso:{id}`), or of rate limits (`push-account` names
/// `rl:push-account:{subject}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyPrefix(&'static str);

impl KeyPrefix {
    pub const fn new(name: &'static str) -> KeyPrefix {
        KeyPrefix(name)
    }

    pub const fn name(self) -> &'static str {
        self.0
    }

    /// The key of `id` in this family.
    pub fn key(self, id: impl Display) -> String {
        format!("{}:{id}", self.0)
    }
}

/// The family the rate limiters' counters live in ([`crate::RateLimiter`]).
pub const RATE_LIMITS: KeyPrefix = KeyPrefix::new("rl");

/// This crate's families.
pub const ALL: &[KeyPrefix] = &[RATE_LIMITS];

/// Whether the families of the whole workspace, listed by each crate, are all distinct and well
/// formed (lower-case letters, digits and dashes): two crates writing under one name would
/// read each other's records. Returns the first offender.
pub fn first_clash<'a>(families: impl IntoIterator<Item = &'a KeyPrefix>) -> Option<&'static str> {
    let mut seen = std::collections::HashSet::new();
    for f in families {
        let well_formed =
            !f.0.is_empty() && f.0.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !well_formed || !seen.insert(f.0) {
            return Some(f.0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_join_the_family_and_the_id() {
        assert_eq!(KeyPrefix::new("sso").key("abc"), "sso:abc");
    }

    #[test]
    fn a_clash_or_a_malformed_name_is_found() {
        let a = KeyPrefix::new("a");
        assert_eq!(first_clash(&[a, KeyPrefix::new("b")]), None);
        assert_eq!(first_clash(&[a, KeyPrefix::new("a")]), Some("a"));
        assert_eq!(first_clash(&[KeyPrefix::new("x:y")]), Some("x:y"));
        assert_eq!(first_clash(&[KeyPrefix::new("")]), Some(""));
    }
}
