//! What the engine counts and records around each step: the lockout's admission, failures,
//! the uniform duration of refusals, and the audit of login events.

use directory::AuditEvent;
use tokio::time::Instant;

use super::{AuthEngine, Refusal, StepOp, StepOutcome, StepRequest};
use crate::lockout::{Admission, AfterFailure, LockScope, Source};
use crate::method::{AuthContext, AuthError};
use crate::progress::{Attempt, Progress};

impl AuthEngine {
    /// Nothing that can be an identifier: charged to the address alone, and nothing is kept of
    /// the text (it may be 60 KB, or someone's password typed in the wrong field).
    pub(super) async fn malformed_identifier(
        &self,
        cx: &AuthContext,
        started: Instant,
        req: StepRequest<'_>,
    ) -> Result<StepOutcome, AuthError> {
        let source = Source::Address(cx.address());
        if let Admission::Locked { retry_after, scope } = self.lockout.admit_source(&source).await? {
            self.audit(cx, &refused_event(req), None, None, "locked", Some(scope)).await;
            return Ok(StepOutcome::Refused(self.pad(started, Refusal::Locked { retry_after }).await));
        }
        self.audit(cx, "login_failed", None, None, "malformed_identifier", None).await;
        Ok(StepOutcome::Refused(self.pad(started, Refusal::Invalid).await))
    }

    /// The lockout's word on an attempt, before any secret is checked.
    async fn admit(
        &self,
        cx: &AuthContext,
        started: Instant,
        attempt: &Attempt,
        req: StepRequest<'_>,
    ) -> Result<Option<Refusal>, AuthError> {
        if let Admission::Locked { retry_after, scope } =
            self.lockout.admit(&attempt.identifier, &attempt.source, cx.now).await?
        {
            self.audit(cx, &refused_event(req), None, Some(&attempt.identifier), "locked", Some(scope)).await;
            return Ok(Some(self.pad(started, Refusal::Locked { retry_after }).await));
        }
        Ok(None)
    }

    /// The lockout's word on a later step of a login (a code typed after the password).
    pub(super) async fn admit_progress(
        &self,
        cx: &AuthContext,
        started: Instant,
        progress: &Progress,
        req: StepRequest<'_>,
    ) -> Result<Option<Refusal>, AuthError> {
        match &progress.attempt {
            Some(attempt) => self.admit(cx, started, attempt, req).await,
            None => {
                let source = Source::Address(cx.address());
                if let Admission::Locked { retry_after, scope } = self.lockout.admit_source(&source).await? {
                    self.audit(cx, &refused_event(req), None, None, "locked", Some(scope)).await;
                    return Ok(Some(self.pad(started, Refusal::Locked { retry_after }).await));
                }
                Ok(None)
            }
        }
    }

    /// The browser as the lockout sees it: one this identifier signed in with before, or an
    /// address.
    pub(super) fn source(&self, cx: &AuthContext, identifier: &str) -> Source {
        match self.devices.trusted_nonce(cx.device_cookie.as_deref(), identifier) {
            Some(nonce) => Source::TrustedDevice(nonce),
            None => Source::Address(cx.address()),
        }
    }

    /// Counts a failed attempt, audits it, and pads the answer.
    pub(super) async fn failed(
        &self,
        cx: &AuthContext,
        started: Instant,
        subject: Option<&str>,
        attempt: Option<&Attempt>,
    ) -> Result<Refusal, AuthError> {
        self.failed_because(cx, started, subject, attempt, "invalid_credentials").await
    }

    /// [`AuthEngine::failed`], audited with `outcome` as the reason.
    pub(super) async fn failed_because(
        &self,
        cx: &AuthContext,
        started: Instant,
        subject: Option<&str>,
        attempt: Option<&Attempt>,
        outcome: &str,
    ) -> Result<Refusal, AuthError> {
        let Some(attempt) = attempt else {
            self.audit(cx, "login_failed", subject, None, outcome, None).await;
            return Ok(self.pad(started, Refusal::Invalid).await);
        };
        let after = self.lockout.failed(&attempt.identifier, &attempt.source, cx.now).await?;
        self.audit(cx, "login_failed", subject, Some(&attempt.identifier), outcome, None).await;
        let refusal = match after {
            AfterFailure::Locked { until, scope } => {
                self.audit(cx, "lockout", subject, Some(&attempt.identifier), "locked", Some(scope)).await;
                Refusal::Locked { retry_after: u64::try_from(until.saturating_sub(cx.now)).unwrap_or(1).max(1) }
            }
            AfterFailure::Counted => Refusal::Invalid,
        };
        Ok(self.pad(started, refusal).await)
    }

    async fn pad(&self, started: Instant, refusal: Refusal) -> Refusal {
        tokio::time::sleep_until(started + self.failure_floor).await;
        refusal
    }

    /// Audits a login event. The identifier is written as typed only when an account has it
    /// (the record is then filed under that account, so that the professional sees refused
    /// attempts in their wallet); an identifier nobody has is written as a keyed hash: enough to
    /// tell that one stranger tried the same one many times, and no list of what was typed.
    async fn audit(
        &self,
        cx: &AuthContext,
        event: &str,
        subject: Option<&str>,
        identifier: Option<&str>,
        outcome: &str,
        scope: Option<LockScope>,
    ) {
        let subject = match (subject, identifier) {
            (Some(s), _) => Some(s.to_owned()),
            (None, Some(id)) => {
                self.directory.professionals().get_by_national_id(id).await.ok().flatten().map(|p| p.subject)
            }
            (None, None) => None,
        };
        let mut details = serde_json::json!({ "interaction": cx.interaction });
        match (identifier, &subject) {
            (Some(id), Some(_)) => details["identifier"] = serde_json::Value::from(id),
            (Some(id), None) => {
                let mut hash = self.audit_identifiers.hex(&[id.as_bytes()]);
                hash.truncate(32);
                details["identifier_hash"] = serde_json::Value::from(hash);
            }
            (None, _) => {}
        }
        if let Some(scope) = scope {
            details["lock"] = serde_json::Value::from(scope.as_str());
        }
        let record = AuditEvent {
            event: event.to_owned(),
            actor: None,
            subject,
            client_id: None,
            source_ip: cx.source_ip.clone(),
            outcome: outcome.to_owned(),
            details,
            at: cx.now,
        };
        if let Err(e) = self.directory.audit().append(record).await {
            tracing::error!(error = %e, event, "audit append failed");
        }
    }
}

/// The event audited when the lockout refuses a step: named after what the person asked for
/// (`push_refused` for a push asked with the password, `login_refused` for a login).
fn refused_event(req: StepRequest<'_>) -> String {
    match req.then {
        Some(t) if !t.in_one_go => format!("{}_refused", t.method),
        _ if req.op == StepOp::Begin => format!("{}_refused", req.method),
        _ => "login_refused".to_owned(),
    }
}
