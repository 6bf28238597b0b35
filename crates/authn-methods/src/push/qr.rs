//! Sign-in by QR code with the phone app (the national portal's «Tigr» mode): the login page
//! shows a QR code holding a single-use challenge bound to the login, the relying party's
//! registered name and an expiry (two minutes); the enrolled phone scans it, asks the server
//! what it is for (trusted context: the service, the browser and address of the page that shows
//! it, the operator's warning), asks its PIN, and signs its decision. The page moves on once the
//! phone approved. The factor is the phone's key, unlocked by its PIN on the phone: possession and
//! knowledge, a login by itself, with no password typed.
//!
//! Without network, the app derives an identifier (the phone's offline ID, given at enrolment)
//! and a one-time password from the challenge and a secret shared at enrolment, with OCRA
//! (RFC 6287, suite [`OFFLINE_SUITE`]); clicking the QR code opens a form for them. The server
//! checks them once, within the QR code's life; a wrong code counts toward the lockout of that
//! offline ID like any wrong code.
//!
//! A scan works while pushes are blocked: the professional starts it on purpose.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use directory::AccountStatus;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use super::{KIND, PushApprovals, TrustedContext, internal, printable, random_id};
use crate::method::{
    AuthContext, AuthError, AuthMethod, FactorKind, FactorResult, Failure, Input, MethodId, MethodState, Prompt, Step,
};
use crate::push_request::DeviceError;

pub const METHOD_ID: MethodId = "qr";
/// The factor's method when the code was typed from the offline app.
pub const OFFLINE_METHOD_ID: &str = "qr-offline";
/// The offline codes' OCRA suite: HMAC-SHA256, 8 digits, the challenge as 32 hexadecimal digits.
pub const OFFLINE_SUITE: &str = "OCRA-1:HOTP-SHA256-8:QH32";
/// The `serial` under which a phone's offline ID is kept (unique, looked up at offline sign-in).
pub const OFFLINE_SERIAL_PREFIX: &str = "phone-";

/// How soon the page asks again whether the phone answered.
const POLL_AFTER_MS: u64 = 2000;

#[derive(Debug, Clone)]
pub struct QrSettings {
    /// How long a QR code can be scanned (2 minutes).
    pub validity: Duration,
}

impl Default for QrSettings {
    fn default() -> Self {
        QrSettings { validity: Duration::from_secs(120) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum QrState {
    Pending,
    Approved {
        subject: String,
        device: String,
    },
    Denied {
        subject: String,
    },
    /// Taken by the login (once).
    Used,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct QrChallenge {
    id: String,
    interaction: String,
    client_name: String,
    source_ip: Option<String>,
    user_agent: Option<String>,
    created_at: i64,
    expires_at: i64,
    #[serde(flatten)]
    state: QrState,
}

/// What the phone shows before it asks its PIN: all from the server, none from the QR code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QrView {
    pub challenge: String,
    #[serde(flatten)]
    pub context: TrustedContext,
}

/// What the phone decided about a QR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QrDecision {
    Approve,
    Deny,
}

#[derive(Deserialize)]
struct QrBody {
    action: String,
    challenge: String,
    #[serde(default)]
    decision: Option<QrDecision>,
}

/// The login's private state: which challenge the page shows.
#[derive(Serialize, Deserialize)]
struct State {
    challenge: String,
}

fn key(id: &str) -> String {
    crate::store_keys::QR_CHALLENGE.key(id)
}

/// `caducee-auth://login?…`: what the QR code and the link on the page hold.
fn payload(endpoint: &str, c: &QrChallenge) -> String {
    format!(
        "caducee-auth://login?server={}&challenge={}&client={}&expires_at={}",
        super::enrolment::percent_encode(endpoint),
        c.id,
        super::enrolment::percent_encode(&c.client_name),
        c.expires_at
    )
}

impl PushApprovals {
    async fn qr_read(&self, id: &str) -> Result<Option<(Vec<u8>, QrChallenge)>, AuthError> {
        // Challenge ids are 32 hexadecimal digits; anything else is no key of ours.
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let Some(raw) = self.store.get(&key(id)).await? else {
            return Ok(None);
        };
        let Ok(challenge) = serde_json::from_slice(&raw) else {
            return Ok(None);
        };
        Ok(Some((raw, challenge)))
    }

    /// Moves a challenge from what was read to `state`, if nobody moved it first.
    async fn qr_swap(&self, raw: &[u8], c: &QrChallenge, state: QrState, now: i64) -> Result<bool, AuthError> {
        let next = QrChallenge { state, ..c.clone() };
        let bytes = serde_json::to_vec(&next).map_err(internal)?;
        let left = Duration::from_secs(u64::try_from(c.expires_at - now).unwrap_or(0).max(1));
        Ok(self.store.compare_and_swap(&key(&c.id), raw, &bytes, left).await?)
    }

    /// A phone's request about a QR code it scanned: `{"action":"lookup","challenge"}` asks what
    /// it is for; `{"action":"answer","challenge","decision"}` approves or refuses it, once,
    /// before it expires. An approval signs in the phone's owner, whoever the page expected:
    /// the QR code names nobody.
    pub async fn qr_request(&self, token: &str, now: i64) -> Result<QrReply, DeviceError> {
        let (device, body): (_, QrBody) = self.device_request(token, now).await?;
        let subject = device.subject.clone().ok_or(DeviceError::Unauthorized)?;
        let (raw, c) = match self.qr_read(&body.challenge).await? {
            Some((raw, c)) if c.state == QrState::Pending && c.expires_at >= now => (raw, c),
            _ => return Err(DeviceError::NotFound("challenge")),
        };
        match (body.action.as_str(), body.decision) {
            ("lookup", _) => Ok(QrReply::Lookup(QrView {
                context: self.trusted_context(c.client_name, c.source_ip, c.user_agent, c.created_at, c.expires_at),
                challenge: c.id,
            })),
            ("answer", Some(decision)) => {
                let state = match decision {
                    QrDecision::Approve => QrState::Approved { subject: subject.clone(), device: device.id.clone() },
                    QrDecision::Deny => QrState::Denied { subject: subject.clone() },
                };
                // Of two answers racing, exactly one changes the pending code.
                if !self.qr_swap(&raw, &c, state, now).await? {
                    return Err(DeviceError::NotFound("challenge"));
                }
                let details =
                    serde_json::json!({ "interaction": c.interaction, "device": device.id, "client": c.client_name });
                let (event, outcome) = match decision {
                    QrDecision::Approve => ("qr_approved", "approved"),
                    QrDecision::Deny => ("qr_denied", "denied"),
                };
                self.audit(event, &subject, Some(&subject), c.source_ip.as_deref(), outcome, details, now).await;
                Ok(QrReply::Answered(decision))
            }
            ("answer", None) => Err(DeviceError::InvalidRequest("decision must be approve or deny")),
            _ => Err(DeviceError::InvalidRequest("action must be lookup or answer")),
        }
    }
}

/// What a phone's QR request led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrReply {
    Lookup(QrView),
    Answered(QrDecision),
}

/// The QR-code sign-in as a login method.
pub struct QrLogin {
    phone: Arc<PushApprovals>,
    settings: QrSettings,
}

impl QrLogin {
    pub fn new(phone: Arc<PushApprovals>, settings: QrSettings) -> Self {
        QrLogin { phone, settings }
    }

