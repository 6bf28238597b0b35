//! A PKCS#11 module: the CPS4 vendor middleware (ANS ships Cryptolib CPS), OpenSC's module, or
//! SoftHSM2 in tests. The key is the private key that can sign and whose certificate allows
//! client authentication (or the key with the configured label); the signature is
//! `CKM_SHA256_RSA_PKCS` over the challenge's bytes, or, when the module refuses that
//! mechanism, `CKM_RSA_PKCS` over the SHA-256 DigestInfo (the same signature).

use std::path::PathBuf;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::{CardBackend, ReaderInfo, Signed, check_pin};
use crate::challenge::Challenge;
use crate::error::AgentError;

/// The PKCS#11 backend.
#[derive(Debug, Clone)]
pub struct Pkcs11Backend {
    pub module: PathBuf,
    /// The label of the key to use, when the certificates do not tell.
    pub key_label: Option<String>,
}

fn ck_error(e: CkError) -> AgentError {
    match e {
        CkError::Pkcs11(RvError::PinIncorrect, _) => AgentError::WrongPin { tries_left: None },
        CkError::Pkcs11(RvError::PinLocked, _) => AgentError::CardBlocked,
        CkError::Pkcs11(RvError::TokenNotPresent | RvError::DeviceRemoved, _) => AgentError::CardRemoved,
        CkError::Pkcs11(RvError::PinLenRange | RvError::PinInvalid, _) => {
            AgentError::InvalidRequest("the token refused the PIN's format".into())
        }
        CkError::Pkcs11(RvError::SlotIdInvalid, _) => AgentError::NoReader(e.to_string()),
        other => AgentError::Card(format!("PKCS#11: {other}")),
    }
}

/// `OID 1.3.6.1.5.5.7.3.2`: TLS client authentication.
fn allows_client_auth(der: &[u8]) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return false };
    match cert.extended_key_usage() {
        Ok(Some(eku)) => eku.value.client_auth || eku.value.any,
        Ok(None) => true,
        Err(_) => false,
    }
}

fn is_ca(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .and_then(|(_, c)| c.basic_constraints().ok().flatten().map(|b| b.value.ca))
        .unwrap_or(false)
}

fn attribute_bytes(session: &Session, object: ObjectHandle, ty: AttributeType) -> Option<Vec<u8>> {
    session.get_attributes(object, &[ty]).ok()?.into_iter().find_map(|a| match a {
        Attribute::Id(v) | Attribute::Value(v) => Some(v),
        Attribute::Label(v) => Some(v),
        _ => None,
    })
}

impl Pkcs11Backend {
    fn open(&self) -> Result<Pkcs11, AgentError> {
        let pkcs11 = Pkcs11::new(&self.module).map_err(|e| {
            AgentError::NoReader(format!("cannot load the PKCS#11 module {}: {e}", self.module.display()))
        })?;
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(pkcs11),
            Err(e) => Err(ck_error(e)),
        }
    }

    fn slot_name(pkcs11: &Pkcs11, slot: Slot) -> String {
        match pkcs11.get_token_info(slot) {
            Ok(t) => t.label().trim().to_owned(),
            Err(_) => pkcs11.get_slot_info(slot).map(|s| s.slot_description().trim().to_owned()).unwrap_or_default(),
        }
    }

    fn choose_slot(pkcs11: &Pkcs11, wanted: Option<&str>) -> Result<Slot, AgentError> {
        let all = pkcs11.get_all_slots().map_err(ck_error)?;
        if all.is_empty() {
            return Err(AgentError::NoReader("the PKCS#11 module shows no slot".into()));
        }
        let with_token = pkcs11.get_slots_with_token().map_err(ck_error)?;
        let candidates: Vec<Slot> = match wanted {
            Some(w) => with_token
                .into_iter()
                .filter(|s| {
                    Self::slot_name(pkcs11, *s) == w
                        || pkcs11.get_slot_info(*s).is_ok_and(|i| i.slot_description().trim() == w)
                })
                .collect(),
            None => with_token,
        };
        candidates.first().copied().ok_or(AgentError::NoCard)
    }

    /// The private key to sign with and its certificate.
    fn find_key(&self, session: &Session) -> Result<(ObjectHandle, Vec<u8>), AgentError> {
        let keys = session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Sign(true)])
            .map_err(ck_error)?;
        let certificates = session
            .find_objects(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
            ])
            .map_err(ck_error)?;
        let cert_of = |id: &[u8]| {
            certificates.iter().find_map(|c| {
                (attribute_bytes(session, *c, AttributeType::Id).as_deref() == Some(id))
                    .then(|| attribute_bytes(session, *c, AttributeType::Value))
                    .flatten()
            })
        };
        for key in keys {
            let id = attribute_bytes(session, key, AttributeType::Id).unwrap_or_default();
            let Some(cert) = cert_of(&id) else { continue };
            let chosen = match &self.key_label {
                Some(label) => {
                    attribute_bytes(session, key, AttributeType::Label).is_some_and(|l| l == label.as_bytes())
                }
                None => allows_client_auth(&cert) && !is_ca(&cert),
            };
            if chosen {
                return Ok((key, cert));
            }
        }
        Err(AgentError::Card("no authentication key with a client-authentication certificate".into()))
    }

    fn ca_certificates(session: &Session) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for der in Self::all_ca_certificates(session) {
            if !out.contains(&der) {
                out.push(der);
            }
        }
        out
    }

    fn all_ca_certificates(session: &Session) -> Vec<Vec<u8>> {
        session
            .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| attribute_bytes(session, c, AttributeType::Value))
            .filter(|der| is_ca(der))
            .collect()
    }
}

