//! Whether a card's certificate is one this provider trusts, and whose it is.
//!
//! Path validation (signatures up the chain, validity dates, basic constraints, path length,
//! unknown critical extensions, the client-authentication usage, revocation from the CRLs of
//! [`super::crl`]) is rustls-webpki's, the same code that checks TLS client certificates; this
//! module adds what a health PKI asks beyond it: the `digitalSignature` key usage, the
//! certificate policies the operator requires, and the mapping from the certificate's subject
//! to the professional's national identifier.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExpirationPolicy, KeyUsage, RevocationCheckDepth, RevocationOptionsBuilder};
use x509_parser::prelude::{FromDer as _, ParsedExtension, X509Certificate};

use super::crl::CrlSet;

/// The most certificates a card's answer may carry (its own and its issuers').
pub const MAX_CHAIN: usize = 4;
/// The largest certificate accepted (a CPS3's are under 2 KB).
pub const MAX_CERTIFICATE_BYTES: usize = 8 * 1024;

/// The signatures a card's certificate chain, and a card's answer, may use.
static CHAIN_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA384,
    webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA512,
    webpki::aws_lc_rs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::aws_lc_rs::ECDSA_P256_SHA256,
    webpki::aws_lc_rs::ECDSA_P384_SHA384,
];

/// Which attribute of the certificate's subject holds the national identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierAttribute {
    /// `CN` (IGC-Santé's card certificates: `CN=<identifiant national>+SN=…+GN=…`).
    #[default]
    CommonName,
    /// `serialNumber` (2.5.4.5).
    SerialNumber,
    /// `UID` (0.9.2342.19200300.100.1.1).
    Uid,
}

/// How a certificate names its professional: the attribute, and a prefix to remove from it
/// (for a PKI that writes, say, `RPPS:` before the number).
#[derive(Debug, Clone, Default)]
pub struct IdentifierRule {
    pub attribute: IdentifierAttribute,
    pub strip_prefix: Option<String>,
}

/// How far revocation is checked, and what a stale list does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationPolicy {
    /// Every certificate of the path (the intermediate CA too), or the card's alone.
    pub whole_chain: bool,
    /// Accept a list past its `nextUpdate` (the operator's choice; off by default: fail closed).
    pub allow_stale: bool,
}

impl Default for RevocationPolicy {
    fn default() -> Self {
        RevocationPolicy { whole_chain: true, allow_stale: false }
    }
}

/// What the operator trusts.
pub struct CardTrust {
    anchors: Vec<TrustAnchor<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    /// DER contents of the policy OIDs of which the card's certificate must carry one (none:
    /// any). Compared as bytes: no textual form to disagree on.
    policies: Vec<Vec<u8>>,
    identifier: IdentifierRule,
    revocation: RevocationPolicy,
    crls: Arc<CrlSet>,
}

/// A certificate the provider trusts, and the professional it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCard {
    pub national_id: String,
    /// The certificate's serial number, hex: which card signed in (for the audit and the
    /// professional's own view).
    pub serial: String,
    pub issuer: String,
}

/// Why a card was refused. Each says something the person can act on (a card to renew, an
/// unknown issuer to report), so the page names it; none tells anything about anyone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardRejection {
    #[error("the card's answer is not a certificate chain and a signature")]
    Malformed,
    #[error("the signature does not verify with the card's certificate")]
    BadSignature,
    #[error("the certificate has expired")]
    Expired,
    #[error("the certificate is not valid yet")]
    NotYetValid,
    #[error("the certificate was not issued by a trusted authority")]
    Untrusted,
    #[error("the certificate is revoked")]
    Revoked,
    #[error("the certificate's revocation status is unknown")]
    RevocationUnknown,
    #[error("the revocation list is out of date")]
    RevocationStale,
    #[error("the certificate is not for authentication")]
    WrongUsage,
    #[error("the certificate's policy is not accepted")]
    Policy,
    #[error("the certificate names no professional")]
    NoIdentifier,
}

impl CardRejection {
    /// A stable code: for the audit, the login page's message, and the tests.
    pub fn code(self) -> &'static str {
        match self {
            CardRejection::Malformed => "card_malformed",
            CardRejection::BadSignature => "card_bad_signature",
            CardRejection::Expired => "card_expired",
            CardRejection::NotYetValid => "card_not_yet_valid",
            CardRejection::Untrusted => "card_untrusted",
            CardRejection::Revoked => "card_revoked",
            CardRejection::RevocationUnknown => "card_revocation_unknown",
            CardRejection::RevocationStale => "card_revocation_stale",
            CardRejection::WrongUsage => "card_wrong_usage",
            CardRejection::Policy => "card_policy",
            CardRejection::NoIdentifier => "card_no_identifier",
        }
    }
}

