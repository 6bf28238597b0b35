//! The session store's keys this crate writes, in one place ([`session_store::keys`]).

use session_store::KeyPrefix;

/// A console session, by the hash of its cookie's handle.
pub const CONSOLE_SESSION: KeyPrefix = KeyPrefix::new("console");
/// The console's own sign-in in progress (state, PKCE verifier, nonce), by `state`.
pub const CONSOLE_LOGIN: KeyPrefix = KeyPrefix::new("console-login");

/// Every family above.
pub const ALL: &[KeyPrefix] = &[CONSOLE_SESSION, CONSOLE_LOGIN];
/// This crate keeps no rate limit.
pub const LIMITS: &[KeyPrefix] = &[];