impl CardBackend for Pkcs11Backend {
    fn readers(&self) -> Result<Vec<ReaderInfo>, AgentError> {
        let pkcs11 = self.open()?;
        let slots = pkcs11.get_all_slots().map_err(ck_error)?;
        Ok(slots
            .into_iter()
            .map(|s| {
                let present = pkcs11.get_slot_info(s).is_ok_and(|i| i.token_present());
                let name = if present {
                    Self::slot_name(&pkcs11, s)
                } else {
                    pkcs11.get_slot_info(s).map(|i| i.slot_description().trim().to_owned()).unwrap_or_default()
                };
                ReaderInfo { name, card_present: present }
            })
            .collect())
    }

    fn sign(&self, challenge: &Challenge, pin: &Zeroizing<String>, reader: Option<&str>) -> Result<Signed, AgentError> {
        check_pin(pin)?;
        let pkcs11 = self.open()?;
        let slot = Self::choose_slot(&pkcs11, reader)?;
        let token = pkcs11.get_token_info(slot).map_err(ck_error)?;
        if token.user_pin_locked() {
            return Err(AgentError::CardBlocked);
        }
        let session = pkcs11.open_ro_session(slot).map_err(ck_error)?;
        let auth_pin = AuthPin::from(pin.as_str().to_owned());
        if let Err(e) = session.login(UserType::User, Some(&auth_pin)) {
            let mapped = ck_error(e);
            // What the token says of the tries left, when it says.
            if let AgentError::WrongPin { .. } = mapped {
                let info = pkcs11.get_token_info(slot).ok();
                return Err(match info {
                    Some(i) if i.user_pin_locked() => AgentError::CardBlocked,
                    Some(i) if i.user_pin_final_try() => AgentError::WrongPin { tries_left: Some(1) },
                    _ => mapped,
                });
            }
            return Err(mapped);
        }
        let result = (|| {
            let (key, cert) = self.find_key(&session)?;
            let signature = match session.sign(&Mechanism::Sha256RsaPkcs, key, challenge.as_bytes()) {
                Ok(s) => s,
                // The same signature by another way: PKCS#1 v1.5 over the DigestInfo of
                // SHA-256. OpenSC's IAS-ECC driver built with OpenSSL 3 cannot hash on the
                // card (CKM_SHA256_RSA_PKCS) but signs a DigestInfo (CKM_RSA_PKCS, with
                // INTERNAL AUTHENTICATE).
                Err(CkError::Pkcs11(rv, _))
                    if !matches!(
                        rv,
                        RvError::DeviceRemoved
                            | RvError::TokenNotPresent
                            | RvError::UserNotLoggedIn
                            | RvError::PinExpired
                    ) =>
                {
                    tracing::debug!(error = %rv, "CKM_SHA256_RSA_PKCS refused; CKM_RSA_PKCS over the DigestInfo");
                    session.sign(&Mechanism::RsaPkcs, key, &challenge.digest_info()).map_err(ck_error)?
                }
                Err(e) => return Err(ck_error(e)),
            };
            let mut certificates = vec![cert];
            certificates.extend(Self::ca_certificates(&session));
            Ok(Signed { certificates, signature })
        })();
        let _ = session.logout();
        result
    }
}
