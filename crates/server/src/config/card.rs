//! `[card]`: the CPS card sign-in (docs/authentication.md, docs/configuration.md): where the
//! card agent listens on professionals' computers, the certificates the provider trusts, the
//! revocation lists it checks them against, and which subject attribute names the
//! professional. The method itself is turned on in `login.methods` (`card`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use authn_methods::card::crl::{CrlSet, CrlSource};
use authn_methods::card::pki::{CardTrust, IdentifierAttribute, IdentifierRule, RevocationPolicy};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// How far revocation is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RevocationDepth {
    /// The card's certificate and every CA certificate above it (each needs its issuer's list).
    #[default]
    Chain,
    /// The card's certificate alone.
    EndEntity,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CardConfig {
    /// Where the card agent listens on the professional's computer (loopback).
    pub agent_url: String,
    /// Root certificates of the health PKI (PEM files; IGC-Santé's roots in production).
    pub trust_anchors: Vec<PathBuf>,
    /// Intermediate CA certificates, for cards that do not carry them (PEM files).
    pub intermediates: Vec<PathBuf>,
    /// Certificate revocation lists: file paths or `http(s)://` URLs, DER or PEM. At least
    /// one: without a list, no card's status is known and every card is refused.
    pub crls: Vec<String>,
    /// Seconds between two refreshes of the lists (60 to 86,400).
    pub crl_refresh: u64,
    /// Accept a list past its `nextUpdate` (off: a card is refused until a fresh list is read).
    pub allow_stale_crl: bool,
    /// `chain` (default) or `end_entity`.
    pub revocation: RevocationDepth,
    /// Certificate policy OIDs of which a card's certificate must carry one (empty: any).
    pub required_policies: Vec<String>,
    /// The subject attribute holding the national identifier: `common_name` (default),
    /// `serial_number` or `uid`.
    pub identifier_attribute: IdentifierAttribute,
    /// A prefix to remove from that attribute's value (empty: none).
    pub identifier_prefix: String,
    /// The card's TLS listener, for browsers that read the card themselves (empty: none).
    pub tls_listen: Option<std::net::SocketAddr>,
    /// Its public origin, on the login pages' host (`https://host:port`).
    pub tls_origin: String,
    /// Its certificate chain and key (PEM files).
    pub tls_certificate: PathBuf,
    pub tls_private_key: PathBuf,
    /// Offer TLS 1.3 there too (off: TLS 1.2 only, which a CPS3's PKCS#1 v1.5 signature needs).
    pub tls13: bool,
}

impl Default for CardConfig {
    fn default() -> Self {
        CardConfig {
            agent_url: "http://127.0.0.1:8765".into(),
            trust_anchors: Vec::new(),
            intermediates: Vec::new(),
            crls: Vec::new(),
            crl_refresh: 3600,
            allow_stale_crl: false,
            revocation: RevocationDepth::Chain,
            required_policies: Vec::new(),
            identifier_attribute: IdentifierAttribute::CommonName,
            identifier_prefix: String::new(),
            tls_listen: None,
            tls_origin: String::new(),
            tls_certificate: PathBuf::new(),
            tls_private_key: PathBuf::new(),
            tls13: false,
        }
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = std::fs::read(path).map_err(|e| ConfigError::Invalid(format!("card: {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::Invalid(format!("card: {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::Invalid(format!("card: {}: no certificate", path.display())));
    }
    Ok(certs)
}

impl CardConfig {
    /// Checks what can be checked without reading files (called when `card` is on).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let agent =
            url::Url::parse(&self.agent_url).map_err(|e| ConfigError::Invalid(format!("card.agent_url: {e}")))?;
        let loopback = match agent.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if !loopback || !matches!(agent.scheme(), "http" | "https") || agent.path() != "/" {
            return Err(ConfigError::Invalid(
                "card.agent_url must be the card agent's loopback origin, e.g. http://127.0.0.1:8765".into(),
            ));
        }
        if self.trust_anchors.is_empty() {
            return Err(ConfigError::Invalid("card.trust_anchors must name the health PKI's root certificates".into()));
        }
        if self.crls.is_empty() {
            return Err(ConfigError::Invalid(
                "card.crls must name at least one revocation list: without one, every card would be refused".into(),
            ));
        }
        if self.tls_listen.is_some() {
            let origin =
                url::Url::parse(&self.tls_origin).map_err(|e| ConfigError::Invalid(format!("card.tls_origin: {e}")))?;
            if origin.scheme() != "https" || origin.path() != "/" || origin.query().is_some() {
                return Err(ConfigError::Invalid(
                    "card.tls_origin must be the card listener's https origin, e.g. https://auth.example:8443".into(),
                ));
            }
            if self.tls_certificate.as_os_str().is_empty() || self.tls_private_key.as_os_str().is_empty() {
                return Err(ConfigError::Invalid(
                    "card.tls_listen needs card.tls_certificate and card.tls_private_key".into(),
                ));
            }
        }
        if !(60..=86_400).contains(&self.crl_refresh) {
            return Err(ConfigError::Invalid("card.crl_refresh must be between 60 and 86400 seconds".into()));
        }
        Ok(())
    }

    /// The card listener's origin, when it is on.
    pub fn tls_origin(&self) -> Option<String> {
        self.tls_listen.map(|_| self.tls_origin.trim_end_matches('/').to_owned())
    }

    /// The agent's origin, without a trailing slash.
    pub fn agent_origin(&self) -> String {
        self.agent_url.trim_end_matches('/').to_owned()
    }

    pub fn crl_sources(&self) -> Vec<CrlSource> {
        self.crls
            .iter()
            .map(|c| {
                if c.starts_with("http://") || c.starts_with("https://") {
                    CrlSource::Url(c.clone())
                } else {
                    CrlSource::File(PathBuf::from(c))
                }
            })
            .collect()
    }

    /// The trust the card method checks against, its lists not loaded yet.
    pub fn trust(&self) -> Result<CardTrust, ConfigError> {
        let mut anchors = Vec::new();
        for path in &self.trust_anchors {
            anchors.extend(certificates(path)?);
        }
        let mut intermediates = Vec::new();
        for path in &self.intermediates {
            intermediates.extend(certificates(path)?);
        }
        let identifier = IdentifierRule {
            attribute: self.identifier_attribute,
            strip_prefix: Some(self.identifier_prefix.clone()).filter(|p| !p.is_empty()),
        };
        let revocation = RevocationPolicy {
            whole_chain: self.revocation == RevocationDepth::Chain,
            allow_stale: self.allow_stale_crl,
        };
        let crls = Arc::new(CrlSet::new(self.crl_sources()));
        CardTrust::new(&anchors, intermediates, self.required_policies.clone(), identifier, revocation, crls)
            .map_err(|e| ConfigError::Invalid(format!("card: {e}")))
    }
}
