//! `caducee-authenticator`: the reference phone app, as a command-line program. It enrols as
//! the professional's approval phone, lists the push requests waiting for it, approves them
//! (typing the number the login page shows) or refuses them («ce n'était pas moi» included), and
//! lifts the push block of its account. Anyone can sign in without a phone, and the provider's
//! tests drive the real thing.
//!
//! What it owns:
//! - the device side of the device API (`{issuer}/push/v1`, docs/authentication.md): every
//!   request a compact ES256 JWS signed with a P-256 key made here at enrolment ([`device`],
//!   [`http`]);
//! - the local state ([`state`]): one JSON file (mode 0600, written atomically) whose secrets
//!   (the device key, and a secret shared at enrolment if the server gives one) are sealed with
//!   AES-256-GCM under a key derived from the PIN by argon2id; a wrong PIN counts down, and the
//!   file is wiped after the last try;
//! - the verbs ([`commands`]), one module each, so that a later one (`scan`, `offline-code`)
//!   is one more module using [`commands::Context::unlock`].
//!
//! What it must not depend on: any server-side crate of this workspace (`oidc-core`,
//! `authn-methods`, `device-api`, `directory`, `session-store`, `server`…). It knows the
//! provider only through the documented HTTP protocol, like a third party's app would.

pub mod commands;
pub mod device;
pub mod error;
pub mod http;
pub mod pin;
pub mod state;

pub use error::Error;
