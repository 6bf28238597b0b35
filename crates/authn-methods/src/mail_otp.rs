//! One-time passwords by e-mail, the default OTP mode: a 6-digit code sent to the
//! professional's registered address, valid for a few minutes, usable once; a new code replaces
//! the previous one. Sending requires the right password first (the engine checks it), and is
//! throttled per account and per source address so that nobody can flood a mailbox.
//!
//! The mail says until when the code is valid, in the configured time zone, in the words
//! professionals know: «[Authentification Caducée] Votre OTP valable jusqu'à 16:04:04
//! (UTC+0200) le 26/07/2018».

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use directory::KeyedHash;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use session_store::{Rate, RateLimiter, SessionStore, address_subject};
use subtle::ConstantTimeEq as _;

use crate::mailer::{Mailer, OutgoingMail};
use crate::method::{
    AuthContext, AuthError, AuthMethod, FactorKind, FactorResult, Failure, Input, MethodId, MethodState, Prompt, Step,
    Unusable,
};

pub const METHOD_ID: MethodId = "otp-mail";

#[derive(Debug, Clone)]
pub struct MailOtpSettings {
    /// How long a code is valid.
    pub validity: Duration,
    /// IANA time zone of the expiry time written in the mail.
    pub timezone: String,
    /// Product name in the subject line.
    pub product: String,
    /// Codes sent to one account per window...
    pub per_account_max: u64,
    pub per_account_window: Duration,
    /// ...and at least this long between two of them.
    pub min_interval: Duration,
    /// Codes requested from one source address per window (any accounts).
    pub per_address_max: u64,
    pub per_address_window: Duration,
}

impl Default for MailOtpSettings {
    fn default() -> Self {
        MailOtpSettings {
            validity: Duration::from_secs(300),
            timezone: "Europe/Paris".into(),
            product: "Caducée".into(),
            per_account_max: 5,
            per_account_window: Duration::from_secs(3600),
            min_interval: Duration::from_secs(30),
            per_address_max: 20,
            per_address_window: Duration::from_secs(3600),
        }
    }
}

/// What happened to a request for a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The mail has left for this (masked) address; the code is valid until `until`, written
    /// in the configured time zone as `time` (`16:04:04 (UTC+0200)`) and `date` (`26/07/2018`).
    Sent { masked_address: String, until: i64, time: String, date: String },
    /// The account has no address to send to.
    NoAddress,
    /// Too many codes requested: try again after `retry_after` seconds.
    Throttled { retry_after: u64 },
}

#[derive(Serialize, Deserialize)]
struct PendingCode {
    hash: String,
    expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct State {
    subject: String,
}

pub struct MailOtp {
    store: Arc<dyn SessionStore>,
    mailer: Arc<dyn Mailer>,
    settings: MailOtpSettings,
    /// Under a key derived from the master key: a million codes are tried in a blink against a
    /// bare hash, so a copy of the session store must not be enough to find a pending code.
    code_hash: KeyedHash,
    /// Codes requested from one source address (any accounts)...
    per_address: RateLimiter,
    /// ...mailed to one account...
    per_account: RateLimiter,
    /// ...and one per `min_interval` to an account (none when it is zero).
    spacing: Option<RateLimiter>,
}

fn code_key(subject: &str) -> String {
    crate::store_keys::MAIL_OTP.key(subject)
}

/// `jeanne.martin@example.org` → `j•••@example.org`: enough for the person to recognise it.
pub fn mask_address(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_owned(),
    }
}

/// The expiry as `("16:04:04 (UTC+0200)", "26/07/2018")` in `timezone` (UTC if unknown).
pub fn expiry_parts(at: i64, timezone: &str) -> (String, String) {
    let tz = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    match jiff::Timestamp::from_second(at) {
        Ok(ts) => {
            let z = ts.to_zoned_datetime(tz);
            (format!("{} (UTC{})", z.strftime("%H:%M:%S"), z.strftime("%z")), z.strftime("%d/%m/%Y").to_string())
        }
        Err(_) => (at.to_string(), String::new()),
    }
}

/// The expiry as the mail writes it: `16:04:04 (UTC+0200) le 26/07/2018`.
pub fn format_expiry(at: i64, timezone: &str) -> String {
    let (time, date) = expiry_parts(at, timezone);
    format!("{time} le {date}")
}

impl MailOtp {
    /// `code_hash` is the keyed hash the pending codes are kept under (purpose `"mail-otp"`),
    /// the same on every node.
    pub fn new(
        store: Arc<dyn SessionStore>,
        mailer: Arc<dyn Mailer>,
        settings: MailOtpSettings,
        code_hash: KeyedHash,
    ) -> Self {
        let limiter = |name, max, window| RateLimiter::new(store.clone(), name, Rate::new(max, window));
        let per_address =
            limiter(crate::store_keys::LIMIT_MAILS_PER_ADDRESS, settings.per_address_max, settings.per_address_window);
        let per_account =
            limiter(crate::store_keys::LIMIT_MAILS_PER_ACCOUNT, settings.per_account_max, settings.per_account_window);
        let spacing = (!settings.min_interval.is_zero())
            .then(|| limiter(crate::store_keys::LIMIT_MAIL_SPACING, 1, settings.min_interval));
        MailOtp { store, mailer, settings, code_hash, per_address, per_account, spacing }
    }

