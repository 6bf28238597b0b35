//! Test identities: an RSA-2048 key pair and its certificate (client authentication, issued by
//! a test CA), as a CPS carries, generated at run time.

use aws_lc_rs::encoding::AsDer;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Why an identity could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("key generation failed")]
    KeyGen,
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
}

/// An authentication key (PKCS#8 DER), its certificate and the CA's certificate (DER).
#[derive(Clone)]
pub struct TestIdentity {
    pub key_pkcs8: Vec<u8>,
    pub cert_der: Vec<u8>,
    pub ca_cert_der: Vec<u8>,
}

impl std::fmt::Debug for TestIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIdentity").finish_non_exhaustive()
    }
}

/// A fresh RSA-2048 private key, PKCS#8 DER.
pub fn rsa_2048_pkcs8() -> Result<Vec<u8>, IdentityError> {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| IdentityError::KeyGen)?;
    let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> = key.as_der().map_err(|_| IdentityError::KeyGen)?;
    Ok(der.as_ref().to_vec())
}

impl TestIdentity {
    /// A professional's identity: `common_name` (e.g. "899700218896 Jean Dupont"), an RSA-2048
    /// key with a client-authentication certificate, issued by a fresh test CA.
    pub fn generate(common_name: &str) -> Result<TestIdentity, IdentityError> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS");
        dn.push(DnType::OrganizationName, "Caducee tests");
        ca.distinguished_name = dn;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key)?;

        let key_pkcs8 = rsa_2048_pkcs8()?;
        let key = KeyPair::try_from(key_pkcs8.as_slice())?;
        let mut leaf = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::CountryName, "FR");
        leaf.distinguished_name = dn;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let issuer = Issuer::new(ca, ca_key);
        let cert = leaf.signed_by(&key, &issuer)?;
        Ok(TestIdentity { key_pkcs8, cert_der: cert.der().to_vec(), ca_cert_der: ca_cert.der().to_vec() })
    }

    /// The card profile of this identity: authentication key and certificate, the CA
    /// certificate, the given PIN.
    pub fn profile(&self, pin: &str) -> Result<crate::CardProfile, crate::ProfileError> {
        Ok(crate::CardProfile::new(self.key_pkcs8.clone(), self.cert_der.clone(), pin)?
            .with_ca_cert(self.ca_cert_der.clone()))
    }
}
