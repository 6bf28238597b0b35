//! Mutual-TLS client authentication and certificate-bound access tokens (RFC 8705).
//!
//! The certificate comes from the connection: the provider's own TLS listener, or a
//! TLS-terminating proxy the server trusts, which passes it on (the server wiring does both and
//! hands this module a [`ClientCertificate`]). What is checked here:
//! - `tls_client_auth` (§2.1): the certificate chains to a CA the operator trusts (checked by
//!   whoever terminated TLS: `chain_verified`), and its subject DN, or one of its subject
//!   alternative names, is the one the client registered;
//! - `self_signed_tls_client_auth` (§2.2): the certificate is one of the client's registered
//!   keys (`x5c` or `x5t#S256` in its JWK Set), whoever issued it;
//! - bound tokens (§3): the SHA-256 thumbprint of the certificate (`cnf.x5t#S256`).

use jsonwebtoken::jwk::JwkSet;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::client::ClientMetadata;
use crate::util::{constant_time_eq, sha256_b64};

/// A client certificate presented on the connection (DER), as the TLS terminator saw it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    der: std::sync::Arc<[u8]>,
    /// The certificate chains to a CA the operator trusts for `tls_client_auth` (the proxy
    /// verified it, or the provider's own listener did against `mtls.client_ca`).
    pub chain_verified: bool,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint())
            .field("chain_verified", &self.chain_verified)
            .finish()
    }
}

impl ClientCertificate {
    pub fn new(der: Vec<u8>, chain_verified: bool) -> Self {
        ClientCertificate { der: der.into(), chain_verified }
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// A certificate as a TLS-terminating proxy passes it in a header: URL-encoded PEM (nginx's
    /// `$ssl_client_escaped_cert`) or base64 DER (HAProxy); `None` if it is neither. The proxy
    /// verified it (`chain_verified`) against the CAs it was given.
    pub fn from_forwarded(value: &str) -> Option<Self> {
        use base64::Engine as _;
        let raw = value.trim();
        if raw.is_empty() {
            return None;
        }
        let decoded = percent_decode(raw)?;
        let der = if decoded.contains("-----BEGIN CERTIFICATE-----") {
            let body: String = decoded
                .lines()
                .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
                .skip(1)
                .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
                .collect();
            base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()?
        } else {
            base64::engine::general_purpose::STANDARD.decode(decoded.as_bytes()).ok()?
        };
        // Only what parses as a certificate is one.
        X509Certificate::from_der(&der).ok()?;
        Some(ClientCertificate::new(der, true))
    }

    /// RFC 8705 §3.1: `x5t#S256`, the base64url SHA-256 of the DER certificate.
    pub fn thumbprint(&self) -> String {
        sha256_b64(&self.der)
    }
}

/// `%XX` sequences decoded (nginx escapes the PEM's newlines, spaces and `+`, `/`, `=`).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What a `tls_client_auth` client registered to be recognised by (RFC 8705 §2.1.2): exactly
/// one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateName<'a> {
    SubjectDn(&'a str),
    SanDns(&'a str),
    SanUri(&'a str),
    SanIp(&'a str),
    SanEmail(&'a str),
}

impl ClientMetadata {
    /// The name a `tls_client_auth` client registered; `None` if none or more than one.
    pub fn tls_client_auth_name(&self) -> Option<CertificateName<'_>> {
        let names: Vec<CertificateName<'_>> = [
            self.tls_client_auth_subject_dn.as_deref().map(CertificateName::SubjectDn),
            self.tls_client_auth_san_dns.as_deref().map(CertificateName::SanDns),
            self.tls_client_auth_san_uri.as_deref().map(CertificateName::SanUri),
            self.tls_client_auth_san_ip.as_deref().map(CertificateName::SanIp),
            self.tls_client_auth_san_email.as_deref().map(CertificateName::SanEmail),
        ]
        .into_iter()
        .flatten()
        .collect();
        match names.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        }
    }
}

/// §2.1: a certificate from a trusted CA with the registered name.
pub fn matches_pki(certificate: &ClientCertificate, name: &CertificateName<'_>) -> bool {
    if !certificate.chain_verified {
        return false;
    }
    let Ok((_, cert)) = X509Certificate::from_der(certificate.der()) else {
        return false;
    };
    match name {
        CertificateName::SubjectDn(dn) => same_dn(&rfc4514(&cert), dn),
        other => sans(&cert).iter().any(|san| san_matches(san, other)),
    }
}

/// §2.2: one of the client's registered certificates (`x5c` or `x5t#S256` in its JWK Set).
pub fn matches_self_signed(certificate: &ClientCertificate, jwks: Option<&serde_json::Value>) -> bool {
    let Some(set) = jwks.and_then(|j| serde_json::from_value::<JwkSet>(j.clone()).ok()) else {
        return false;
    };
    let thumbprint = certificate.thumbprint();
    set.keys.iter().any(|key| {
        let by_chain = key.common.x509_chain.as_ref().and_then(|chain| chain.first()).is_some_and(|first| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(first)
                .is_ok_and(|der| constant_time_eq(&der, certificate.der()))
        });
        let by_thumbprint = key
            .common
            .x509_sha256_fingerprint
            .as_deref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), thumbprint.as_bytes()));
        by_chain || by_thumbprint
    })
}

