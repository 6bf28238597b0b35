//! `[mtls]`: mutual TLS for relying parties (RFC 8705, docs/configuration.md).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where client certificates come from, and where relying parties send them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtlsConfig {
    /// Offer `tls_client_auth`, `self_signed_tls_client_auth` and certificate-bound tokens.
    /// Certificates come from the listener below, or from a trusted proxy (`trusted_proxies`)
    /// in the header `admin.client_certificate_header`.
    pub enabled: bool,
    /// The public base URL of the mutual-TLS endpoints, when it is not the issuer's origin
    /// (discovery's `mtls_endpoint_aliases`): the listener below, or a proxy's host.
    pub origin: String,
    /// The address of the provider's own TLS listener, which asks every client for a
    /// certificate (empty: none).
    pub listen: Option<std::net::SocketAddr>,
    /// That listener's certificate chain and key (PEM files).
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// The CAs whose certificates `tls_client_auth` accepts on that listener (PEM file; empty:
    /// only `self_signed_tls_client_auth` is possible there).
    pub client_ca: PathBuf,
}
