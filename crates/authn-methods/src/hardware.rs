//! OTP tokens («boîtier OTP»): seeds imported from the vendor's PSKC file, assigned to a
//! professional, verified with a look-ahead window (HOTP) or the token's tracked clock drift
//! (TOTP). A code is never accepted twice: the counter (HOTP: next expected value; TOTP: last
//! accepted step) only moves forward, with a conditional update that one node at most wins.
//!
//! Resynchronisation: when a token has drifted beyond the window (many presses without logging
//! in, or a clock running off), the person types two consecutive codes separated by a space in
//! the one-time-code field (`otp`, e.g. «12345678 87654321»); they are searched in a much wider
//! window, and the token is resynchronised when both match in sequence. One form field keeps the
//! login form's contract unchanged for every client that drives it.
//!
//! Directory records: kind [`KIND_HOTP`] (`"hotp"`) or [`KIND_TOTP`] (`"totp-token"`, distinct
//! from the phone apps' `"totp"`); `serial` the device's serial number; `counter` the next HOTP
//! counter expected, or the last TOTP step accepted (-1 before the first); `params` a
//! [`TokenParams`] in JSON, e.g. `{"digits":8,"algorithm":"SHA1","period":0,"t0":0,"drift":0,
//! "manufacturer":"Acme","key_id":"12345678","not_after":1830297600}`.

use async_trait::async_trait;
use directory::{AuthenticatorRecord, Directory, DirectoryError, NewAuthenticator};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::method::{
    AuthContext, AuthError, AuthMethod, FactorKind, FactorResult, Failure, Input, MethodId, MethodState, Prompt, Step,
};
use crate::otp::{HashAlgorithm, TokenKind, hotp, time_step};
use crate::pskc::PskcKey;

pub const METHOD_ID: MethodId = "hwk-otp";
/// Authenticator kinds of OTP tokens in the directory (TOTP apps are `totp`).
pub const KIND_HOTP: &str = "hotp";
pub const KIND_TOTP: &str = "totp-token";
/// RFC 4226 R6: at least 128 bits of seed.
const MIN_SECRET_BYTES: usize = 16;

/// Parameters of a token, kept with it (JSON in the directory).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenParams {
    pub digits: u32,
    pub algorithm: HashAlgorithm,
    /// TOTP: step in seconds, origin, and the drift (in steps) observed so far.
    #[serde(default)]
    pub period: u64,
    #[serde(default)]
    pub t0: i64,
    #[serde(default)]
    pub drift: i64,
    #[serde(default)]
    pub manufacturer: Option<String>,
    #[serde(default)]
    pub key_id: String,
    /// Validity from the vendor's file (Unix seconds): no code is accepted outside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Windows {
    /// HOTP: how many counter values ahead a single code is searched.
    pub look_ahead: u64,
    /// How far two consecutive codes are searched to resynchronise (HOTP counters; TOTP steps).
    pub resync_hotp: u64,
    pub resync_totp: i64,
}

