//! The admin REST API of Caducée (`/admin/v1`): sessions (list, revoke, force logout), accounts
//! (block, unblock, reset lockouts), authenticators, clients and audit queries, described by an
//! OpenAPI document.
//!
//! Empty until its issue lands; it must not depend on `login-ui`.
