//! `card-agent`: the local bridge on the professional's computer between the provider's login
//! page and the CPS smart card.
//!
//! Owns: the card side of a card sign-in ([`challenge`]: the contract with the provider,
//! `caducee-card-v1:<origin>:<nonce>`, SHA-256 signed RSA PKCS#1 v1.5), the ways to the card
//! ([`backend`]: APDUs over PC/SC to the CPS3's IAS application, or a PKCS#11 module for CPS4
//! middleware), the loopback HTTP server the login page talks to ([`http`]: origin allow-list,
//! CORS with private network access, JSON and plain-form answers, [`page`] for the form's
//! auto-post page).
//!
//! Must not depend on: any server-side crate of this workspace (`oidc-core`, `authn-methods`,
//! `login-ui`, `directory`, `server`…). It speaks HTTP only; the provider verifies what it
//! returns.

pub mod backend;
pub mod challenge;
pub mod error;
pub mod http;
pub mod page;

pub use backend::{CardBackend, ReaderInfo, Signed};
pub use challenge::Challenge;
pub use error::AgentError;