    fn hash(&self, subject: &str, code: &str) -> String {
        self.code_hash.hex(&[subject.as_bytes(), code.as_bytes()])
    }

    pub fn mailer(&self) -> &Arc<dyn Mailer> {
        &self.mailer
    }

    fn secs(d: Duration) -> i64 {
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
    }

    /// Sends a fresh code to `address` for `subject`, unless throttled. The caller has already
    /// checked the password.
    pub async fn send_code(
        &self,
        cx: &AuthContext,
        subject: &str,
        address: Option<&str>,
    ) -> Result<SendOutcome, AuthError> {
        let Some(address) = address.filter(|a| a.contains('@')) else {
            return Ok(SendOutcome::NoAddress);
        };
        let s = &self.settings;
        if let Some(ip) = cx.address()
            && let Some(retry_after) = self.per_address.hit(&address_subject(ip)).await?.retry_after_secs()
        {
            return Ok(SendOutcome::Throttled { retry_after });
        }
        if let Some(spacing) = &self.spacing
            && let Some(retry_after) = spacing.hit(subject).await?.retry_after_secs()
        {
            return Ok(SendOutcome::Throttled { retry_after });
        }
        if let Some(retry_after) = self.per_account.hit(subject).await?.retry_after_secs() {
            return Ok(SendOutcome::Throttled { retry_after });
        }

        let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
        let until = cx.now + Self::secs(s.validity);
        let pending = PendingCode { hash: self.hash(subject, &code), expires_at: until };
        let bytes = serde_json::to_vec(&pending).map_err(|e| AuthError::Internal(e.to_string()))?;
        // A new code replaces the previous one.
        self.store.put(&code_key(subject), &bytes, s.validity).await?;
        let expiry = format_expiry(until, &s.timezone);
        let (time, date) = expiry_parts(until, &s.timezone);
        let mail = OutgoingMail {
            to: address.to_owned(),
            subject: format!("[Authentification {}] Votre OTP valable jusqu'à {expiry}", s.product),
            body: format!(
                "Bonjour,\n\n\
                 Utilisez le mot de passe à usage unique (OTP) suivant pour vous authentifier : {code}\n\n\
                 Ce code est valable jusqu'à {expiry} et ne sert qu'une fois.\n\n\
                 Si vous n'êtes pas à l'origine de cette demande, quelqu'un connaît votre mot de passe : \
                 ne communiquez ce code à personne et changez votre mot de passe.\n\n\
                 --\n\
                 Your one-time password is {code}. It is valid once, until {time} on {date}.\n\
                 {} — merci de ne pas répondre à ce message.\n",
                s.product
            ),
        };
        if let Err(e) = self.mailer.send(mail).await {
            // The code was never delivered: it must not stay valid, and the person may retry.
            self.store.delete(&code_key(subject)).await?;
            if let Some(spacing) = &self.spacing {
                spacing.clear(subject).await?;
            }
            tracing::error!(error = %e, "sending the OTP mail failed");
            return Err(AuthError::Internal(format!("mail: {e}")));
        }
        Ok(SendOutcome::Sent { masked_address: mask_address(address), until, time, date })
    }
}

#[async_trait]
impl AuthMethod for MailOtp {
    fn id(&self) -> MethodId {
        METHOD_ID
    }

    fn kind(&self) -> FactorKind {
        FactorKind::Possession
    }

    fn needs_subject(&self) -> bool {
        true
    }

    /// Available while a code sent to this person is pending.
    async fn available(&self, _cx: &AuthContext, subject: Option<&str>) -> Result<bool, AuthError> {
        match subject {
            Some(s) => Ok(self.store.get(&code_key(s)).await?.is_some()),
            None => Ok(false),
        }
    }

    async fn begin(&self, _cx: &AuthContext, subject: Option<&str>) -> Result<Step, AuthError> {
        let Some(subject) = subject else {
            return Ok(Step::Failed(Failure::Bad));
        };
        let state = serde_json::to_value(State { subject: subject.to_owned() })
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok(Step::Continue { state: MethodState(state), prompt: Prompt::fields(&["otp"]) })
    }

