//! A health PKI for the tests, shaped like IGC-Santé's test hierarchy: a root («TEST AC RACINE
//! IGC-SANTE FORT»), an intermediate for people's cards («TEST AC IGC-SANTE FORT PERSONNES»),
//! and card certificates (RSA-2048, `CN=<national id>`, `SN`, `GN`, `title`, `C=FR`, client
//! authentication, a test-only policy under the documentation arc `2.999`), with a rogue
//! hierarchy of the same names nobody trusts, and CRLs in DER. Made fresh by each test with
//! `rcgen`; nothing here is a real certificate.
#![allow(
    clippy::expect_used,
    reason = "a test fixture: a PKI rcgen cannot make is a broken test, not an error to handle"
)]

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, CustomExtension,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_RSA_SHA256,
    RevocationReason, RevokedCertParams, SerialNumber, SigningKey as _,
};
use time::{Duration, OffsetDateTime};

/// The test-only certificate policy the card certificates carry (2.999: ITU-T's example arc).
pub const TEST_POLICY_OID: &str = "2.999.1.71.1";
/// Its DER: CertificatePolicies ::= SEQUENCE { PolicyInformation ::= SEQUENCE { OID } }.
const TEST_POLICY_DER: [u8; 11] = [0x30, 0x09, 0x30, 0x07, 0x06, 0x05, 0x88, 0x37, 0x01, 0x47, 0x01];

/// How a card certificate departs from a good one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CardFlaw {
    #[default]
    None,
    /// Its validity ended yesterday.
    Expired,
    /// Issued by the rogue hierarchy (same names, other keys).
    UntrustedRoot,
    /// Extended key usage e-mail protection only: not for authentication.
    NoClientAuth,
    /// No certificate policy.
    NoPolicy,
}

/// A card's certificate and key, as a CPS card holds them.
pub struct CardHolder {
    pub national_id: String,
    pub certificate_der: Vec<u8>,
    /// PKCS#8 DER of the RSA-2048 authentication key.
    pub key_pkcs8_der: Vec<u8>,
    pub serial: Vec<u8>,
    key: KeyPair,
}

impl CardHolder {
    /// Signs `message` as the card's INTERNAL AUTHENTICATE does over SHA-256's DigestInfo:
    /// RSA PKCS#1 v1.5 with SHA-256.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).expect("RSA signature")
    }

    pub fn certificate_pem(&self) -> String {
        pem("CERTIFICATE", &self.certificate_der)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

struct Hierarchy {
    root: CertifiedIssuer<'static, KeyPair>,
    people: CertifiedIssuer<'static, KeyPair>,
    people_serial: Vec<u8>,
}

fn ca_params(name: &str, path_len: Option<u8>, serial: u64) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CountryName, "FR");
    params.distinguished_name.push(DnType::OrganizationName, "ASIP-SANTE");
    params.distinguished_name.push(DnType::OrganizationalUnitName, "IGC-SANTE TEST");
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.serial_number = Some(SerialNumber::from(serial));
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(365);
    params.not_after = now + Duration::days(3650);
    params.use_authority_key_identifier_extension = true;
    params
}

fn rsa_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_RSA_SHA256).expect("RSA-2048 key")
}

impl Hierarchy {
    fn new(serial_base: u64) -> Hierarchy {
        let root =
            CertifiedIssuer::self_signed(ca_params("TEST AC RACINE IGC-SANTE FORT", None, serial_base), rsa_key())
                .expect("root");
        let people_params = ca_params("TEST AC IGC-SANTE FORT PERSONNES", Some(0), serial_base + 1);
        let people_serial = SerialNumber::from(serial_base + 1).to_bytes();
        let people = CertifiedIssuer::signed_by(people_params, rsa_key(), &root).expect("intermediate");
        Hierarchy { root, people, people_serial }
    }
}

/// The test PKI: a trusted hierarchy and a rogue one.
pub struct TestPki {
    trusted: Hierarchy,
    rogue: Hierarchy,
    next_serial: std::sync::atomic::AtomicU64,
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}