impl Default for Windows {
    fn default() -> Self {
        Windows { look_ahead: 10, resync_hotp: 1000, resync_totp: 20 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenAdminError {
    #[error("a token with serial {0} already exists")]
    Duplicate(String),
    #[error("serial {0} is on several keys of this file: Caducée holds one key per token")]
    DuplicateInFile(String),
    #[error("token {serial}: its key expired on {expired}")]
    Expired { serial: String, expired: String },
    #[error("token {serial} is assigned to someone else: unassign it first")]
    AlreadyAssigned { serial: String },
    #[error("token {0}: its seed is shorter than 128 bits, too weak to use")]
    WeakSecret(String),
    #[error("no token with serial {0}")]
    UnknownSerial(String),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("{0}")]
    Internal(String),
}

fn kind_name(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Hotp => KIND_HOTP,
        TokenKind::Totp => KIND_TOTP,
    }
}

/// Imports every key of a parsed container as an unassigned, inactive token, checking expiry
/// against the system clock (see [`import_at`]).
pub async fn import(directory: &Directory, keys: Vec<PskcKey>) -> Result<Vec<AuthenticatorRecord>, TokenAdminError> {
    import_at(directory, keys, jiff::Timestamp::now().as_second()).await
}

/// Imports every key of a parsed container as an unassigned, inactive token. Nothing is kept
/// if any serial already exists (or appears twice in the file), any seed is too short, or any
/// key has expired at `now`.
pub async fn import_at(
    directory: &Directory,
    keys: Vec<PskcKey>,
    now: i64,
) -> Result<Vec<AuthenticatorRecord>, TokenAdminError> {
    let mut seen = std::collections::HashSet::new();
    for k in &keys {
        if !seen.insert(k.serial.as_str()) {
            return Err(TokenAdminError::DuplicateInFile(k.serial.clone()));
        }
        if directory.authenticators().get_by_serial(&k.serial).await?.is_some() {
            return Err(TokenAdminError::Duplicate(k.serial.clone()));
        }
        if k.secret.len() < MIN_SECRET_BYTES {
            return Err(TokenAdminError::WeakSecret(k.serial.clone()));
        }
        if let Some(end) = k.not_after.filter(|end| *end <= now) {
            let expired = jiff::Timestamp::from_second(end).map(|t| t.to_string()).unwrap_or_else(|_| end.to_string());
            return Err(TokenAdminError::Expired { serial: k.serial.clone(), expired });
        }
    }
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        match create(directory, k).await {
            Ok(record) => out.push(record),
            Err(e) => {
                // No transaction across rows here: take back what this import wrote, so that the
                // operator can fix the cause and run the same file again.
                for record in &out {
                    if let Err(undo) = directory.authenticators().delete(&record.id).await {
                        tracing::error!(error = %undo, id = %record.id, "could not undo a partial token import");
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(out)
}

async fn create(directory: &Directory, k: PskcKey) -> Result<AuthenticatorRecord, TokenAdminError> {
    let params = TokenParams {
        digits: k.digits,
        algorithm: k.algorithm,
        period: if k.kind == TokenKind::Totp { k.time_step } else { 0 },
        t0: k.t0,
        drift: k.drift,
        manufacturer: k.manufacturer.clone(),
        key_id: k.key_id.clone(),
        not_before: k.not_before,
        not_after: k.not_after,
    };
    let label = match &k.manufacturer {
        Some(m) => format!("{m} {}", k.serial),
        None => k.serial.clone(),
    };
    directory
        .authenticators()
        .create(NewAuthenticator {
            subject: None,
            kind: kind_name(k.kind).to_owned(),
            label,
            serial: Some(k.serial.clone()),
            secret: k.secret.clone(),
            params: serde_json::to_value(&params).map_err(|e| TokenAdminError::Internal(e.to_string()))?,
            active: false,
            // HOTP: the next counter the token will show; TOTP: no step accepted yet.
            counter: match k.kind {
                TokenKind::Hotp => i64::try_from(k.counter).unwrap_or(i64::MAX),
                TokenKind::Totp => -1,
            },
        })
        .await
        .map_err(|e| match e {
            DirectoryError::Conflict(_) => TokenAdminError::Duplicate(k.serial.clone()),
            other => other.into(),
        })
}

/// Hands the token `serial` to `subject` and activates it. A token held by someone else must be
/// taken back first, so that a typo in a serial cannot silently move someone's token.
pub async fn assign(directory: &Directory, serial: &str, subject: &str) -> Result<(), TokenAdminError> {
    let t = directory
        .authenticators()
        .get_by_serial(serial)
        .await?
        .filter(is_token)
        .ok_or_else(|| TokenAdminError::UnknownSerial(serial.into()))?;
    if t.subject.as_deref().is_some_and(|holder| holder != subject) {
        return Err(TokenAdminError::AlreadyAssigned { serial: serial.into() });
    }
    directory.authenticators().assign(&t.id, Some(subject.to_owned())).await?;
    directory.authenticators().activate(&t.id).await?;
    Ok(())
}

/// Takes the token back (lost, returned): it no longer signs anyone in.
pub async fn unassign(directory: &Directory, serial: &str) -> Result<(), TokenAdminError> {
    let t = directory
        .authenticators()
        .get_by_serial(serial)
        .await?
        .filter(is_token)
        .ok_or_else(|| TokenAdminError::UnknownSerial(serial.into()))?;
    directory.authenticators().deactivate(&t.id).await?;
    directory.authenticators().assign(&t.id, None).await?;
    Ok(())
}

/// Whether a directory record is an OTP token (and not a phone app or another authenticator).
pub fn is_token(record: &AuthenticatorRecord) -> bool {
    record.kind == KIND_HOTP || record.kind == KIND_TOTP
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub struct HardwareTokenMethod {
    directory: Directory,
    windows: Windows,
}

#[derive(Serialize, Deserialize)]
struct State {
    subject: String,
}

impl HardwareTokenMethod {
    pub fn new(directory: Directory, windows: Windows) -> Self {
        HardwareTokenMethod { directory, windows }
    }

    async fn tokens_of(&self, subject: &str) -> Result<Vec<AuthenticatorRecord>, AuthError> {
        let all = self.directory.authenticators().list_for_subject(subject).await?;
        Ok(all.into_iter().filter(|a| a.active && is_token(a)).collect())
    }

    /// Checks one or two codes against a token; on success moves its counter (and drift) on.
    pub async fn verify(&self, token: &AuthenticatorRecord, input: &str, now: i64) -> Result<bool, AuthError> {
        let Ok(params) = serde_json::from_value::<TokenParams>(token.params.clone()) else {
            return Ok(false);
        };
        if params.not_before.is_some_and(|t| now < t) || params.not_after.is_some_and(|t| now >= t) {
            return Ok(false);
        }
        let codes: Vec<&str> = input.split_whitespace().collect();
        let digits = usize::try_from(params.digits).unwrap_or(6);
        if codes.is_empty()
            || codes.len() > 2
            || codes.iter().any(|c| c.len() != digits || !c.bytes().all(|b| b.is_ascii_digit()))
        {
            return Ok(false);
        }
        match token.kind.as_str() {
            KIND_HOTP => self.verify_hotp(token, &params, &codes, now).await,
            KIND_TOTP => self.verify_totp(token, &params, &codes, now).await,
            _ => Ok(false),
        }
    }

    async fn verify_hotp(
        &self,
        token: &AuthenticatorRecord,
        p: &TokenParams,
        codes: &[&str],
        now: i64,
    ) -> Result<bool, AuthError> {
        let start = u64::try_from(token.counter).unwrap_or(0);
        let code_at = |c: u64| hotp(&token.secret, c, p.digits, p.algorithm);
        let found = if codes.len() == 1 {
            (start..start + self.windows.look_ahead).find(|c| same(&code_at(*c), codes[0])).map(|c| c + 1)
        } else {
            (start..start + self.windows.resync_hotp)
                .find(|c| same(&code_at(*c), codes[0]) && same(&code_at(c + 1), codes[1]))
                .map(|c| c + 2)
        };
        match found {
            Some(next) => Ok(self
                .directory
                .authenticators()
                .advance_counter(&token.id, i64::try_from(next).unwrap_or(i64::MAX), now)
                .await?),
            None => Ok(false),
        }
    }

    async fn verify_totp(
        &self,
        token: &AuthenticatorRecord,
        p: &TokenParams,
        codes: &[&str],
        now: i64,
    ) -> Result<bool, AuthError> {
        let period = p.period.max(1);
        // The origin and the drift come from the vendor's file (then from what the token showed):
        // any `i64`. Step arithmetic saturates, so that an absurd value finds no code instead of
        // overflowing.
        let expected = time_step(now, p.t0, period).saturating_add(p.drift);
        let code_at = |s: i64| hotp(&token.secret, u64::try_from(s).unwrap_or(0), p.digits, p.algorithm);
        let (window, needed) = if codes.len() == 1 { (1, 1) } else { (self.windows.resync_totp, 2) };
        let found = (expected.saturating_sub(window)..=expected.saturating_add(window)).find(|s| {
            *s >= 0 && same(&code_at(*s), codes[0]) && (needed == 1 || same(&code_at(s.saturating_add(1)), codes[1]))
        });
        let Some(step) = found else {
            return Ok(false);
        };
        let last = step.saturating_add(i64::from(needed == 2));
        if last <= token.counter || !self.directory.authenticators().advance_counter(&token.id, last, now).await? {
            return Ok(false);
        }
        // Follow the token's clock: the next codes are searched around where the last one shown
        // (the second of a resynchronising pair) was.
        let observed = last.saturating_sub(time_step(now, p.t0, period));
        if observed != p.drift {
            let updated = TokenParams { drift: observed, ..p.clone() };
            let value = serde_json::to_value(&updated).map_err(|e| AuthError::Internal(e.to_string()))?;
            self.directory.authenticators().set_params(&token.id, &value).await?;
        }
        Ok(true)
    }
}

#[async_trait]
impl AuthMethod for HardwareTokenMethod {
    fn id(&self) -> MethodId {
        METHOD_ID
    }

    fn kind(&self) -> FactorKind {
        FactorKind::Possession
    }

    fn needs_subject(&self) -> bool {
        true
    }

    async fn available(&self, _cx: &AuthContext, subject: Option<&str>) -> Result<bool, AuthError> {
        match subject {
            Some(s) => Ok(!self.tokens_of(s).await?.is_empty()),
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
        let typed = input.get("otp").unwrap_or("");
        for token in self.tokens_of(&subject).await? {
            if self.verify(&token, typed, cx.now).await? {
                return Ok(Step::Done(FactorResult {
                    subject,
                    method: METHOD_ID.to_owned(),
                    credential: Some(token.id.clone()),
                    kind: FactorKind::Possession,
                    also: Vec::new(),
                    phishing_resistant: false,
                    amr: vec!["otp".to_owned(), "hwk".to_owned()],
                    at: cx.now,
                    level: None,
                }));
            }
        }
        Ok(Step::Failed(Failure::Bad))
    }
}
