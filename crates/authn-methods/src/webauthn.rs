//! Passkeys and security keys (WebAuthn), through the kanidm project's `webauthn-rs-core`.
//!
//! Owns the relying party's side of both ceremonies (enrolment from the wallet, in `enrolment`;
//! sign-in from the login page, whose two methods are in [`login`]), the operator's policy (attestation, AAGUID
//! allow-list, resident keys, the level a verified passkey earns), the credentials as the
//! directory keeps them, and the audit of every sensitive event.
//!
//! A credential is an authenticator of kind [`KIND`]: the credential (public key, flags) sealed
//! in `secret`, its id in `serial` (unique: a discoverable sign-in finds it there), its signature
//! counter in `counter`, moved forward with one conditional update so that a counter going back
//! (a cloned authenticator, or a replay racing the original) is refused and audited.
//!
//! A ceremony's state lives in the session store under a random id for two minutes and is taken
//! once, atomically: a challenge answers one ceremony, on any node. The RP ID is the issuer's
//! host and the origins accepted are the issuer's (the wallet) and the login pages' when they
//! live on another host (`login_origin`): the RP ID is then the two hosts' common domain.

mod enrolment;
pub mod login;

pub use enrolment::{EnrolError, EnrolmentStart, clean_name};

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use directory::{AccountStatus, AuditEvent, AuthenticatorRecord, Directory, KeyedHash};
use serde::{Deserialize, Serialize};
use session_store::SessionStore;
use subtle::ConstantTimeEq as _;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{AuthenticationState, Credential, PublicKeyCredential, UserVerificationPolicy};

use crate::mailer::Mailer;
use crate::method::{AuthContext, AuthError, FactorKind, FactorResult};

/// The directory's kind of a WebAuthn credential.
pub const KIND: &str = "webauthn";
/// A credential's `serial`: this prefix, then its id in base64url.
const SERIAL_PREFIX: &str = "webauthn:";
/// How long a ceremony can be answered.
pub const CEREMONY_TTL: Duration = Duration::from_secs(120);
/// The longest name a professional gives a credential.
const NAME_MAX: usize = 64;

/// What the authenticator tells of where it comes from (WebAuthn's attestation conveyance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Attestation {
    /// Nothing asked: any authenticator, no maker's statement.
    #[default]
    None,
    /// A statement, possibly anonymised by the browser.
    Indirect,
    /// The maker's own statement (needed for an AAGUID allow-list to mean anything).
    Direct,
}

/// Whether the credential is kept on the authenticator (a passkey, found without an identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResidentKey {
    Required,
    #[default]
    Preferred,
    Discouraged,
}

/// The operator's policy (`[webauthn]` in the configuration).
#[derive(Debug, Clone)]
pub struct WebauthnSettings {
    pub attestation: Attestation,
    /// When not empty, only authenticators whose certified statement names one of these AAGUIDs
    /// are enrolled (requires `attestation = "direct"`).
    pub allowed_aaguids: Vec<uuid::Uuid>,
    pub resident_key: ResidentKey,
    /// The level (`acr`) a login completed by a credential verified by its owner reaches.
    pub acr: String,
    /// How long the browser waits for the authenticator.
    pub timeout: Duration,
    /// The relying party's name shown by the authenticator, and the mails' product name.
    pub product: String,
}

impl Default for WebauthnSettings {
    fn default() -> Self {
        WebauthnSettings {
            attestation: Attestation::None,
            allowed_aaguids: Vec::new(),
            resident_key: ResidentKey::Preferred,
            acr: "eidas2".into(),
            timeout: CEREMONY_TTL,
            product: "Caducée".into(),
        }
    }
}

/// The issuer cannot serve as a WebAuthn relying party.
#[derive(Debug, thiserror::Error)]
pub enum WebauthnSetupError {
    #[error("the issuer is not a URL: {0}")]
    Issuer(#[from] url::ParseError),
    #[error("{0} has no host name to serve as the WebAuthn RP ID")]
    NoHost(String),
    #[error("the issuer's host {0} and the login pages' host {1} share no domain to serve as the WebAuthn RP ID")]
    NoCommonDomain(String, String),
}

#[derive(Serialize, Deserialize)]
struct SignInCeremony {
    interaction: String,
    /// Set when the person was identified first (a security key after the password).
    subject: Option<String>,
    state: AuthenticationState,
}

/// The outcome of a sign-in ceremony.
#[derive(Debug)]
pub enum Verdict {
    Done(FactorResult),
    /// Refused: counts as a failed attempt.
    Bad,
    /// The ceremony is gone (two minutes passed, or its challenge was answered already).
    Expired,
}

/// Where a request comes from, for the audit.
#[derive(Debug, Clone)]
pub struct Actor<'a> {
    pub subject: &'a str,
    pub source_ip: Option<&'a str>,
    pub now: i64,
}