    async fn submit(&self, cx: &AuthContext, state: MethodState, input: &Input) -> Result<Step, AuthError> {
        let Ok(State { subject }) = serde_json::from_value::<State>(state.0) else {
            return Ok(Step::Failed(Failure::Bad));
        };
        let code: String = input.get("otp").unwrap_or("").chars().filter(|c| !c.is_whitespace()).collect();
        let key = code_key(&subject);
        let Some(bytes) = self.store.get(&key).await? else {
            return Ok(Step::Failed(Failure::Bad));
        };
        let Ok(pending) = serde_json::from_slice::<PendingCode>(&bytes) else {
            return Ok(Step::Failed(Failure::Bad));
        };
        if pending.expires_at <= cx.now {
            return Ok(Step::Failed(Failure::Expired));
        }
        if !bool::from(self.hash(&subject, &code).as_bytes().ct_eq(pending.hash.as_bytes())) {
            return Ok(Step::Failed(Failure::Bad));
        }
        // Single use: of concurrent submissions of the right code, only one swaps it out.
        if !self.store.compare_and_swap(&key, &bytes, b"used", Duration::from_secs(1)).await? {
            return Ok(Step::Failed(Failure::Bad));
        }
        self.store.delete(&key).await?;
        Ok(Step::Done(FactorResult {
            subject,
            method: METHOD_ID.to_owned(),
            credential: None,
            kind: FactorKind::Possession,
            also: Vec::new(),
            phishing_resistant: false,
            amr: vec!["otp".to_owned()],
            at: cx.now,
            level: None,
        }))
    }
}

/// «Recevoir un code par courriel» as a login method: `begin` mails a code (the password was
/// checked first: the policy puts this method after it), `submit` checks it. The same code is
/// also accepted in the «Code OTP» field ([`crate::code`]), where [`MailOtp`] itself checks it.
pub struct MailOtpMethod {
    mail: Arc<MailOtp>,
    directory: directory::Directory,
}

/// The method id of [`MailOtpMethod`].
pub const SEND_METHOD_ID: MethodId = "mail";

impl MailOtpMethod {
    pub fn new(mail: Arc<MailOtp>, directory: directory::Directory) -> Self {
        MailOtpMethod { mail, directory }
    }

    async fn audit(&self, cx: &AuthContext, subject: &str, outcome: &str) {
        let record = directory::AuditEvent {
            event: "mail_otp".to_owned(),
            actor: None,
            subject: Some(subject.to_owned()),
            client_id: None,
            source_ip: cx.source_ip.clone(),
            outcome: outcome.to_owned(),
            details: serde_json::json!({ "interaction": cx.interaction }),
            at: cx.now,
        };
        if let Err(e) = self.directory.audit().append(record).await {
            tracing::error!(error = %e, "audit append failed");
        }
    }
}

#[async_trait]
impl AuthMethod for MailOtpMethod {
    fn id(&self) -> MethodId {
        SEND_METHOD_ID
    }

    fn kind(&self) -> FactorKind {
        FactorKind::Possession
    }

    fn needs_subject(&self) -> bool {
        true
    }

    /// Offered to everyone: an account without an address is told so only after its password.
    async fn available(&self, _cx: &AuthContext, _subject: Option<&str>) -> Result<bool, AuthError> {
        Ok(true)
    }

    async fn begin(&self, cx: &AuthContext, subject: Option<&str>) -> Result<Step, AuthError> {
        let Some(subject) = subject else {
            return Ok(Step::Failed(Failure::Bad));
        };
        let account = self.directory.professionals().get_by_subject(subject).await?;
        let address = account.and_then(|a| a.email);
        let outcome = self.mail.send_code(cx, subject, address.as_deref()).await?;
        let (label, step) = match outcome {
            SendOutcome::Sent { masked_address, until, time, date } => {
                let state = serde_json::to_value(State { subject: subject.to_owned() })
                    .map_err(|e| AuthError::Internal(e.to_string()))?;
                let prompt = Prompt::CodeSent { masked_address, until, time, date };
                ("sent", Step::Continue { state: MethodState(state), prompt })
            }
            SendOutcome::NoAddress => ("no_address", Step::Failed(Failure::Unusable(Unusable::NotEnrolled))),
            SendOutcome::Throttled { retry_after } => {
                ("throttled", Step::Failed(Failure::Unusable(Unusable::Throttled { retry_after })))
            }
        };
        self.audit(cx, subject, label).await;
        Ok(step)
    }

    async fn submit(&self, cx: &AuthContext, state: MethodState, input: &Input) -> Result<Step, AuthError> {
        self.mail.submit(cx, state, input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_written_as_the_seed_shows() {
        // 2018-07-26T14:04:04Z is 16:04:04 in Paris (summer time).
        assert_eq!(format_expiry(1_532_613_844, "Europe/Paris"), "16:04:04 (UTC+0200) le 26/07/2018");
        assert_eq!(format_expiry(1_532_613_844, "UTC"), "14:04:04 (UTC+0000) le 26/07/2018");
    }

    #[test]
    fn addresses_are_masked() {
        assert_eq!(mask_address("jeanne.martin@example.org"), "j•••@example.org");
    }
}