    fn pending(&self, c: &QrChallenge) -> Result<Step, AuthError> {
        let state = serde_json::to_value(State { challenge: c.id.clone() }).map_err(internal)?;
        Ok(Step::Pending {
            state: MethodState(state),
            prompt: Prompt::Qr { payload: payload(self.phone.endpoint(), c), expires_at: c.expires_at },
            expires_at: c.expires_at,
            poll_after_ms: POLL_AFTER_MS,
        })
    }

    /// This login's challenge, while it can still be answered.
    async fn live(&self, cx: &AuthContext, state: &MethodState) -> Result<Option<(Vec<u8>, QrChallenge)>, AuthError> {
        let Ok(State { challenge }) = serde_json::from_value::<State>(state.0.clone()) else {
            return Ok(None);
        };
        Ok(self
            .phone
            .qr_read(&challenge)
            .await?
            .filter(|(_, c)| c.interaction == cx.interaction && c.expires_at >= cx.now))
    }

    /// A factor for `subject`, if the account may sign in.
    async fn factor(
        &self,
        cx: &AuthContext,
        subject: String,
        method: &str,
        device: String,
        amr: &[&str],
    ) -> Result<Step, AuthError> {
        let account = self.phone.directory.professionals().get_by_subject(&subject).await?;
        if !account.is_some_and(|a| a.status == AccountStatus::Active) {
            return Ok(Step::Failed(Failure::Bad));
        }
        Ok(Step::Done(FactorResult {
            subject,
            method: method.to_owned(),
            credential: Some(device),
            kind: FactorKind::Possession,
            // The phone's PIN unlocked its key (or its offline secret): checked on the phone.
            also: vec![FactorKind::Knowledge],
            phishing_resistant: false,
            amr: amr.iter().map(|a| (*a).to_owned()).collect(),
            at: cx.now,
            level: None,
        }))
    }