/// The WebAuthn relying party of this provider.
pub struct Passkeys {
    core: WebauthnCore,
    directory: Directory,
    store: Arc<dyn SessionStore>,
    mailer: Arc<dyn Mailer>,
    settings: WebauthnSettings,
    /// The user handle of a subject: a keyed hash, so that an authenticator carries nothing
    /// that names the professional (the subject holds the national identifier).
    user_handles: KeyedHash,
}

fn internal(e: impl std::fmt::Display) -> AuthError {
    AuthError::Internal(format!("webauthn: {e}"))
}

fn key(ceremony: &str) -> String {
    crate::store_keys::WEBAUTHN_CEREMONY.key(ceremony)
}

fn serial_of(credential_id: &[u8]) -> String {
    format!("{SERIAL_PREFIX}{}", URL_SAFE_NO_PAD.encode(credential_id))
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The credential a record holds, if it is a WebAuthn one and reads back.
fn credential_of(record: &AuthenticatorRecord) -> Option<Credential> {
    if record.kind != KIND {
        return None;
    }
    serde_json::from_slice(&record.secret).ok()
}

/// RFC 8176 values for a credential: `swk` when it may be copied to other devices (a synced
/// passkey, backup eligible), `hwk` when it stays in its authenticator; `user` (presence, always
/// tested) and `pin` (verified by its owner: PIN or biometrics, which WebAuthn does not tell apart).
fn amr(backup_eligible: bool, user_verified: bool) -> Vec<String> {
    let mut amr = vec![if backup_eligible { "swk" } else { "hwk" }.to_owned(), "user".to_owned()];
    if user_verified {
        amr.push("pin".to_owned());
    }
    amr
}

impl Passkeys {
    /// The relying party of `issuer` (the wallet's pages) and `login_origin` (the login pages',
    /// when they are not the issuer's): the RP ID is the issuer's host, or the domain both
    /// hosts share; only their origins are accepted.
    pub fn new(
        issuer: &str,
        login_origin: Option<&str>,
        directory: Directory,
        store: Arc<dyn SessionStore>,
        mailer: Arc<dyn Mailer>,
        settings: WebauthnSettings,
    ) -> Result<Self, WebauthnSetupError> {
        let url = url::Url::parse(issuer)?;
        let host = url.host_str().ok_or_else(|| WebauthnSetupError::NoHost(issuer.to_owned()))?;
        let mut origins = vec![url::Url::parse(&url.origin().ascii_serialization())?];
        let mut rp_id = host.to_owned();
        if let Some(login) = login_origin.filter(|o| !o.is_empty()) {
            let login = url::Url::parse(login)?;
            let login_host = login.host_str().ok_or_else(|| WebauthnSetupError::NoHost(login.to_string()))?;
            rp_id = common_domain(host, login_host)
                .ok_or_else(|| WebauthnSetupError::NoCommonDomain(host.to_owned(), login_host.to_owned()))?;
            let login = url::Url::parse(&login.origin().ascii_serialization())?;
            if !origins.contains(&login) {
                origins.push(login);
            }
        }
        // The core rather than the `webauthn-rs` façade: the façade fixes the attestation and
        // resident-key choices that are the operator's here; every check stays the library's.
        let core = WebauthnCore::new_unsafe_experts_only(
            &settings.product,
            &rp_id,
            origins,
            settings.timeout,
            Some(false),
            Some(false),
        );
        let user_handles = directory.keyed_hash("webauthn-user-handle");
        Ok(Passkeys { core, directory, store, mailer, settings, user_handles })
    }

    pub fn settings(&self) -> &WebauthnSettings {
        &self.settings
    }

    fn user_handle(&self, subject: &str) -> [u8; 32] {
        self.user_handles.tag(&[subject.as_bytes()])
    }

    /// The subject's active WebAuthn credentials.
    async fn records(&self, subject: &str) -> Result<Vec<AuthenticatorRecord>, AuthError> {
        let all = self.directory.authenticators().list_for_subject(subject).await?;
        Ok(all.into_iter().filter(|a| a.kind == KIND && a.active).collect())
    }

    /// Whether `subject` has a credential to sign in with.
    pub async fn has_credentials(&self, subject: &str) -> Result<bool, AuthError> {
        Ok(!self.records(subject).await?.is_empty())
    }

    async fn put<T: Serialize>(&self, ceremony: &str, value: &T) -> Result<(), AuthError> {
        let bytes = serde_json::to_vec(value).map_err(internal)?;
        Ok(self.store.put(&key(ceremony), &bytes, CEREMONY_TTL).await?)
    }

    /// Takes a ceremony's state, once.
    async fn take<T: for<'de> Deserialize<'de>>(&self, ceremony: &str) -> Result<Option<T>, AuthError> {
        // Ceremony ids are ours: 22 base64url characters; anything else is no key of ours.
        if ceremony.len() != 22 || !ceremony.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Ok(None);
        }
        Ok(self.store.take(&key(ceremony)).await?.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Opens a sign-in ceremony for login `interaction`: for anyone (a passkey found by the
    /// authenticator), or for `subject`'s credentials. `None`: `subject` has none.
    pub async fn start_sign_in(
        &self,
        interaction: &str,
        subject: Option<&str>,
    ) -> Result<Option<(String, String)>, AuthError> {
        let credentials = match subject {
            Some(s) => {
                let list: Vec<Credential> = self.records(s).await?.iter().filter_map(credential_of).collect();
                if list.is_empty() {
                    return Ok(None);
                }
                list
            }
            None => Vec::new(),
        };
        let builder = self
            .core
            .new_challenge_authenticate_builder(credentials, Some(UserVerificationPolicy::Required))
            .map_err(internal)?
            .allow_backup_eligible_upgrade(true);
        let (options, state) = self.core.generate_challenge_authenticate(builder).map_err(internal)?;
        let ceremony = random_id();
        let c = SignInCeremony { interaction: interaction.to_owned(), subject: subject.map(str::to_owned), state };
        self.put(&ceremony, &c).await?;
        Ok(Some((ceremony, serde_json::to_string(&options.public_key).map_err(internal)?)))
    }

    /// Finishes a sign-in ceremony with the browser's answer (the JSON of the assertion).
    pub async fn finish_sign_in(
        &self,
        cx: &AuthContext,
        ceremony: &str,
        response: &str,
        method: &str,
    ) -> Result<Verdict, AuthError> {
        let Some(c) = self.take::<SignInCeremony>(ceremony).await? else {
            return Ok(Verdict::Expired);
        };
        if c.interaction != cx.interaction {
            return Ok(Verdict::Bad);
        }
        let Ok(assertion) = serde_json::from_str::<PublicKeyCredential>(response) else {
            return Ok(Verdict::Bad);
        };
        let record = match self.directory.authenticators().get_by_serial(&serial_of(&assertion.raw_id)).await? {
            Some(r) if r.kind == KIND && r.active => r,
            _ => return Ok(Verdict::Bad),
        };
        let Some(owner) = record.subject.clone() else {
            return Ok(Verdict::Bad);
        };
        let claimed = match &c.subject {
            Some(expected) => expected == &owner,
            // No one was identified: the authenticator's user handle must be the owner's.
            None => {
                assertion.get_user_unique_id().is_some_and(|handle| bool::from(handle.ct_eq(&self.user_handle(&owner))))
            }
        };
        if !claimed {
            return Ok(Verdict::Bad);
        }
        let Some(mut credential) = credential_of(&record) else {
            return Ok(Verdict::Bad);
        };
        // The directory's counter is the one that moves (the sealed copy keeps the enrolment's).
        credential.counter = u32::try_from(record.counter).unwrap_or(u32::MAX);
        let actor = Actor { subject: &owner, source_ip: cx.source_ip.as_deref(), now: cx.now };
        let result = match self.core.authenticate_single_credential(&assertion, &c.state, &credential) {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                self.cloned(&actor, &record, cx).await;
                return Ok(Verdict::Bad);
            }
            Err(e) => {
                tracing::info!(error = %e, "a WebAuthn assertion was refused");
                return Ok(Verdict::Bad);
            }
        };
        if !result.user_verified() {
            return Ok(Verdict::Bad);
        }
        let counter = result.counter();
        if counter > 0 {
            // Of two answers with the same counter (a clone, or a replay racing), one moves it.
            if !self.directory.authenticators().advance_counter(&record.id, i64::from(counter), cx.now).await? {
                self.cloned(&actor, &record, cx).await;
                return Ok(Verdict::Bad);
            }
        } else {
            self.directory.authenticators().touch(&record.id, cx.now).await?;
        }
        let account = self.directory.professionals().get_by_subject(&owner).await?;
        if !account.is_some_and(|a| a.status == AccountStatus::Active) {
            return Ok(Verdict::Bad);
        }
        let details =
            serde_json::json!({ "interaction": cx.interaction, "authenticator": record.id, "method": method });
        self.audit("webauthn_used", &actor, "success", details).await;
        Ok(Verdict::Done(FactorResult {
            subject: owner,
            method: method.to_owned(),
            credential: Some(record.id),
            kind: FactorKind::Possession,
            // Verified by its owner (PIN or biometrics, on the authenticator).
            also: vec![FactorKind::Knowledge],
            phishing_resistant: true,
            amr: amr(result.backup_eligible(), result.user_verified()),
            at: cx.now,
            level: Some(self.settings.acr.clone()),
        }))
    }

    /// A signature counter that did not move forward: two copies of the key may exist.
    async fn cloned(&self, actor: &Actor<'_>, record: &AuthenticatorRecord, cx: &AuthContext) {
        tracing::warn!(authenticator = %record.id, "WebAuthn counter went back: possibly a cloned authenticator");
        let details = serde_json::json!({
            "interaction": cx.interaction,
            "authenticator": record.id,
            "name": record.label,
            "stored_counter": record.counter,
        });
        self.audit("webauthn_cloned", actor, "refused", details).await;
    }

    async fn audit(&self, event: &str, actor: &Actor<'_>, outcome: &str, details: serde_json::Value) {
        let record = AuditEvent {
            event: event.to_owned(),
            actor: Some(actor.subject.to_owned()),
            subject: Some(actor.subject.to_owned()),
            client_id: None,
            source_ip: actor.source_ip.map(str::to_owned),
            outcome: outcome.to_owned(),
            details,
            at: actor.now,
        };
        if let Err(e) = self.directory.audit().append(record).await {
            tracing::error!(error = %e, event, "audit append failed");
        }
    }
}

/// The domain two hosts share, to serve as the RP ID of both: the host itself when they are the
/// same, else their common trailing labels, two at least (a registrable domain is never a single
/// label; whether it is a public suffix is the operator's to know).
fn common_domain(a: &str, b: &str) -> Option<String> {
    if a.eq_ignore_ascii_case(b) {
        return Some(a.to_ascii_lowercase());
    }
    if a.parse::<std::net::IpAddr>().is_ok() || b.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let la: Vec<&str> = a.split('.').rev().collect();
    let lb: Vec<&str> = b.split('.').rev().collect();
    let shared: Vec<&str> =
        la.iter().zip(&lb).take_while(|(x, y)| x.eq_ignore_ascii_case(y)).map(|(x, _)| *x).collect();
    (shared.len() >= 2).then(|| shared.into_iter().rev().collect::<Vec<_>>().join(".").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amr_follows_what_the_authenticator_reports() {
        assert_eq!(amr(false, true), ["hwk", "user", "pin"]);
        assert_eq!(amr(true, true), ["swk", "user", "pin"]);
        assert_eq!(amr(false, false), ["hwk", "user"]);
    }

    #[test]
    fn the_rp_id_is_the_domain_the_pages_share() {
        assert_eq!(
            common_domain("auth.esw.sante.example", "wallet.esw.sante.example").as_deref(),
            Some("esw.sante.example")
        );
        assert_eq!(common_domain("auth.sante.example", "sante.example").as_deref(), Some("sante.example"));
        assert_eq!(common_domain("localhost", "localhost").as_deref(), Some("localhost"));
        assert_eq!(common_domain("a.example", "b.example2"), None);
        assert_eq!(common_domain("a.example", "b.example"), None, "a single label is no domain");
        assert_eq!(common_domain("127.0.0.1", "localhost"), None);
    }
}
