//! `caducee-authenticator`: the reference phone app, as a command-line program. It enrols as
//! the professional's approval phone, lists the push requests waiting for it, approves them
//! (typing the number the login page shows) or refuses them («ce n'était pas moi» included),
//! lifts the push block of its account, and signs in by the login page's QR code: online
//! (`scan`: approve or refuse what the provider says of the login) or without network
//! (`offline-code`: the identifier and OCRA code to type). Anyone can sign in without a phone,
//! and the provider's tests drive the real thing.
//!
//! What it owns:
//! - the device side of the device API (`{issuer}/push/v1`, docs/authentication.md): every
//!   request a compact ES256 JWS signed with a P-256 key made here at enrolment ([`device`],
//!   [`http`]);
//! - the local state ([`state`]): one JSON file (mode 0600, written atomically) whose secrets
//!   (the device key, and the offline sign-in identifier, OCRA secret and suite if the server
//!   gave them at enrolment) are sealed with
//!   AES-256-GCM under a key derived from the PIN by argon2id; a wrong PIN counts down, and the
//!   file is wiped after the last try;
//! - the login page's QR code payload and the checks made before acting on it ([`login_qr`]:
//!   this phone's server only, not expired);
//! - the verbs ([`commands`]), one module each, each using [`commands::Context::unlock`] (or
//!   [`commands::Context::open`] without network).
//!
//! What it must not depend on: any server-side crate of this workspace (`oidc-core`,
//! `authn-methods`, `device-api`, `directory`, `session-store`, `server`…). It knows the
//! provider only through the documented HTTP protocol, like a third party's app would. The
//! `ocra` crate (RFC 6287) is shared with the provider and depends on nothing of ours.

pub mod commands;
pub mod device;
pub mod error;
pub mod http;
pub mod login_qr;
pub mod pin;
pub mod state;

pub use error::Error;
