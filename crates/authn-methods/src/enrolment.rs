//! A professional's own authenticators, as their account pages manage them: list, enrol a TOTP
//! app (active only after its first correct code), remove. Every operation is scoped to the
//! subject, so one person can never see or touch another's authenticators.

use directory::{AuthenticatorRecord, Directory};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::method::AuthError;
use crate::totp;

/// What a person sees of one authenticator (never its secret).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuthenticatorView {
    pub id: String,
    pub kind: String,
    pub label: String,
    pub serial: Option<String>,
    pub active: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<&AuthenticatorRecord> for AuthenticatorView {
    fn from(r: &AuthenticatorRecord) -> Self {
        AuthenticatorView {
            id: r.id.clone(),
            kind: r.kind.clone(),
            label: r.label.clone(),
            serial: r.serial.clone(),
            active: r.active,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// A TOTP enrolment waiting for its first code: what the page shows to scan. `Debug` shows
/// neither the seed nor the URI that carries it.
pub struct PendingTotp {
    pub id: String,
    pub otpauth_uri: Zeroizing<String>,
    pub secret_base32: Zeroizing<String>,
}

impl std::fmt::Debug for PendingTotp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingTotp")
            .field("id", &self.id)
            .field("otpauth_uri", &"<redacted>")
            .field("secret_base32", &"<redacted>")
            .finish()
    }
}

/// A pending enrolment older than this is dropped when the person starts another.
const PENDING_LIFETIME: i64 = 3600;

#[derive(Clone)]
pub struct Enrolment {
    directory: Directory,
    issuer_name: String,
}

impl Enrolment {
    pub fn new(directory: Directory, issuer_name: impl Into<String>) -> Self {
        Enrolment { directory, issuer_name: issuer_name.into() }
    }

    pub async fn list(&self, subject: &str) -> Result<Vec<AuthenticatorView>, AuthError> {
        let mut all: Vec<AuthenticatorView> = self
            .directory
            .authenticators()
            .list_for_subject(subject)
            .await?
            .iter()
            .map(AuthenticatorView::from)
            .collect();
        all.sort_by_key(|a| a.created_at);
        Ok(all)
    }

    /// Starts enrolling a TOTP app; it works for login only once [`Enrolment::activate_totp`]
    /// has seen a correct code. Earlier unfinished enrolments of this person are dropped.
    pub async fn start_totp(&self, subject: &str, account_label: &str, now: i64) -> Result<PendingTotp, AuthError> {
        for stale in self.directory.authenticators().list_for_subject(subject).await? {
            if stale.kind == totp::KIND && !stale.active && stale.created_at < now - PENDING_LIFETIME {
                self.directory.authenticators().delete(&stale.id).await?;
            }
        }
        let e = totp::enroll(&self.directory, subject, account_label, &self.issuer_name, false, now).await?;
        Ok(PendingTotp { id: e.authenticator.id, otpauth_uri: e.otpauth_uri, secret_base32: e.secret_base32 })
    }

    /// The person typed the first code of a pending TOTP enrolment. Returns whether it is now active.
    pub async fn activate_totp(&self, subject: &str, id: &str, code: &str, now: i64) -> Result<bool, AuthError> {
        match self.directory.authenticators().get(id).await? {
            Some(r) if r.subject.as_deref() == Some(subject) && r.created_at >= now - PENDING_LIFETIME => {
                totp::activate_with_code(&self.directory, id, code, now).await
            }
            _ => Ok(false),
        }
    }

    /// Renames one of the person's authenticators. Returns whether it was theirs.
    pub async fn rename(&self, subject: &str, id: &str, name: &str) -> Result<bool, AuthError> {
        match self.directory.authenticators().get(id).await? {
            Some(r) if r.subject.as_deref() == Some(subject) => {
                self.directory.authenticators().set_label(id, name).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The person removes one of their own authenticators (from the wallet): as [`Self::remove`],
    /// audited under their name.
    pub async fn remove_own(&self, subject: &str, id: &str, now: i64) -> Result<bool, AuthError> {
        let kind = self.directory.authenticators().get(id).await?.map(|r| r.kind);
        let removed = self.remove(subject, id).await?;
        if removed {
            let record = directory::AuditEvent {
                event: "authenticator_removed".to_owned(),
                actor: Some(subject.to_owned()),
                subject: Some(subject.to_owned()),
                client_id: None,
                source_ip: None,
                outcome: "success".to_owned(),
                details: serde_json::json!({ "authenticator": id, "kind": kind }),
                at: now,
            };
            if let Err(e) = self.directory.audit().append(record).await {
                tracing::error!(error = %e, "audit append failed");
            }
        }
        Ok(removed)
    }

    /// Removes one of the person's authenticators. Hardware tokens go back to the pool of
    /// unassigned tokens (the device still exists); apps are deleted.
    pub async fn remove(&self, subject: &str, id: &str) -> Result<bool, AuthError> {
        let Some(r) = self.directory.authenticators().get(id).await? else {
            return Ok(false);
        };
        if r.subject.as_deref() != Some(subject) {
            return Ok(false);
        }
        if crate::hardware::is_token(&r) {
            self.directory.authenticators().assign(id, None).await?;
            self.directory.authenticators().deactivate(id).await?;
            Ok(true)
        } else {
            Ok(self.directory.authenticators().delete(id).await?)
        }
    }
}
