//! The relying-party conformance suite: each test starts its own provider (embedded default)
//! and plays a relying party with `openidconnect` and a person with a browser. One binary, so
//! that the suite links once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ciba;
mod client_auth;
mod flows;
mod negative;
mod psc_rp;
mod sessions;
