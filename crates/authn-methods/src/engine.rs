//! The authentication engine: takes one step of a login at a time (`begin`, `submit` or `poll`
//! of the method the page names), keeps where the login stands for any node to continue it
//! ([`crate::progress`]), and is the only place that counts failures, enforces lockouts, pads
//! failures to a uniform duration, audits, and asks the [`Policy`] which methods may come next
//! and whether the factors so far make a login.
//!
//! Methods are registered by id; the engine knows none of them by name.

use std::sync::Arc;
use std::time::Duration;

use directory::Directory;
use session_store::SessionStore;
use tokio::time::Instant;

use crate::activation::ActivationCodes;
use crate::code::OneTimeCode;
use crate::device::DeviceCookies;
use crate::hardware::{HardwareTokenMethod, Windows};
use crate::lockout::{Lockout, LockoutPolicy};
use crate::mail_otp::{MailOtp, MailOtpMethod};
use crate::method::{AuthContext, AuthError, AuthMethod, Failure, Input, MethodId, Prompt, Step, Unusable};
use crate::password::{PasswordMethod, normalise_identifier};
use crate::policy::{AuthResult, MethodInfo, Offer, Policy};
use crate::progress::{Attempt, Current, Progress, Progresses, Snapshot};
use crate::push::{PushApprovals, PushMethod};
use crate::totp::TotpMethod;
use crate::webauthn::Passkeys;
use crate::webauthn::login::{PasskeyLogin, SecurityKeyLogin};

mod counting;

/// What the login page tells the person of a refused attempt.
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

/// Which part of a method's work a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOp {
    /// Open the method (mail a code, send a push, show a QR code).
    Begin,
    /// What the person typed.
    Submit,
    /// Whether the other device answered.
    Poll,
}

/// The method to open in the same request once this step proves its factor: the page that asks
/// for a password and then a code in one form, or a password then «send me a push».
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Then<'a> {
    pub method: &'a str,
    /// The documented one-form login: the next method must finish with the same input, or the
    /// whole attempt fails (one failure counted) and starts over.
    pub in_one_go: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct StepRequest<'a> {
    pub method: &'a str,
    pub op: StepOp,
    pub input: &'a Input,
    pub then: Option<Then<'a>>,
}

/// A prompt to draw, for the method under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub method: String,
    pub prompt: Prompt,
    /// Out-of-band: until when the other device may answer, and how soon to ask again.
    pub expires_at: Option<i64>,
    pub poll_after_ms: Option<u64>,
}

/// What one step led to.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// The login is complete.
    Success(Login),
    /// The method under way asks for more.
    Prompt(Shown),
    /// These factors are not enough yet: one of `methods` comes next (for the person they prove).
    Next { methods: Vec<MethodId> },
    /// A failed attempt (counted), or one the lockout refused.
    Refused(Refusal),
    /// Refused on the other device, or the wrong number typed there (counted).
    Denied,
    /// Refused for a reason the page names ([`Failure::Rejected`]; counted).
    Rejected { method: MethodId, reason: &'static str },
    /// The step's challenge or request ran out: start the method again.
    Expired,
    /// The method cannot run for this person now; nothing was counted.
    Unusable { method: MethodId, why: Unusable },
    /// The method is unknown, off, or not allowed at this point of the login.
    NotAllowed,
    /// Another tab or request moved this login on first.
    Raced,
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub lockout: LockoutPolicy,
    /// Failed attempts take at least this long, so that timing does not tell an unknown
    /// identifier from a wrong password or a wrong code.
    pub failure_floor: Duration,
    /// How long a login's progress is kept (the interaction's life).
    pub login_ttl: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            lockout: LockoutPolicy::default(),
            failure_floor: Duration::from_millis(300),
            login_ttl: Duration::from_secs(900),
        }
    }
}

pub struct AuthEngine {
    directory: Directory,
    lockout: Lockout,
    devices: DeviceCookies,
    /// Keys the hash under which an identifier with no account is audited.
    audit_identifiers: directory::KeyedHash,
    policy: Policy,
    /// Every method on, in the order the login page offers them.
    methods: Vec<Arc<dyn AuthMethod>>,
    /// What the policy knows of `methods`, in the same order (they only change while the engine
    /// is built).
    infos: Vec<MethodInfo>,
    /// The members of «Code OTP» ([`crate::code`]), kept to add the mailed code to them.
    code_members: Vec<Arc<dyn AuthMethod>>,
    activation: Arc<ActivationCodes>,
    /// The strongest level the registered methods can reach.
    strongest: &'static str,
    progress: Progresses,
    failure_floor: Duration,
}

