//! Enrolment of a passkey or security key, from the wallet: the ceremony's options under the
//! operator's policy (attestation, resident key, user verification), then the browser's answer
//! checked, held against the AAGUID allow-list, kept under the name its owner gave it, audited,
//! and told to the professional by mail.

use directory::NewAuthenticator;
use serde::{Deserialize, Serialize};
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AttestationMetadata, Credential, ParsedAttestationData,
    RegisterPublicKeyCredential, RegistrationState, ResidentKeyRequirement, UserVerificationPolicy,
};
use zeroize::Zeroizing;

use super::{Actor, Attestation, KIND, NAME_MAX, Passkeys, ResidentKey, credential_of, internal, random_id, serial_of};
use crate::enrolment::AuthenticatorView;
use crate::mailer::OutgoingMail;
use crate::method::AuthError;

/// Why an enrolment was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error("the enrolment expired or was already used")]
    Expired,
    #[error("the browser's answer is not a WebAuthn registration")]
    Malformed,
    #[error("the authenticator's answer was refused: {0}")]
    Refused(WebauthnError),
    #[error("this authenticator is not on the operator's allow-list")]
    NotAllowed,
    #[error("this authenticator is already enrolled")]
    AlreadyEnrolled,
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// An enrolment under way: its id (posted back with the answer) and the options the page hands
/// to `navigator.credentials.create` (JSON, binary fields in base64url).
#[derive(Debug, Clone)]
pub struct EnrolmentStart {
    pub ceremony: String,
    pub options: String,
}

#[derive(Serialize, Deserialize)]
struct RegistrationCeremony {
    subject: String,
    state: RegistrationState,
}