/// The operator's anchors or intermediates cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("no trust anchor: a card login needs at least one root certificate")]
    NoAnchor,
    #[error("trust anchor {index}: {message}")]
    Anchor { index: usize, message: String },
    #[error("certificate policy {0:?} is not a dotted OID")]
    PolicyOid(String),
}

fn map_path_error(e: &webpki::Error) -> CardRejection {
    use webpki::Error as E;
    match e {
        E::CertExpired { .. } => CardRejection::Expired,
        E::CertNotValidYet { .. } => CardRejection::NotYetValid,
        E::CertRevoked => CardRejection::Revoked,
        E::UnknownRevocationStatus => CardRejection::RevocationUnknown,
        E::CrlExpired { .. } => CardRejection::RevocationStale,
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => CardRejection::WrongUsage,
        E::CaUsedAsEndEntity => CardRejection::WrongUsage,
        E::BadDer | E::BadDerTime | E::TrailingData(_) | E::MalformedExtensions => CardRejection::Malformed,
        // Unknown issuer, a bad signature on the chain, path length, unknown critical
        // extension: no trusted path.
        _ => CardRejection::Untrusted,
    }
}

impl CardTrust {
    pub fn new(
        anchors: &[CertificateDer<'static>],
        intermediates: Vec<CertificateDer<'static>>,
        policies: Vec<String>,
        identifier: IdentifierRule,
        revocation: RevocationPolicy,
        crls: Arc<CrlSet>,
    ) -> Result<Self, TrustError> {
        if anchors.is_empty() {
            return Err(TrustError::NoAnchor);
        }
        let anchors = anchors
            .iter()
            .enumerate()
            .map(|(index, der)| {
                webpki::anchor_from_trusted_cert(der)
                    .map(|a| a.to_owned())
                    .map_err(|e| TrustError::Anchor { index, message: e.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let policies = policies
            .iter()
            .map(|p| oid_contents(p).ok_or_else(|| TrustError::PolicyOid(p.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CardTrust { anchors, intermediates, policies, identifier, revocation, crls })
    }

    pub fn crls(&self) -> &Arc<CrlSet> {
        &self.crls
    }

    /// Checks `chain` (the card's certificate first, then whatever issuers the card carries)
    /// at `now`, and that `signature` is the card's over `message` (RSA PKCS#1 v1.5 with
    /// SHA-256, as an IAS-ECC card's INTERNAL AUTHENTICATE gives it, or ECDSA P-256).
    pub fn verify_signed(
        &self,
        chain: &[Vec<u8>],
        message: &[u8],
        signature: &[u8],
        now: i64,
    ) -> Result<VerifiedCard, CardRejection> {
        if chain.is_empty() || chain.len() > MAX_CHAIN || chain.iter().any(|c| c.len() > MAX_CERTIFICATE_BYTES) {
            return Err(CardRejection::Malformed);
        }
        let leaf = &chain[0];
        let leaf_der = CertificateDer::from(leaf.as_slice());
        let end_entity = EndEntityCert::try_from(&leaf_der).map_err(|_| CardRejection::Malformed)?;
        // Possession first: a chain is only worth checking for the card that holds its key.
        let proven = [webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256, webpki::aws_lc_rs::ECDSA_P256_SHA256]
            .iter()
            .any(|alg| end_entity.verify_signature(*alg, message, signature).is_ok());
        if !proven {
            return Err(CardRejection::BadSignature);
        }
        self.verify_chain(chain, now)
    }

    /// Checks a certificate chain whose key the caller has already seen used (a TLS client
    /// certificate: the handshake proved it).
    pub fn verify_chain(&self, chain: &[Vec<u8>], now: i64) -> Result<VerifiedCard, CardRejection> {
        if chain.is_empty() || chain.len() > MAX_CHAIN || chain.iter().any(|c| c.len() > MAX_CERTIFICATE_BYTES) {
            return Err(CardRejection::Malformed);
        }
        let leaf_der = CertificateDer::from(chain[0].as_slice());
        let end_entity = EndEntityCert::try_from(&leaf_der).map_err(|_| CardRejection::Malformed)?;
        let mut intermediates: Vec<CertificateDer<'_>> =
            chain[1..].iter().map(|c| CertificateDer::from(c.as_slice())).collect();
        intermediates.extend(self.intermediates.iter().cloned());
        let lists = self.crls.current();
        let refs: Vec<&webpki::CertRevocationList<'_>> = lists.iter().map(|l| l.as_ref()).collect();
        let revocation = RevocationOptionsBuilder::new(&refs)
            .map_err(|_| CardRejection::RevocationUnknown)?
            .with_depth(if self.revocation.whole_chain {
                RevocationCheckDepth::Chain
            } else {
                RevocationCheckDepth::EndEntity
            })
            .with_status_policy(webpki::UnknownStatusPolicy::Deny)
            .with_expiration_policy(if self.revocation.allow_stale {
                ExpirationPolicy::Ignore
            } else {
                ExpirationPolicy::Enforce
            })
            .build();
        let time = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
        end_entity
            .verify_for_usage(
                CHAIN_ALGORITHMS,
                &self.anchors,
                &intermediates,
                time,
                // Up the path: a CA that restricts its usages must allow client authentication.
                // The card's own certificate must name it ([`CardTrust::beyond_path`]).
                KeyUsage::client_auth(),
                Some(revocation),
                None,
            )
            .map_err(|e| map_path_error(&e))?;
        self.beyond_path(&chain[0])
    }

    /// What webpki leaves to the relying party: the usages, the policies, whose it is.
    fn beyond_path(&self, leaf: &[u8]) -> Result<VerifiedCard, CardRejection> {
        let (_, cert) = X509Certificate::from_der(leaf).map_err(|_| CardRejection::Malformed)?;
        // A card's authentication certificate names client authentication; one that names no
        // usage at all (any usage, to RFC 5280) is not one.
        match cert.extended_key_usage() {
            Ok(Some(eku)) if eku.value.client_auth => {}
            _ => return Err(CardRejection::WrongUsage),
        }
        // RFC 5280 4.2.1.3: when the key usage is stated, a key that signs for authentication
        // must be allowed to.
        if let Ok(Some(ku)) = cert.key_usage()
            && !ku.value.digital_signature()
        {
            return Err(CardRejection::WrongUsage);
        }
        if !self.policies.is_empty() {
            let held: Vec<&[u8]> = cert
                .extensions()
                .iter()
                .filter_map(|e| match e.parsed_extension() {
                    ParsedExtension::CertificatePolicies(p) => Some(p),
                    _ => None,
                })
                .flatten()
                .map(|p| p.policy_id.as_bytes())
                .collect();
            if !self.policies.iter().any(|required| held.contains(&required.as_slice())) {
                return Err(CardRejection::Policy);
            }
        }
        let national_id = self.identifier_of(&cert).ok_or(CardRejection::NoIdentifier)?;
        Ok(VerifiedCard {
            national_id,
            serial: cert.raw_serial_as_string().replace(':', ""),
            issuer: cert.issuer().to_string(),
        })
    }

    fn identifier_of(&self, cert: &X509Certificate<'_>) -> Option<String> {
        let subject = cert.subject();
        let value = match self.identifier.attribute {
            IdentifierAttribute::CommonName => subject.iter_common_name().next(),
            IdentifierAttribute::SerialNumber => {
                subject.iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER).next()
            }
            IdentifierAttribute::Uid => subject.iter_by_oid(&x509_parser::oid_registry::OID_USERID).next(),
        }?
        .as_str()
        .ok()?
        .trim();
        let value = match &self.identifier.strip_prefix {
            Some(prefix) => value.strip_prefix(prefix.as_str())?,
            None => value,
        };
        // The directory's national identifiers: what the password form accepts, no more.
        let ok = (1..=64).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'));
        ok.then(|| value.to_owned())
    }
}

/// The DER contents (X.690 8.19) of a dotted OID such as `1.2.250.1.71`, if it is one.
fn oid_contents(dotted: &str) -> Option<Vec<u8>> {
    let arcs: Vec<u64> = dotted.split('.').map(|a| a.parse::<u64>().ok()).collect::<Option<_>>()?;
    let (&first, &second) = (arcs.first()?, arcs.get(1)?);
    if first > 2 || (first < 2 && second >= 40) {
        return None;
    }
    let mut out = Vec::new();
    let mut push = |mut v: u64| {
        let mut chunk = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            chunk.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        out.extend(chunk.iter().rev());
    };
    push(first.checked_mul(40)?.checked_add(second)?);
    arcs[2..].iter().for_each(|a| push(*a));
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dotted_oids_become_their_der_contents() {
        assert_eq!(super::oid_contents("1.3.6.1.5.5.7.3.2").unwrap(), [0x2b, 6, 1, 5, 5, 7, 3, 2]);
        assert_eq!(super::oid_contents("2.999.1.71.1").unwrap(), [0x88, 0x37, 1, 0x47, 1]);
        assert_eq!(super::oid_contents("1.2.250.1.71").unwrap(), [0x2a, 0x81, 0x7a, 1, 0x47]);
        for bad in ["", "1", "3.1", "1.40", "1.2.x", "1..2"] {
            assert!(super::oid_contents(bad).is_none(), "{bad}");
        }
    }
}