impl AuthEngine {
    /// An engine with the password alone: the methods that complete a login are registered
    /// next, one line each (`with_codes`, `with_mail_otp`, `with_push`, `with_method`), as the
    /// configuration names them (`login.methods`), in the order the login page offers them.
    pub fn new(directory: Directory, store: Arc<dyn SessionStore>, settings: EngineSettings) -> Self {
        let activation = Arc::new(ActivationCodes::new(store.clone(), directory.keyed_hash("activation-code")));
        let code_members: Vec<Arc<dyn AuthMethod>> = vec![
            Arc::new(TotpMethod::new(directory.clone())),
            Arc::new(HardwareTokenMethod::new(directory.clone(), Windows::default())),
            activation.clone(),
        ];
        let password: Arc<dyn AuthMethod> = Arc::new(PasswordMethod::new(directory.clone()));
        AuthEngine {
            methods: Vec::new(),
            infos: Vec::new(),
            code_members,
            activation,
            strongest: "eidas1",
            lockout: Lockout::new(store.clone(), settings.lockout, directory.keyed_hash("lockout-identifier")),
            devices: DeviceCookies::new(directory.keyed_hash("device-cookie")),
            audit_identifiers: directory.keyed_hash("audit-identifier"),
            policy: Policy,
            progress: Progresses::new(store, settings.login_ttl),
            failure_floor: settings.failure_floor,
            directory,
        }
        .with_method(password)
    }

    /// Registers a method (replacing one of the same id, in its place).
    pub fn with_method(mut self, method: Arc<dyn AuthMethod>) -> Self {
        match self.methods.iter().position(|m| m.id() == method.id()) {
            Some(i) => self.methods[i] = method,
            None => self.methods.push(method),
        }
        self.infos = self
            .methods
            .iter()
            .map(|m| MethodInfo {
                id: m.id(),
                kind: m.kind(),
                needs_subject: m.needs_subject(),
                also: m.also_proves(),
                identifies: m.identifier_field().is_some(),
            })
            .collect();
        self
    }

    /// «Code OTP»: TOTP apps, OTP tokens, activation codes (and the mailed code, when mail OTP
    /// is on), in one field.
    pub fn with_codes(self) -> Self {
        let code = Arc::new(OneTimeCode::new(self.code_members.clone()));
        self.with_method(code)
    }

    /// One-time passwords by e-mail: «Recevoir un code par courriel», and the mailed code
    /// accepted in «Code OTP» too when that is on.
    pub fn with_mail_otp(mut self, mail: Arc<MailOtp>) -> Self {
        self.code_members.push(mail.clone());
        let codes_on = self.has_method(crate::code::METHOD_ID);
        let send: Arc<dyn AuthMethod> = Arc::new(MailOtpMethod::new(mail, self.directory.clone()));
        let engine = self.with_method(send);
        if codes_on { engine.with_codes() } else { engine }
    }

    /// Push approval on the professional's phone.
    pub fn with_push(self, push: Arc<PushApprovals>) -> Self {
        self.with_method(Arc::new(PushMethod::new(push)))
    }

    /// A passkey alone (`webauthn`) or a security key after the password (`webauthn-key`):
    /// such a login reaches the level the operator gives it (`webauthn.acr`).
    pub fn with_webauthn(mut self, passkeys: Arc<Passkeys>, alone: bool) -> Self {
        if let Some(level) = crate::policy::level_named(&passkeys.settings().acr)
            && crate::policy::rank(level) > crate::policy::rank(self.strongest)
        {
            self.strongest = level;
        }
        let method: Arc<dyn AuthMethod> =
            if alone { Arc::new(PasskeyLogin::new(passkeys)) } else { Arc::new(SecurityKeyLogin::new(passkeys)) };
        self.with_method(method)
    }

    /// The CPS card: a login by itself, at the strongest level.
    pub fn with_card(mut self, card: Arc<crate::card::CardLogin>) -> Self {
        self.strongest = "eidas3";
        self.with_method(card)
    }