impl Passkeys {
    /// Opens an enrolment for `subject` (the caller checked the sign-in is recent and strong).
    pub async fn start_enrolment(
        &self,
        subject: &str,
        user_name: &str,
        display_name: &str,
    ) -> Result<EnrolmentStart, AuthError> {
        let exclude: Vec<_> =
            self.records(subject).await?.iter().filter_map(credential_of).map(|c| c.cred_id).collect();
        let attestation = match self.settings.attestation {
            Attestation::None => AttestationConveyancePreference::None,
            Attestation::Indirect => AttestationConveyancePreference::Indirect,
            Attestation::Direct => AttestationConveyancePreference::Direct,
        };
        let handle = self.user_handle(subject);
        let builder = self
            .core
            .new_challenge_register_builder(&handle, user_name, display_name)
            .map_err(internal)?
            .attestation(attestation)
            .user_verification_policy(UserVerificationPolicy::Required)
            .require_resident_key(self.settings.resident_key == ResidentKey::Required)
            .exclude_credentials(Some(exclude));
        let (mut options, state) = self.core.generate_challenge_register(builder).map_err(internal)?;
        // The core asks for a resident key or discourages one; «preferred» is said here.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(match self.settings.resident_key {
                ResidentKey::Required => ResidentKeyRequirement::Required,
                ResidentKey::Preferred => ResidentKeyRequirement::Preferred,
                ResidentKey::Discouraged => ResidentKeyRequirement::Discouraged,
            });
        }
        let ceremony = random_id();
        self.put(&ceremony, &RegistrationCeremony { subject: subject.to_owned(), state }).await?;
        Ok(EnrolmentStart { ceremony, options: serde_json::to_string(&options.public_key).map_err(internal)? })
    }

    /// Finishes an enrolment with the browser's answer (`response`, the JSON of the credential):
    /// the credential is kept under `name`, audited, and the professional is told by mail.
    pub async fn finish_enrolment(
        &self,
        actor: &Actor<'_>,
        ceremony: &str,
        response: &str,
        name: &str,
    ) -> Result<AuthenticatorView, EnrolError> {
        let Some(c) = self.take::<RegistrationCeremony>(ceremony).await? else {
            return Err(EnrolError::Expired);
        };
        if c.subject != actor.subject {
            return Err(EnrolError::Expired);
        }
        let reg: RegisterPublicKeyCredential = serde_json::from_str(response).map_err(|_| EnrolError::Malformed)?;
        let credential = match self.core.register_credential(&reg, &c.state, None) {
            Ok(credential) => credential,
            Err(e) => {
                self.audit("webauthn_enrol_refused", actor, "refused", serde_json::json!({ "reason": e.to_string() }))
                    .await;
                return Err(EnrolError::Refused(e));
            }
        };
        let aaguid = attested_aaguid(&credential);
        if !self.settings.allowed_aaguids.is_empty()
            && !aaguid.is_some_and(|a| self.settings.allowed_aaguids.contains(&a))
        {
            let details = serde_json::json!({ "aaguid": aaguid.map(|a| a.to_string()) });
            self.audit("webauthn_enrol_refused", actor, "not_allowed", details).await;
            return Err(EnrolError::NotAllowed);
        }
        let serial = serial_of(&credential.cred_id);
        if self.directory.authenticators().get_by_serial(&serial).await.map_err(AuthError::from)?.is_some() {
            return Err(EnrolError::AlreadyEnrolled);
        }
        let label = clean_name(name);
        let secret = Zeroizing::new(serde_json::to_vec(&credential).map_err(internal)?);
        let params = serde_json::json!({
            "aaguid": aaguid.map(|a| a.to_string()),
            "backup_eligible": credential.backup_eligible,
            "attestation": format!("{:?}", credential.attestation_format),
        });
        let record = self
            .directory
            .authenticators()
            .create(NewAuthenticator {
                subject: Some(actor.subject.to_owned()),
                kind: KIND.to_owned(),
                label: label.clone(),
                serial: Some(serial),
                secret,
                params,
                active: true,
                counter: i64::from(credential.counter),
            })
            .await
            .map_err(|e| match e {
                directory::DirectoryError::Conflict(_) => EnrolError::AlreadyEnrolled,
                other => EnrolError::Auth(other.into()),
            })?;
        let details = serde_json::json!({ "authenticator": record.id, "name": label, "backup_eligible": credential.backup_eligible });
        self.audit("webauthn_enrolled", actor, "success", details).await;
        self.notify(actor, &label).await;
        Ok(AuthenticatorView::from(&record))
    }

    /// Mails the professional that a credential was added (a stolen session adding its own key
    /// is then seen by the owner).
    async fn notify(&self, actor: &Actor<'_>, name: &str) {
        let account = match self.directory.professionals().get_by_subject(actor.subject).await {
            Ok(Some(a)) => a,
            _ => return,
        };
        let Some(to) = account.email.filter(|a| a.contains('@')) else {
            return;
        };
        let when = crate::mail_otp::format_expiry(actor.now, "Europe/Paris");
        let product = &self.settings.product;
        let mail = OutgoingMail {
            to,
            subject: format!("[{product}] Nouvelle clé d'accès ajoutée à votre compte"),
            body: format!(
                "Bonjour,\n\n\
                 Une clé d'accès (passkey ou clé de sécurité) nommée « {name} » a été ajoutée à votre compte \
                 à {when}.\n\n\
                 Si vous n'êtes pas à l'origine de cet ajout, retirez-la depuis votre portefeuille \
                 et prévenez votre administrateur.\n\n\
                 --\n\
                 A passkey or security key named \"{name}\" was added to your account. If this was not you, \
                 remove it from your wallet and tell your administrator.\n\
                 {product} — merci de ne pas répondre à ce message.\n"
            ),
        };
        if let Err(e) = self.mailer.send(mail).await {
            tracing::error!(error = %e, "the passkey enrolment notice could not be mailed");
        }
    }
}

/// The AAGUID a certificate-signed statement vouches for (none for a self-signed or absent one:
/// an authenticator may then claim any).
fn attested_aaguid(credential: &Credential) -> Option<uuid::Uuid> {
    let certified =
        matches!(credential.attestation.data, ParsedAttestationData::Basic(_) | ParsedAttestationData::AttCa(_));
    match &credential.attestation.metadata {
        AttestationMetadata::Packed { aaguid } | AttestationMetadata::Tpm { aaguid, .. } if certified => Some(*aaguid),
        _ => None,
    }
}
/// A credential's name as kept: printable, trimmed, at most [`NAME_MAX`] characters.
pub fn clean_name(name: &str) -> String {
    let name: String = name.chars().filter(|c| !c.is_control()).take(NAME_MAX).collect();
    match name.trim() {
        "" => "Clé d'accès".to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("  Clé USB\u{7}  "), "Clé USB");
        assert_eq!(clean_name(""), "Clé d'accès");
        assert_eq!(clean_name(&"x".repeat(100)).chars().count(), NAME_MAX);
    }
}
