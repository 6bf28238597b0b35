//! The authentication engine: runs the methods a login form asks for, counts failures,
//! enforces lockouts, pads failures to a uniform duration, audits, and combines factors.

use std::sync::Arc;
use std::time::Duration;

use directory::{AuditEvent, Directory};
use session_store::SessionStore;
use tokio::time::Instant;

use crate::activation::ActivationCodes;
use crate::device::DeviceCookies;
use crate::hardware::{HardwareTokenMethod, Windows};
use crate::lockout::{Admission, AfterFailure, LockScope, Lockout, LockoutPolicy, Source};
use crate::mail_otp::{MailOtp, SendOutcome};
use crate::method::{AuthContext, AuthError, AuthMethod, FactorResult, Input, MethodState, Step};
use crate::password::{PasswordMethod, normalise_identifier};
use crate::policy::{AuthResult, Policy};
use crate::push::{PushApprovals, PushSend, PushStatus};
use crate::totp::TotpMethod;

/// What the login page tells the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Something was wrong; never says what (identifier, password or code).
    Invalid,
    /// Too many failures for this identifier: wait `retry_after` seconds.
    Locked { retry_after: u64 },
}

/// A completed login: the result for the protocol, and the browser's new device cookie
/// ([`crate::device`]), which the page must set.
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    pub result: AuthResult,
    pub device_cookie: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LoginAttempt {
    Success(Login),
    Refused(Refusal),
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub lockout: LockoutPolicy,
    /// Failed attempts take at least this long, so that timing does not tell an unknown
    /// identifier from a wrong password or a wrong code.
    pub failure_floor: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings { lockout: LockoutPolicy::default(), failure_floor: Duration::from_millis(300) }
    }
}

pub struct AuthEngine {
    directory: Directory,
    lockout: Lockout,
    devices: DeviceCookies,
    /// Keys the hash under which an identifier with no account is audited.
    audit_identifiers: directory::KeyedHash,
    policy: Policy,
    first_factor: Arc<dyn AuthMethod>,
    /// Methods that read the form's `otp` field, tried in order for the identified person.
    otp_methods: Vec<Arc<dyn AuthMethod>>,
    mail_otp: Option<Arc<MailOtp>>,
    push: Option<Arc<PushApprovals>>,
    store: Arc<dyn SessionStore>,
    activation: Arc<ActivationCodes>,
    failure_floor: Duration,
}

/// What a request for a push approval led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushAttempt {
    Sent(PushSend),
    Refused(Refusal),
}

/// Where a login by push approval stands.
#[derive(Debug, Clone, PartialEq)]
pub enum PushLogin {
    Waiting {
        number: String,
        expires_at: i64,
    },
    Success(Login),
    /// Refused or «ce n'était pas moi» on the phone, or a wrong number typed there.
    Denied,
    /// No answer in time, or no push started for this login.
    Expired,
}

/// An attempt on an identifier, from a source, as the lockout counts it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Attempt {
    identifier: String,
    source: Source,
}

/// A login waiting for its push: the password was right, the push is out.
#[derive(serde::Serialize, serde::Deserialize)]
struct PushWait {
    challenge: String,
    attempt: Attempt,
    password: FactorResult,
}

fn push_wait_key(interaction: &str) -> String {
    crate::store_keys::PUSH_LOGIN.key(interaction)
}

/// What a request for a mail OTP led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOtpAttempt {
    Sent(SendOutcome),
    Refused(Refusal),
}

impl AuthEngine {
    pub fn new(directory: Directory, store: Arc<dyn SessionStore>, settings: EngineSettings) -> Self {
        let activation = Arc::new(ActivationCodes::new(store.clone(), directory.keyed_hash("activation-code")));
        AuthEngine {
            first_factor: Arc::new(PasswordMethod::new(directory.clone())),
            otp_methods: vec![
                Arc::new(TotpMethod::new(directory.clone())),
                Arc::new(HardwareTokenMethod::new(directory.clone(), Windows::default())),
                activation.clone(),
            ],
            activation,
            lockout: Lockout::new(store.clone(), settings.lockout, directory.keyed_hash("lockout-identifier")),
            devices: DeviceCookies::new(directory.keyed_hash("device-cookie")),
            audit_identifiers: directory.keyed_hash("audit-identifier"),
            policy: Policy,
            mail_otp: None,
            push: None,
            store,
            failure_floor: settings.failure_floor,
            directory,
        }
    }

