//! The relying-party conformance suite: each test starts its own provider (embedded default)
//! and plays a relying party with `openidconnect` and a person with a browser.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flows;
mod negative;
