//! Test harness shared by the workspace's test suites: real Redis (one server, a cluster, or a
//! primary and replica under Sentinel) and PostgreSQL servers started
//! from the Debian binaries on free loopback ports, each in its own temporary directory, and stopped
//! (with their files removed) when the handle is dropped; an SMTP sink; ChromeDriver and axe-core;
//! schemathesis for checking OpenAPI documents against running servers; a TCP load balancer for
//! several nodes behind one address; the schema checkers of `deploy/`.
//!
//! Only for tests: no production crate depends on this one outside `[dev-dependencies]`.

pub mod balancer;
pub mod card_pki;
pub mod deploy_tools;
pub mod postgres;
pub mod redis;
pub mod redis_cluster;
pub mod redis_sentinel;
pub mod schemathesis;
pub mod smtp;
pub mod webdriver;

use std::net::TcpListener;

/// Errors while starting a test server.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("cannot find the `{0}` program: install it (see .ci/run)")]
    MissingProgram(String),
    #[error("i/o error while {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} did not become ready in time: {1}")]
    NotReady(&'static str, String),
    #[error("cannot make a test certificate: {0}")]
    Certificate(String),
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, HarnessError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|source| HarnessError::Io { context: "binding a free port".into(), source })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| HarnessError::Io { context: "reading a free port".into(), source })
}