    /// The strongest `acr` the configured methods can reach: a password and a one-time code
    /// (any of them) make `eidas1`; WebAuthn the level the operator gives it; the CPS card
    /// `eidas3`.
    pub fn strongest_acr(&self) -> &'static str {
        self.strongest
    }

    /// Activation codes, issued by administrators to professionals who lost their factors.
    pub fn activation_codes(&self) -> &ActivationCodes {
        &self.activation
    }

    pub fn lockout(&self) -> &Lockout {
        &self.lockout
    }

    fn infos(&self) -> &[MethodInfo] {
        &self.infos
    }

    fn method(&self, id: &str) -> Option<&Arc<dyn AuthMethod>> {
        self.methods.iter().find(|m| m.id() == id)
    }

    /// Whether a method of this id is on.
    pub fn has_method(&self, id: &str) -> bool {
        self.method(id).is_some()
    }

    /// The ways to sign in the login page offers first.
    pub fn offers(&self) -> Vec<Offer> {
        self.policy.offers(self.infos())
    }

    /// What this login's page shows now: the prompt of the method under way, or, once a factor
    /// is proven, the methods that may come next. Reads only.
    pub async fn current(&self, interaction: &str) -> Result<Option<StepOutcome>, AuthError> {
        let snapshot = self.progress.read(interaction).await?;
        let p = &snapshot.progress;
        if let Some(c) = &p.current {
            return Ok(Some(StepOutcome::Prompt(shown(c))));
        }
        if p.subject().is_some() {
            return Ok(Some(StepOutcome::Next { methods: self.policy.next(&p.factors, self.infos()) }));
        }
        Ok(None)
    }

    /// Whether this login's out-of-band step still awaits the other device (for the waiting
    /// page's script, which then submits the page: reading changes nothing).
    pub async fn waiting(&self, cx: &AuthContext) -> Result<bool, AuthError> {
        let snapshot = self.progress.read(&cx.interaction).await?;
        let Some(current) = &snapshot.progress.current else {
            return Ok(false);
        };
        match self.method(&current.method) {
            Some(m) => m.waiting(cx, &current.state).await,
            None => Ok(false),
        }
    }

    /// Takes one step of the login `cx.interaction`.
    pub async fn step(&self, cx: &AuthContext, req: StepRequest<'_>) -> Result<StepOutcome, AuthError> {
        let method = self.method(req.method).map_or("unknown", |m| m.id());
        let outcome = self.take_step(cx, req).await;
        // Logins by method and outcome, for monitoring (the audit log has who and why).
        let label = match &outcome {
            Ok(StepOutcome::Success(_)) => "success",
            Ok(StepOutcome::Prompt(_) | StepOutcome::Next { .. }) => "continue",
            Ok(StepOutcome::Refused(Refusal::Invalid)) => "failed",
            Ok(StepOutcome::Refused(_)) => "locked",
            Ok(StepOutcome::Denied) => "denied",
            Ok(StepOutcome::Rejected { .. }) => "rejected",
            Ok(StepOutcome::Expired) => "expired",
            Ok(StepOutcome::Unusable { .. }) => "unusable",
            Ok(StepOutcome::NotAllowed) => "not_allowed",
            Ok(StepOutcome::Raced) => "raced",
            Err(_) => "error",
        };
        metrics::counter!("caducee_login_steps_total", "method" => method, "outcome" => label).increment(1);
        outcome
    }

    async fn take_step(&self, cx: &AuthContext, req: StepRequest<'_>) -> Result<StepOutcome, AuthError> {
        let started = Instant::now();
        let Some(method) = self.method(req.method).cloned() else {
            return Ok(StepOutcome::NotAllowed);
        };
        let snapshot = self.progress.read(&cx.interaction).await?;
        let mut progress = snapshot.progress.clone();
        let under_way = progress.current.take().filter(|c| c.method == method.id());
        if req.op == StepOp::Poll && under_way.is_none() {
            return Ok(StepOutcome::Expired);
        }
        if under_way.is_none() {
            // A method that needs nobody identified opens the login anew: what this login
            // proved so far is dropped.
            if !method.needs_subject() {
                progress = Progress::default();
            }
            if !self.policy.next(&progress.factors, self.infos()).contains(&method.id()) {
                return Ok(StepOutcome::NotAllowed);
            }
        }
        // Who is trying, when the method reads an identifier: the lockout admits the attempt
        // against it (and this source) before anything is checked.
        let mut input = req.input.clone();
        // A step that carries the identifier counts against it, whatever step it names (a
        // `begin` with the password typed is checked as a `submit`).
        let identifier_field = method.identifier_field().filter(|f| {
            req.op == StepOp::Submit || (req.op == StepOp::Begin && req.input.get(f).is_some_and(|v| !v.is_empty()))
        });
        if let Some(field) = identifier_field {
            let Some(identifier) = normalise_identifier(req.input.get(field).unwrap_or("")) else {
                return self.malformed_identifier(cx, started, req).await;
            };
            input = input.with(field, identifier.clone());
            let identifier = match method.identifier_namespace() {
                Some(ns) => format!("{ns}:{identifier}"),
                None => identifier,
            };
            progress.attempt = Some(Attempt { source: self.source(cx, &identifier), identifier });
        }
        if req.op != StepOp::Poll
            && let Some(refusal) = self.admit_progress(cx, started, &progress, req).await?
        {
            return Ok(StepOutcome::Refused(refusal));
        }
        let step = match (req.op, under_way) {
            (StepOp::Poll, Some(c)) => method.poll(cx, c.state).await?,
            (StepOp::Submit, Some(c)) => method.submit(cx, c.state, &input).await?,
            (_, _) => {
                let opened = method.begin(cx, progress.subject()).await?;
                self.submit_if_typed(cx, method.as_ref(), opened, &input, req.op == StepOp::Submit).await?
            }
        };
        self.after(cx, started, req, method.as_ref(), snapshot, progress, step).await
    }

    /// A method just opened: when the same request already carries what it asks for (the
    /// one-form login), it is submitted at once.
    async fn submit_if_typed(
        &self,
        cx: &AuthContext,
        method: &dyn AuthMethod,
        opened: Step,
        input: &Input,
        always: bool,
    ) -> Result<Step, AuthError> {
        let Step::Continue { state, prompt } = opened else {
            return Ok(opened);
        };
        let fields = prompt.field_names();
        let typed = !fields.is_empty() && fields.iter().all(|f| input.get(f).is_some_and(|v| !v.trim().is_empty()));
        if always || typed { method.submit(cx, state, input).await } else { Ok(Step::Continue { state, prompt }) }
    }

    /// What a step's result does to the login.
    #[allow(clippy::too_many_arguments)]
    async fn after(
        &self,
        cx: &AuthContext,
        started: Instant,
        req: StepRequest<'_>,
        method: &dyn AuthMethod,
        snapshot: Snapshot,
        mut progress: Progress,
        step: Step,
    ) -> Result<StepOutcome, AuthError> {
        match step {
            Step::Done(factor) => {
                if progress.subject().is_some_and(|s| s != factor.subject) {
                    // Factors of two people never combine.
                    return self.count_failure(cx, started, &snapshot, progress, Some(&factor.subject), true).await;
                }
                progress.factors.push(factor);
                progress.current = None;
                if let Some(result) = self.policy.result(progress.factors.clone(), cx.now, cx.required_acr.as_deref()) {
                    return self.succeed(cx, &snapshot, &progress, result).await;
                }
                let next = self.policy.next(&progress.factors, self.infos());
                let then =
                    req.then.filter(|t| next.contains(&t.method)).and_then(|t| Some((t, self.method(t.method)?)));
                let Some((then, then_method)) = then else {
                    if req.then.is_some_and(|t| t.in_one_go) {
                        let subject = progress.subject().map(str::to_owned);
                        return self.count_failure(cx, started, &snapshot, progress, subject.as_deref(), true).await;
                    }
                    return self.save(cx, &snapshot, &progress, StepOutcome::Next { methods: next }).await;
                };
                let then_method = then_method.clone();
                let opened = then_method.begin(cx, progress.subject()).await?;
                let step = self.submit_if_typed(cx, then_method.as_ref(), opened, req.input, then.in_one_go).await?;
                let chained = StepRequest { method: then.method, op: StepOp::Submit, input: req.input, then: None };
                if then.in_one_go && !matches!(step, Step::Done(_)) {
                    let subject = progress.subject().map(str::to_owned);
                    return self.count_failure(cx, started, &snapshot, progress, subject.as_deref(), true).await;
                }
                Box::pin(self.after(cx, started, chained, then_method.as_ref(), snapshot, progress, step)).await
            }
            Step::Continue { state, prompt } => {
                let current =
                    Current { method: method.id().to_owned(), state, prompt, expires_at: None, poll_after_ms: None };
                let shown = shown(&current);
                progress.current = Some(current);
                self.save(cx, &snapshot, &progress, StepOutcome::Prompt(shown)).await
            }
            Step::Pending { state, prompt, expires_at, poll_after_ms } => {
                let current = Current {
                    method: method.id().to_owned(),
                    state,
                    prompt,
                    expires_at: Some(expires_at),
                    poll_after_ms: Some(poll_after_ms),
                };
                let shown = shown(&current);
                progress.current = Some(current);
                self.save(cx, &snapshot, &progress, StepOutcome::Prompt(shown)).await
            }
            Step::Failed(Failure::Bad) => {
                let subject = progress.subject().map(str::to_owned);
                // A wrong first factor ends the login's progress; a wrong code leaves the
                // password proven, so that only the code is typed again.
                // The method under way stays open for another try (the same mailed code, a
                // code retyped, the same QR code) if it can be tried again in place (a WebAuthn
                // ceremony cannot), but never past its step's life. A wrong first factor with
                // nothing under way (the password, a passkey) ends the login's progress.
                progress.current = snapshot.progress.current.clone().filter(|c| {
                    c.method == method.id() && method.retry_in_place() && c.expires_at.is_none_or(|at| at >= cx.now)
                });
                let restart = !method.needs_subject() && progress.current.is_none();
                self.count_failure(cx, started, &snapshot, progress, subject.as_deref(), restart).await
            }
            Step::Failed(Failure::Denied) => {
                // Only the request that moves the login on counts the refusal.
                progress.current = None;
                if self.progress.write(&cx.interaction, &snapshot, &progress).await?.is_err() {
                    return Ok(StepOutcome::Raced);
                }
                let refusal = self.failed(cx, started, progress.subject(), progress.attempt.as_ref()).await?;
                Ok(match refusal {
                    Refusal::Invalid => StepOutcome::Denied,
                    locked => StepOutcome::Refused(locked),
                })
            }
            Step::Failed(Failure::Rejected(reason)) => {
                // What the person holds was refused (a revoked card): the step is spent and,
                // for a first factor, the login starts over.
                progress.current = None;
                let subject = progress.subject().map(str::to_owned);
                let attempt = progress.attempt.clone();
                if !method.needs_subject() {
                    progress = Progress::default();
                }
                let refusal = self.failed_because(cx, started, subject.as_deref(), attempt.as_ref(), reason).await?;
                if self.progress.write(&cx.interaction, &snapshot, &progress).await?.is_err() {
                    return Ok(StepOutcome::Raced);
                }
                Ok(match refusal {
                    Refusal::Invalid => StepOutcome::Rejected { method: method.id(), reason },
                    locked => StepOutcome::Refused(locked),
                })
            }
            Step::Failed(Failure::Expired) => {
                progress.current = None;
                self.save(cx, &snapshot, &progress, StepOutcome::Expired).await
            }
            Step::Failed(Failure::Unusable(why)) => {
                progress.current = None;
                self.save(cx, &snapshot, &progress, StepOutcome::Unusable { method: method.id(), why }).await
            }
        }
    }

    async fn save(
        &self,
        cx: &AuthContext,
        snapshot: &Snapshot,
        progress: &Progress,
        outcome: StepOutcome,
    ) -> Result<StepOutcome, AuthError> {
        Ok(match self.progress.write(&cx.interaction, snapshot, progress).await? {
            Ok(()) => outcome,
            Err(_) => StepOutcome::Raced,
        })
    }

    /// A completed login: only the step that finishes the progress signs in; the attempt's
    /// slate is wiped and the browser is remembered.
    async fn succeed(
        &self,
        cx: &AuthContext,
        snapshot: &Snapshot,
        progress: &Progress,
        result: AuthResult,
    ) -> Result<StepOutcome, AuthError> {
        if self.progress.finish(&cx.interaction, snapshot).await?.is_err() {
            return Ok(StepOutcome::Raced);
        }
        let identifier = match &progress.attempt {
            Some(attempt) => {
                self.lockout.succeeded(&attempt.identifier, &attempt.source).await?;
                attempt.identifier.clone()
            }
            None => result.subject.clone(),
        };
        let device_cookie = self.devices.after_sign_in(cx.device_cookie.as_deref(), &identifier);
        Ok(StepOutcome::Success(Login { result, device_cookie }))
    }

    /// Counts a failed step and saves what is left of the login: nothing when `restart`, else
    /// `progress` as the caller left it.
    async fn count_failure(
        &self,
        cx: &AuthContext,
        started: Instant,
        snapshot: &Snapshot,
        mut progress: Progress,
        subject: Option<&str>,
        restart: bool,
    ) -> Result<StepOutcome, AuthError> {
        let attempt = progress.attempt.clone();
        if restart {
            progress = Progress::default();
        }
        // The count comes first: a lost race must not spare a wrong guess.
        let refusal = self.failed(cx, started, subject, attempt.as_ref()).await?;
        if self.progress.write(&cx.interaction, snapshot, &progress).await?.is_err() {
            return Ok(StepOutcome::Raced);
        }
        Ok(StepOutcome::Refused(refusal))
    }
}

fn shown(c: &Current) -> Shown {
    Shown {
        method: c.method.clone(),
        prompt: c.prompt.clone(),
        expires_at: c.expires_at,
        poll_after_ms: c.poll_after_ms,
    }
}
