//! The session store's keys this crate writes, in one place ([`session_store::keys`]).

use session_store::KeyPrefix;

/// A wallet session, by the hash of its cookie's handle.
pub const WALLET_SESSION: KeyPrefix = KeyPrefix::new("wallet");
/// The wallet's own login in progress (state, PKCE verifier, nonce), by `state`.
pub const WALLET_LOGIN: KeyPrefix = KeyPrefix::new("wallet-login");

/// Every family above.
pub const ALL: &[KeyPrefix] = &[WALLET_SESSION, WALLET_LOGIN];
/// This crate keeps no rate limit.
pub const LIMITS: &[KeyPrefix] = &[];
