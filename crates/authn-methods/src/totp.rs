//! Time-based one-time passwords (RFC 6238) from phone apps such as FreeOTP and Google
//! Authenticator: enrolment (an `otpauth://` URI) and verification with one step of drift.
//!
//! A code is accepted once: the accepted time step is recorded with a conditional update that
//! only moves forward (`advance_counter`), so a replay, even on another node, finds it used.

use async_trait::async_trait;
use directory::{AuthenticatorRecord, Directory, NewAuthenticator};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, Secret, TOTP};
use zeroize::Zeroizing;

use crate::method::{
    AuthContext, AuthError, AuthMethod, FactorKind, FactorResult, Failure, Input, MethodId, MethodState, Prompt, Step,
};

pub const METHOD_ID: MethodId = "totp";
pub const KIND: &str = "totp";

/// Parameters of a TOTP authenticator (what the `otpauth://` URI announces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpParams {
    pub algorithm: TotpAlgorithm,
    pub digits: usize,
    pub period: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TotpAlgorithm {
    SHA1,
    SHA256,
    SHA512,
}

impl Default for TotpParams {
    /// What every authenticator app supports: SHA-1, 6 digits, 30 seconds.
    fn default() -> Self {
        TotpParams { algorithm: TotpAlgorithm::SHA1, digits: 6, period: 30 }
    }
}

fn algorithm(a: TotpAlgorithm) -> Algorithm {
    match a {
        TotpAlgorithm::SHA1 => Algorithm::SHA1,
        TotpAlgorithm::SHA256 => Algorithm::SHA256,
        TotpAlgorithm::SHA512 => Algorithm::SHA512,
    }
}

fn build(params: TotpParams, secret: &[u8], issuer: &str, account: &str) -> Result<TOTP, AuthError> {
    TOTP::new(
        algorithm(params.algorithm),
        params.digits,
        1,
        params.period,
        secret.to_vec(),
        Some(issuer.replace(':', " ")),
        account.replace(':', " "),
    )
    .map_err(|e| AuthError::Internal(format!("TOTP parameters: {e}")))
}

/// A new TOTP enrolment: the URI to show (QR code or text) and the authenticator created.
/// `Debug` shows neither the seed nor the URI that carries it.
pub struct TotpEnrolment {
    pub authenticator: AuthenticatorRecord,
    pub otpauth_uri: Zeroizing<String>,
    pub secret_base32: Zeroizing<String>,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrolment")
            .field("authenticator", &self.authenticator)
            .field("otpauth_uri", &"<redacted>")
            .field("secret_base32", &"<redacted>")
            .finish()
    }
}

/// Enrols a TOTP app for `subject`. `active: false` waits for a first valid code
/// ([`activate_with_code`]); the operator CLI enrols active at once.
pub async fn enroll(
    directory: &Directory,
    subject: &str,
    account_label: &str,
    issuer_name: &str,
    active: bool,
    now: i64,
) -> Result<TotpEnrolment, AuthError> {
    let mut secret = Zeroizing::new(vec![0u8; 20]);
    rand::rng().fill_bytes(&mut secret);
    let params = TotpParams::default();
    let totp = build(params, &secret, issuer_name, account_label)?;
    let uri = Zeroizing::new(totp.get_url());
    let base32 = Zeroizing::new(Secret::Raw(secret.to_vec()).to_encoded().to_string());
    let authenticator = directory
        .authenticators()
        .create(NewAuthenticator {
            subject: Some(subject.to_owned()),
            kind: KIND.to_owned(),
            label: format!("{issuer_name} ({account_label})"),
            serial: None,
            secret,
            params: serde_json::to_value(params).map_err(|e| AuthError::Internal(e.to_string()))?,
            active,
            // The step before the enrolment: any code from now on is new.
            counter: now / i64::try_from(params.period).unwrap_or(30) - 2,
        })
        .await?;
    Ok(TotpEnrolment { authenticator, otpauth_uri: uri, secret_base32: base32 })
}

/// Checks `code` against one authenticator at `now`; on success records the step so that the
/// code cannot be used again. Returns whether the code was accepted.
pub async fn verify_code(
    directory: &Directory,
    record: &AuthenticatorRecord,
    code: &str,
    now: i64,
) -> Result<bool, AuthError> {
    let params: TotpParams = serde_json::from_value(record.params.clone()).unwrap_or_default();
    if code.len() != params.digits || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(false);
    }
    let totp = build(params, &record.secret, "x", "x")?;
    let period = i64::try_from(params.period).unwrap_or(30).max(1);
    let current = now / period;
    let mut matched = None;
    // Every candidate is computed and compared, so the time taken does not say which matched.
    for step in [current - 1, current, current + 1] {
        let expected = totp.generate(u64::try_from(step * period).unwrap_or(0));
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            matched = Some(step);
        }
    }
    let Some(step) = matched else {
        return Ok(false);
    };
    if step <= record.counter {
        return Ok(false);
    }
    Ok(directory.authenticators().advance_counter(&record.id, step, now).await?)
}

/// Activates a pending enrolment with its first correct code.
pub async fn activate_with_code(
    directory: &Directory,
    authenticator_id: &str,
    code: &str,
    now: i64,
) -> Result<bool, AuthError> {
    let Some(record) = directory.authenticators().get(authenticator_id).await? else {
        return Ok(false);
    };
    if record.kind != KIND || record.active {
        return Ok(false);
    }
    if !verify_code(directory, &record, code, now).await? {
        return Ok(false);
    }
    directory.authenticators().activate(authenticator_id).await?;
    Ok(true)
}

#[derive(Serialize, Deserialize)]
struct State {
    subject: String,
}

pub struct TotpMethod {
    directory: Directory,
}

impl TotpMethod {
    pub fn new(directory: Directory) -> Self {
        TotpMethod { directory }
    }

    async fn active_for(&self, subject: &str) -> Result<Vec<AuthenticatorRecord>, AuthError> {
        let all = self.directory.authenticators().list_for_subject(subject).await?;
        Ok(all.into_iter().filter(|a| a.kind == KIND && a.active).collect())
    }
}

#[async_trait]
impl AuthMethod for TotpMethod {
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
            Some(s) => Ok(!self.active_for(s).await?.is_empty()),
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
        for record in self.active_for(&subject).await? {
            if verify_code(&self.directory, &record, &code, cx.now).await? {
                return Ok(Step::Done(FactorResult {
                    subject,
                    method: METHOD_ID.to_owned(),
                    credential: Some(record.id.clone()),
                    kind: FactorKind::Possession,
                    also: Vec::new(),
                    phishing_resistant: false,
                    amr: vec!["otp".to_owned()],
                    at: cx.now,
                    level: None,
                }));
            }
        }
        Ok(Step::Failed(Failure::Bad))
    }
}

/// The current code of an authenticator (for tests and the operator's own checks).
pub fn current_code(secret: &[u8], params: TotpParams, now: i64) -> Result<String, AuthError> {
    let totp = build(params, secret, "x", "x")?;
    Ok(totp.generate(u64::try_from(now).unwrap_or(0)))
}
