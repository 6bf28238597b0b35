//! The admin side of Caducée: the operations administrators need when an account is
//! compromised or a relying party changes — sessions (list, revoke one, force logout everywhere),
//! accounts (block, unblock, lift a lockout, push blocks), authenticators, clients, audit and back-channel
//! logout deliveries — as a REST API under `/admin/v1` with its OpenAPI document, and as a service
//! the `caducee` command line calls, so that both share one code path and one audit trail.
//!
//! Must not depend on `login-ui`.

pub mod audit;
mod auth;
mod deliveries;
pub mod http;
pub mod lockout;
pub mod push;
pub mod roles;
pub mod service;

pub use http::{ADMIN_SCOPE, Admin, ApiDoc, ProxiedClientCertificate, router};
pub use service::{Actor, AdminError, AdminService};
