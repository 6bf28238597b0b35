//! A relying-party test suite for Caducée, written against the OpenID Connect specs and driven
//! by the `openidconnect` crate (which nobody here wrote) as the client.
//!
//! The person's part (the login form) is played by [`browser::Browser`], a cookie-keeping HTTP
//! client that follows the documented form contract (docs/login-ui.md); the relying party's
//! part by `openidconnect`'s `CoreClient`, built from discovery ([`rp`]); `private_key_jwt`
//! assertions are signed with the `jsonwebtoken` crate ([`assertion`]). The professional's phone
//! (CIBA, push approval) is [`phone::Phone`]: the reference app's device key
//! (`caducee-authenticator`'s library) signing the documented device API's requests.

pub mod assertion;
pub mod browser;
pub mod phone;
pub mod rp;