    /// The offline form: the phone's offline ID (in `qr_id`, normalised by the engine, which
    /// counts a wrong code against it) and the code it derived from this QR code.
    async fn offline(&self, cx: &AuthContext, state: &MethodState, input: &Input) -> Result<Step, AuthError> {
        let Some((raw, c)) = self.live(cx, state).await? else {
            return Ok(Step::Failed(Failure::Expired));
        };
        if c.state != QrState::Pending {
            return Ok(Step::Failed(Failure::Bad));
        }
        let id: String = input.get("qr_id").unwrap_or("").chars().filter(|ch| !ch.is_whitespace()).collect();
        let typed: String = input.get("qr_code").unwrap_or("").chars().filter(|ch| !ch.is_whitespace()).collect();
        let serial = format!("{OFFLINE_SERIAL_PREFIX}{id}");
        let device = match self.phone.directory.authenticators().get_by_serial(&serial).await? {
            Some(d) if d.kind == KIND && d.active && !d.secret.is_empty() => d,
            _ => return Ok(Step::Failed(Failure::Bad)),
        };
        let Some(subject) = device.subject.clone() else {
            return Ok(Step::Failed(Failure::Bad));
        };
        let expected = offline_code(&device.secret, &c.id).map_err(internal)?;
        if !bool::from(expected.as_bytes().ct_eq(typed.as_bytes())) {
            return Ok(Step::Failed(Failure::Bad));
        }
        // Once: of two submissions of the right code, one takes the challenge.
        if !self.phone.qr_swap(&raw, &c, QrState::Used, cx.now).await? {
            return Ok(Step::Failed(Failure::Bad));
        }
        let details = serde_json::json!({ "interaction": c.interaction, "device": device.id, "client": c.client_name });
        self.phone
            .audit("qr_offline_used", &subject, Some(&subject), cx.source_ip.as_deref(), "approved", details, cx.now)
            .await;
        self.factor(cx, subject, OFFLINE_METHOD_ID, device.id, &["otp", "pin"]).await
    }
}

/// The code the phone app derives without network from challenge `challenge` (32 hexadecimal
/// digits) and the secret shared at enrolment.
pub fn offline_code(secret: &[u8], challenge: &str) -> Result<String, ocra::OcraError> {
    let suite = ocra::Suite::parse(OFFLINE_SUITE)?;
    suite.compute(secret, &ocra::DataInput { counter: None, question: challenge, password_hash: None })
}

#[async_trait]
impl AuthMethod for QrLogin {
    fn id(&self) -> MethodId {
        METHOD_ID
    }

    fn kind(&self) -> FactorKind {
        FactorKind::Possession
    }

    fn also_proves(&self) -> &'static [FactorKind] {
        &[FactorKind::Knowledge]
    }

    fn needs_subject(&self) -> bool {
        false
    }

    fn identifier_field(&self) -> Option<&'static str> {
        Some("qr_id")
    }

    fn identifier_namespace(&self) -> Option<&'static str> {
        Some("qr")
    }

    async fn available(&self, _cx: &AuthContext, _subject: Option<&str>) -> Result<bool, AuthError> {
        Ok(true)
    }

    /// A new QR code for this login (a previous one of the same login stays until it expires,
    /// and can no longer sign in: the login follows the newest).
    async fn begin(&self, cx: &AuthContext, _subject: Option<&str>) -> Result<Step, AuthError> {
        let validity = i64::try_from(self.settings.validity.as_secs()).unwrap_or(120);
        let c = QrChallenge {
            id: random_id(),
            interaction: cx.interaction.clone(),
            client_name: cx.client_name.chars().take(100).collect(),
            source_ip: cx.source_ip.clone(),
            user_agent: cx.user_agent.as_deref().map(printable),
            created_at: cx.now,
            expires_at: cx.now + validity,
            state: QrState::Pending,
        };
        let bytes = serde_json::to_vec(&c).map_err(internal)?;
        self.phone.store.put(&key(&c.id), &bytes, self.settings.validity).await?;
        self.pending(&c)
    }

    /// The offline form (`qr_id`, `qr_code`), or «J'ai scanné le code»: the same as asking.
    async fn submit(&self, cx: &AuthContext, state: MethodState, input: &Input) -> Result<Step, AuthError> {
        if input.get("qr_code").is_some_and(|v| !v.trim().is_empty()) {
            return self.offline(cx, &state, input).await;
        }
        self.poll(cx, state).await
    }

    async fn poll(&self, cx: &AuthContext, state: MethodState) -> Result<Step, AuthError> {
        let Some((raw, c)) = self.live(cx, &state).await? else {
            return Ok(Step::Failed(Failure::Expired));
        };
        match c.state.clone() {
            QrState::Pending => self.pending(&c),
            QrState::Denied { .. } => Ok(Step::Failed(Failure::Denied)),
            QrState::Used => Ok(Step::Failed(Failure::Expired)),
            QrState::Approved { subject, device } => {
                // The approval signs in once.
                if !self.phone.qr_swap(&raw, &c, QrState::Used, cx.now).await? {
                    return Ok(Step::Failed(Failure::Expired));
                }
                self.factor(cx, subject, METHOD_ID, device, &["swk", "pin"]).await
            }
        }
    }

    async fn waiting(&self, cx: &AuthContext, state: &MethodState) -> Result<bool, AuthError> {
        Ok(self.live(cx, state).await?.is_some_and(|(_, c)| c.state == QrState::Pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of docs/authentication.md, computed apart from the `ocra` crate (HMAC-SHA256
    /// over the suite, a zero byte and the challenge padded to 128 bytes; HOTP truncation).
    #[test]
    fn the_documented_offline_example_holds() {
        let secret: Vec<u8> = (0u8..32).collect();
        assert_eq!(offline_code(&secret, "00112233445566778899aabbccddeeff").ok().as_deref(), Some("34997040"));
        assert!(offline_code(&secret, "not hexadecimal").is_err());
    }
}