impl TestPki {
    pub fn new() -> TestPki {
        TestPki {
            trusted: Hierarchy::new(0x1000),
            rogue: Hierarchy::new(0x2000),
            next_serial: std::sync::atomic::AtomicU64::new(0x0C_0000_0001),
        }
    }

    /// The root's certificate (PEM): the operator's trust anchor.
    pub fn root_pem(&self) -> String {
        self.trusted.root.pem()
    }

    /// The intermediate's certificate (PEM), for the operator's `intermediates`.
    pub fn intermediate_pem(&self) -> String {
        self.trusted.people.pem()
    }

    pub fn intermediate_der(&self) -> Vec<u8> {
        self.trusted.people.der().to_vec()
    }

    /// A card certificate for `national_id`, a `title` (profession) and names.
    pub fn issue(&self, national_id: &str, family: &str, given: &str, title: &str, flaw: CardFlaw) -> CardHolder {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CountryName, "FR");
        params.distinguished_name.push(DnType::CustomDnType(vec![2, 5, 4, 12]), title);
        params.distinguished_name.push(DnType::CustomDnType(vec![2, 5, 4, 4]), family);
        params.distinguished_name.push(DnType::CustomDnType(vec![2, 5, 4, 42]), given);
        params.distinguished_name.push(DnType::CommonName, national_id);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match flaw {
            CardFlaw::NoClientAuth => vec![ExtendedKeyUsagePurpose::EmailProtection],
            _ => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        if flaw != CardFlaw::NoPolicy {
            params.custom_extensions.push(CustomExtension::from_oid_content(&[2, 5, 29, 32], TEST_POLICY_DER.to_vec()));
        }
        let serial = self.next_serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        params.serial_number = Some(SerialNumber::from(serial));
        let now = OffsetDateTime::now_utc();
        if flaw == CardFlaw::Expired {
            params.not_before = now - Duration::days(3 * 365);
            params.not_after = now - Duration::days(1);
        } else {
            params.not_before = now - Duration::days(30);
            params.not_after = now + Duration::days(3 * 365);
        }
        params.use_authority_key_identifier_extension = true;
        let issuer = if flaw == CardFlaw::UntrustedRoot { &self.rogue.people } else { &self.trusted.people };
        let key = rsa_key();
        let cert = params.signed_by(&key, issuer).expect("card certificate");
        CardHolder {
            national_id: national_id.to_owned(),
            certificate_der: cert.der().to_vec(),
            key_pkcs8_der: key.serialize_der(),
            serial: SerialNumber::from(serial).to_bytes(),
            key,
        }
    }

    /// The intermediate's CRL (DER), revoking `revoked`, issued `issued_ago` ago and valid
    /// until `next_update_in` from now (negative: already stale).
    pub fn people_crl(
        &self,
        revoked: &[&CardHolder],
        issued_ago: Duration,
        next_update_in: Duration,
        number: u64,
    ) -> Vec<u8> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - issued_ago,
            next_update: now + next_update_in,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|c| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&c.serial),
                    revocation_time: now - Duration::hours(1),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.trusted.people).expect("CRL").der().to_vec()
    }

    /// The root's CRL (DER), revoking nothing (or the intermediate, when `revoke_people`).
    pub fn root_crl(&self, revoke_people: bool) -> Vec<u8> {
        let now = OffsetDateTime::now_utc();
        let revoked_certs = if revoke_people {
            vec![RevokedCertParams {
                serial_number: SerialNumber::from_slice(&self.trusted.people_serial),
                revocation_time: now - Duration::hours(1),
                reason_code: Some(RevocationReason::CaCompromise),
                invalidity_date: None,
            }]
        } else {
            Vec::new()
        };
        let params = CertificateRevocationListParams {
            this_update: now - Duration::hours(1),
            next_update: now + Duration::days(7),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.trusted.root).expect("CRL").der().to_vec()
    }

    /// The rogue hierarchy's root (PEM), for a test that trusts it on purpose.
    pub fn rogue_root_pem(&self) -> String {
        self.rogue.root.pem()
    }
}