/// The certificate's subject in RFC 4514's order (the last RDN first), `TYPE=value` pairs.
fn rfc4514(cert: &X509Certificate<'_>) -> Vec<(String, String)> {
    let registry = x509_parser::objects::oid_registry();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for rdn in cert.subject().iter() {
        for attribute in rdn.iter() {
            let name = x509_parser::objects::oid2abbrev(attribute.attr_type(), registry)
                .map(str::to_owned)
                .unwrap_or_else(|_| attribute.attr_type().to_id_string());
            let value = attribute.as_str().unwrap_or_default().to_owned();
            pairs.push((name, value));
        }
    }
    pairs.reverse();
    pairs
}

/// Compares a certificate's subject with the DN a client registered (RFC 4514 text):
/// attribute types without regard to case, values exactly once unescaped.
fn same_dn(subject: &[(String, String)], registered: &str) -> bool {
    let Some(parsed) = parse_rfc4514(registered) else {
        return false;
    };
    parsed.len() == subject.len()
        && parsed.iter().zip(subject).all(|((t1, v1), (t2, v2))| canonical_type(t1) == canonical_type(t2) && v1 == v2)
}

fn canonical_type(t: &str) -> String {
    match t.to_ascii_uppercase().as_str() {
        "EMAILADDRESS" | "E" => "EMAILADDRESS".into(),
        "ST" | "S" => "ST".into(),
        other => other.to_owned(),
    }
}

/// RFC 4514 text into `(type, value)` pairs, `,` or `+` separated, `\` escapes honoured.
fn parse_rfc4514(text: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    let mut parts = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push('\\');
                current.push(chars.next()?);
            }
            ',' | '+' => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    for part in parts {
        let (name, value) = part.split_once('=')?;
        let mut unescaped = String::new();
        let mut it = value.trim().chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                unescaped.push(it.next()?);
            } else {
                unescaped.push(c);
            }
        }
        pairs.push((name.trim().to_owned(), unescaped));
    }
    Some(pairs)
}

enum San {
    Dns(String),
    Uri(String),
    Email(String),
    Ip(std::net::IpAddr),
}

fn sans(cert: &X509Certificate<'_>) -> Vec<San> {
    let Ok(Some(extension)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    extension
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(d) => Some(San::Dns((*d).to_owned())),
            GeneralName::URI(u) => Some(San::Uri((*u).to_owned())),
            GeneralName::RFC822Name(e) => Some(San::Email((*e).to_owned())),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(|b| San::Ip(std::net::IpAddr::from(b))),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(|b| San::Ip(std::net::IpAddr::from(b))),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn san_matches(san: &San, registered: &CertificateName<'_>) -> bool {
    match (san, registered) {
        (San::Dns(d), CertificateName::SanDns(r)) => d.eq_ignore_ascii_case(r),
        (San::Uri(u), CertificateName::SanUri(r)) => u == r,
        (San::Email(e), CertificateName::SanEmail(r)) => e == r,
        (San::Ip(ip), CertificateName::SanIp(r)) => r.parse::<std::net::IpAddr>().is_ok_and(|r| *ip == r),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4514_text_is_read_with_its_escapes() {
        assert_eq!(
            parse_rfc4514("CN=Cabinet Martin\\, Lyon,O=Santé,C=FR").unwrap(),
            vec![
                ("CN".to_owned(), "Cabinet Martin, Lyon".to_owned()),
                ("O".to_owned(), "Santé".to_owned()),
                ("C".to_owned(), "FR".to_owned())
            ]
        );
        assert!(parse_rfc4514("CN").is_none());
        let subject = vec![("CN".to_owned(), "rp".to_owned()), ("O".to_owned(), "Hôpital".to_owned())];
        assert!(same_dn(&subject, "cn=rp,O=Hôpital"));
        assert!(!same_dn(&subject, "CN=rp"));
        assert!(!same_dn(&subject, "O=Hôpital,CN=rp"));
    }
}
