//! Whole-provider tests: the real router on loopback, real storage (SQLite, PostgreSQL, Redis
//! started by the harness), the real binary for the command line. One test binary, several
//! modules, to keep link time down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod admin_access;
mod audit;
mod authenticator;
mod authenticator_push;
mod authenticator_qr;
mod backchannel;
mod backup;
mod binary;
mod browser;
mod browser_card;
mod browser_console;
mod browser_passkey;
mod card;
mod common;
mod console;
mod debug_redaction;
mod deploy;
mod faults;
mod frontchannel;
mod hardening;
mod login;
mod mail;
mod metrics;
mod mtls;
mod multinode;
mod psc;
mod push;
mod push_guard;
mod qr;
mod redis_modes;
mod resilience;
mod session_binding;
mod telemetry;
mod tokens;
mod wallet;
mod webauthn;