    /// Adds one-time passwords by e-mail (sent on request, checked like the other codes).
    pub fn with_mail_otp(mut self, mail: Arc<MailOtp>) -> Self {
        self.otp_methods.push(mail.clone());
        self.mail_otp = Some(mail);
        self
    }

    /// The strongest `acr` the configured methods can reach: a password and a one-time code
    /// (any of them) make `eidas1`. The CPS card and WebAuthn will raise it when they land.
    pub fn strongest_acr(&self) -> &'static str {
        "eidas1"
    }

    /// Activation codes, issued by administrators to professionals who lost their factors.
    pub fn activation_codes(&self) -> &ActivationCodes {
        &self.activation
    }

    pub fn mail_otp_enabled(&self) -> bool {
        self.mail_otp.is_some()
    }

    /// Adds push approval on the professional's phone.
    pub fn with_push(mut self, push: Arc<PushApprovals>) -> Self {
        self.push = Some(push);
        self
    }

    pub fn push(&self) -> Option<&Arc<PushApprovals>> {
        self.push.as_ref()
    }

    /// «Valider sur mon téléphone»: checks the identifier and password exactly as a login does
    /// (a failure counts toward the lockout; a push is never sent on an identifier alone), then
    /// sends a push whose number the page shows.
    pub async fn send_push(
        &self,
        cx: &AuthContext,
        username: &str,
        password: &str,
        client_name: &str,
    ) -> Result<PushAttempt, AuthError> {
        let started = Instant::now();
        let Some(push) = &self.push else {
            return Ok(PushAttempt::Refused(Refusal::Invalid));
        };
        let (attempt, factor) = match self.password_first(cx, started, username, password, "push_refused").await? {
            Ok(checked) => checked,
            Err(refusal) => return Ok(PushAttempt::Refused(refusal)),
        };
        let sent = push.send(cx, &factor.subject, client_name).await?;
        if let PushSend::Sent { challenge, expires_at, .. } = &sent {
            let wait = PushWait { challenge: challenge.clone(), attempt, password: factor };
            let bytes = serde_json::to_vec(&wait).map_err(|e| AuthError::Internal(e.to_string()))?;
            let ttl = Duration::from_secs(u64::try_from(expires_at - cx.now).unwrap_or(0).max(1));
            self.store.put(&push_wait_key(&cx.interaction), &bytes, ttl).await?;
        }
        Ok(PushAttempt::Sent(sent))
    }

    /// Whether this login's push still awaits the phone (for the waiting page's script, which
    /// then submits the page: reading changes nothing).
    pub async fn push_waiting(&self, cx: &AuthContext) -> Result<bool, AuthError> {
        let Some(push) = &self.push else {
            return Ok(false);
        };
        let Some(bytes) = self.store.get(&push_wait_key(&cx.interaction)).await? else {
            return Ok(false);
        };
        let Ok(wait) = serde_json::from_slice::<PushWait>(&bytes) else {
            return Ok(false);
        };
        push.is_waiting(cx, &wait.challenge).await
    }

    /// Asks whether the phone answered the push of this login (`cx.interaction`). An approval
    /// completes the login once; a refusal counts as a failed attempt on the identifier.
    pub async fn check_push(&self, cx: &AuthContext) -> Result<PushLogin, AuthError> {
        let started = Instant::now();
        let Some(push) = &self.push else {
            return Ok(PushLogin::Expired);
        };
        let key = push_wait_key(&cx.interaction);
        let Some(bytes) = self.store.get(&key).await? else {
            return Ok(PushLogin::Expired);
        };
        let Ok(wait) = serde_json::from_slice::<PushWait>(&bytes) else {
            return Ok(PushLogin::Expired);
        };
        match push.status(cx, &wait.challenge).await? {
            PushStatus::Waiting { number, expires_at } => Ok(PushLogin::Waiting { number, expires_at }),
            PushStatus::Approved(second) => {
                self.store.delete(&key).await?;
                let subject = wait.password.subject.clone();
                match self.policy.result(vec![wait.password, second], cx.now) {
                    Some(result) => Ok(PushLogin::Success(self.succeeded(cx, &wait.attempt, result).await?)),
                    None => {
                        self.failed(cx, started, Some(&subject), &wait.attempt).await?;
                        Ok(PushLogin::Denied)
                    }
                }
            }
            PushStatus::Denied | PushStatus::NotMe => {
                // Only the first page to see the refusal counts it.
                if self.store.take(&key).await?.is_some() {
                    let subject = wait.password.subject.clone();
                    self.failed(cx, started, Some(&subject), &wait.attempt).await?;
                }
                Ok(PushLogin::Denied)
            }
            PushStatus::Expired => {
                self.store.delete(&key).await?;
                Ok(PushLogin::Expired)
            }
        }
    }

    /// The identifier and password, first step of every login (the one-form login, and before
    /// an out-of-band step: a mailed code, a push). A failure counts toward the lockout; a right
    /// password does not wipe the count: only a completed login does, so an out-of-band step
    /// cannot reset the budget of guesses. `locked_event` is audited when the attempt is refused
    /// by the lockout.
    async fn password_first(
        &self,
        cx: &AuthContext,
        started: Instant,
        username: &str,
        password: &str,
        locked_event: &str,
    ) -> Result<Result<(Attempt, FactorResult), Refusal>, AuthError> {
        let Some(identifier) = normalise_identifier(username) else {
            // Nothing that can be an identifier: charged to the address alone, and nothing is
            // kept of the text (it may be 60 KB, or someone's password typed in the wrong field).
            let source = Source::Address(cx.address());
            if let Admission::Locked { retry_after, scope } = self.lockout.admit_source(&source).await? {
                self.audit(cx, locked_event, None, None, "locked", Some(scope)).await;
                return Ok(Err(self.pad(started, Refusal::Locked { retry_after }).await));
            }
            self.audit(cx, "login_failed", None, None, "malformed_identifier", None).await;
            return Ok(Err(self.pad(started, Refusal::Invalid).await));
        };
        let attempt = Attempt { source: self.source(cx, &identifier), identifier };
        if let Admission::Locked { retry_after, scope } =
            self.lockout.admit(&attempt.identifier, &attempt.source, cx.now).await?
        {
            self.audit(cx, locked_event, None, Some(&attempt.identifier), "locked", Some(scope)).await;
            return Ok(Err(self.pad(started, Refusal::Locked { retry_after }).await));
        }
        let first = self
            .first_factor
            .submit(
                cx,
                MethodState::default(),
                &Input::new().with("username", attempt.identifier.clone()).with("password", password),
            )
            .await?;
        match first {
            Step::Done(factor) => Ok(Ok((attempt, factor))),
            _ => Ok(Err(self.failed(cx, started, None, &attempt).await?)),
        }
    }

    /// The browser as the lockout sees it: one this identifier signed in with before, or an
    /// address.
    fn source(&self, cx: &AuthContext, identifier: &str) -> Source {
        match self.devices.trusted_nonce(cx.device_cookie.as_deref(), identifier) {
            Some(nonce) => Source::TrustedDevice(nonce),
            None => Source::Address(cx.address()),
        }
    }

    /// Counts a failed attempt, audits it, and pads the answer.
    async fn failed(
        &self,
        cx: &AuthContext,
        started: Instant,
        subject: Option<&str>,
        attempt: &Attempt,
    ) -> Result<Refusal, AuthError> {
        let after = self.lockout.failed(&attempt.identifier, &attempt.source, cx.now).await?;
        self.audit(cx, "login_failed", subject, Some(&attempt.identifier), "invalid_credentials", None).await;
        let refusal = match after {
            AfterFailure::Locked { until, scope } => {
                self.audit(cx, "lockout", subject, Some(&attempt.identifier), "locked", Some(scope)).await;
                Refusal::Locked { retry_after: u64::try_from(until.saturating_sub(cx.now)).unwrap_or(1).max(1) }
            }
            AfterFailure::Counted => Refusal::Invalid,
        };
        Ok(self.pad(started, refusal).await)
    }

    /// A login completed: the attempt's slate is wiped and the browser is remembered.
    async fn succeeded(&self, cx: &AuthContext, attempt: &Attempt, result: AuthResult) -> Result<Login, AuthError> {
        self.lockout.succeeded(&attempt.identifier, &attempt.source).await?;
        let device_cookie = self.devices.after_sign_in(cx.device_cookie.as_deref(), &attempt.identifier);
        Ok(Login { result, device_cookie })
    }

    /// «Envoyer OTP par courriel»: checks the identifier and password (a failure counts toward
    /// the lockout like any other), then mails a code. A correct password does not wipe the
    /// failure count: only a completed login does, so mailing codes cannot reset the budget of
    /// guesses on them.
    pub async fn send_mail_otp(
        &self,
        cx: &AuthContext,
        username: &str,
        password: &str,
    ) -> Result<MailOtpAttempt, AuthError> {
        let started = Instant::now();
        let Some(mail) = &self.mail_otp else {
            return Ok(MailOtpAttempt::Refused(Refusal::Invalid));
        };
        let (attempt, factor) = match self.password_first(cx, started, username, password, "mail_otp_refused").await? {
            Ok(checked) => checked,
            Err(refusal) => return Ok(MailOtpAttempt::Refused(refusal)),
        };
        let account = self.directory.professionals().get_by_subject(&factor.subject).await?;
        let address = account.and_then(|a| a.email);
        let outcome = mail.send_code(cx, &factor.subject, address.as_deref()).await?;
        let label = match &outcome {
            SendOutcome::Sent { .. } => "sent",
            SendOutcome::NoAddress => "no_address",
            SendOutcome::Throttled { .. } => "throttled",
        };
        self.audit(cx, "mail_otp", Some(&factor.subject), Some(&attempt.identifier), label, None).await;
        Ok(MailOtpAttempt::Sent(outcome))
    }

    pub fn lockout(&self) -> &Lockout {
        &self.lockout
    }

    /// The one-form login: identifier and password, then the one-time code, in one submission.
    pub async fn password_and_otp(
        &self,
        cx: &AuthContext,
        username: &str,
        password: &str,
        otp: &str,
    ) -> Result<LoginAttempt, AuthError> {
        let started = Instant::now();
        let (attempt, first) = match self.password_first(cx, started, username, password, "login_refused").await? {
            Ok(checked) => checked,
            Err(refusal) => return Ok(LoginAttempt::Refused(refusal)),
        };
        let subject = first.subject.clone();
        let mut factors = vec![first];
        if let Some(second) = self.second_factor(cx, &subject, otp).await? {
            factors.push(second);
        }
        if let Some(result) = self.policy.result(factors, cx.now) {
            return Ok(LoginAttempt::Success(self.succeeded(cx, &attempt, result).await?));
        }
        Ok(LoginAttempt::Refused(self.failed(cx, started, Some(&subject), &attempt).await?))
    }

    async fn second_factor(
        &self,
        cx: &AuthContext,
        subject: &str,
        otp: &str,
    ) -> Result<Option<FactorResult>, AuthError> {
        let input = Input::new().with("otp", otp);
        for method in &self.otp_methods {
            if !method.available(cx, Some(subject)).await? {
                continue;
            }
            let Step::Continue { state, .. } = method.begin(cx, Some(subject)).await? else {
                continue;
            };
            if let Step::Done(f) = method.submit(cx, state, &input).await?
                && f.subject == subject
            {
                return Ok(Some(f));
            }
        }
        Ok(None)
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
