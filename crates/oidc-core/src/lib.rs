//! The OpenID Connect protocol engine of Caducée.
//!
//! Owns discovery, JWKS and key rotation, authorization request validation, login interactions,
//! single-use codes, tokens (ID, access, refresh), claims, userinfo, introspection, revocation,
//! RP-initiated logout, client registry and client authentication, decoupled logins (CIBA,
//! [`ciba`], behind [`ciba::DecoupledLogin`]); and the security headers of
//! every HTTP answer ([`http::security`]) and the redacted type of the secrets requests and
//! answers carry ([`secret`]).
//!
//! It never learns how a person was authenticated beyond a [`session::LoginResult`] (subject,
//! `acr`, `amr`, time): it must not depend on `authn-methods`, `login-ui` or any database crate.
//! Durable data comes through traits ([`client::ClientRegistry`], [`claims::AccountDirectory`],
//! [`grants::RefreshTokenStore`], [`keys::KeyStore`], [`provider::AuditSink`]) wired by the server;
//! short-lived state lives in a [`session_store::SessionStore`]. Time is passed in (`now`, Unix
//! seconds) so that tests move it instead of sleeping.

pub mod authorize;
pub mod backchannel;
pub mod ciba;
pub mod claims;
pub mod claims_request;
pub mod client;
pub mod client_auth;
pub mod config;
pub mod discovery;
pub mod error;
pub mod first_party;
pub mod flow;
pub mod grants;
pub mod http;
pub mod keys;
pub mod logout;
pub mod mtls;
pub mod provider;
pub mod resource;
pub mod secret;
pub mod session;
pub mod store_keys;
pub mod token;
pub mod util;
mod verified;

pub use authorize::Locale;
pub use config::ProviderConfig;
pub use provider::{AuditEntry, AuditSink, AuditUnavailable, ProtocolEvent, Provider, ProviderDeps};
pub use session::{LoginResult, RequestOrigin};
