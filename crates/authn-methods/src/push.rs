//! Push approval on the professional's phone, built against account takeover:
//! - a push is only ever sent after the right password (never on a bare, public identifier);
//! - it lives 60 seconds, one at a time per account, and a few per quarter hour at most;
//! - the login page shows a two-digit number that must be typed on the phone to approve, so
//!   that a tired professional cannot approve an impostor's login by reflex;
//! - «ce n'était pas moi» blocks pushes for the account (until the professional, in the wallet,
//!   or an administrator lifts the block), freezes phone enrolment for a day, raises an alert
//!   for administrators, and the caller logs the account out everywhere;
//! - a source address gets a few pushes an hour whatever the account (no spraying over the
//!   public directory), and the phone shows who asks, from where, with the operator's warning.
//!
//! The phone holds a P-256 key generated at enrolment (`push/enrolment.rs`); everything it
//! says is a signed request (see [`crate::push_request`]). It learns of pending approvals by
//! asking, so no third-party push service is needed; a gateway may wake it
//! ([`crate::push_notify`]).

use std::sync::Arc;
use std::time::Duration;

use directory::{AuditEvent, Directory};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use session_store::{Rate, RateLimiter, SessionStore};

use crate::method::{AuthContext, AuthError, FactorKind, FactorResult};
use crate::push_notify::{PushNotifier, SilenceSettings, WakeUpOutcome, WebhookSettings};
use crate::push_request::{DeviceError, DevicePublicKey, RequestCheck};

mod context;
mod decoupled;
mod device_unblock;
mod enrolment;
mod login;
mod phone;
pub mod qr;

pub use context::TrustedContext;
pub use decoupled::DecoupledPush;
pub use enrolment::{EnrolledDevice, EnrolmentStart, PushEnrolment};
pub use login::PushMethod;

pub const METHOD_ID: &str = "push";
/// The authenticator kind of an enrolled push phone.
pub const KIND: &str = "push";

#[derive(Debug, Clone)]
pub struct PushSettings {
    /// How long a push can be answered.
    pub validity: Duration,
    /// Pushes sent to one account per window.
    pub per_account_max: u64,
    pub per_account_window: Duration,
    /// How long an enrolment code shown in the wallet stays usable.
    pub enrolment_validity: Duration,
    /// How far a phone's clock may be from ours.
    pub clock_skew: Duration,
    /// Pushes asked from one source address (/64 for IPv6), whatever the account, per window:
    /// one attacker holding passwords cannot spray pushes over the public directory.
    pub per_address_max: u64,
    pub per_address_window: Duration,
    /// Pushes a relying party asks by CIBA (decoupled logins), whatever the account, per
    /// window: its credentials, if stolen, cannot spray pushes over the public directory.
    pub per_client_max: u64,
    pub per_client_window: Duration,
    /// After «ce n'était pas moi», no new phone can be enrolled on the account for this long
    /// (an impostor's next move is to enrol their own).
    pub enrolment_freeze: Duration,
    /// The operator's warning, shown by the phone with every request.
    pub warning: String,
    /// When the phone stops being woken (push bombing).
    pub silence: SilenceSettings,
    /// The longest a phone's list request is held open waiting for a request (long poll).
    pub max_wait: Duration,
}

/// The warning phones show with every request, unless the operator sets another.
pub const DEFAULT_WARNING: &str = "Nous ne vous demanderons jamais ce code par téléphone, courriel ou SMS. \
     Si vous n'êtes pas en train de vous connecter, répondez « Ce n'était pas moi ».";

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            validity: Duration::from_secs(60),
            per_account_max: 5,
            per_account_window: Duration::from_secs(900),
            enrolment_validity: Duration::from_secs(600),
            clock_skew: Duration::from_secs(60),
            per_address_max: 10,
            per_address_window: Duration::from_secs(3600),
            per_client_max: 600,
            per_client_window: Duration::from_secs(3600),
            enrolment_freeze: Duration::from_secs(24 * 3600),
            warning: DEFAULT_WARNING.to_owned(),
            silence: SilenceSettings::default(),
            max_wait: Duration::from_secs(30),
        }
    }
}

/// What asking for a push led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushSend {
    /// Sent: the login page shows `number`, the phone must type it before `expires_at`.
    /// `silenced`: the phone was not woken (auto-silence); the request waits in the app.
    Sent { challenge: String, number: String, expires_at: i64, silenced: bool },
    /// The account has no push phone.
    NoDevice,
    /// Pushes are blocked for this account («ce n'était pas moi», or the wallet's switch).
    Blocked,
    /// Too many pushes: try again after `retry_after` seconds.
    Throttled { retry_after: u64 },
}

/// Where a push stands, as the login page asks.
#[derive(Debug, Clone, PartialEq)]
pub enum PushStatus {
    Waiting {
        number: String,
        expires_at: i64,
    },
    Approved(FactorResult),
    /// Refused on the phone, or approved with the wrong number.
    Denied,
    /// «Ce n'était pas moi».
    NotMe,
    /// Nobody answered in time (or the push was replaced by a newer one).
    Expired,
}

/// What the phone decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Deny,
    NotMe,
}

/// What an answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerOutcome {
    Approved,
    /// Refused, or the typed number was wrong (the push is spent either way).
    Denied {
        wrong_number: bool,
    },
    /// Pushes are now blocked for `subject`; the caller must end its sessions everywhere.
    NotMe {
        subject: String,
    },
}

/// A pending approval as the phone sees it, with what lets the professional tell their own
/// login from an impostor's: the relying party's registered name, when and from where (address,
/// browser and system as the browser announced them), and the operator's warning. Never the
/// number: it must come from the login page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingView {
    pub id: String,
    #[serde(flatten)]
    pub context: TrustedContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ChallengeState {
    Pending,
    Approved,
    Denied,
    NotMe,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Challenge {
    id: String,
    subject: String,
    device: String,
    number: String,
    interaction: String,
    client_name: String,
    source_ip: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    created_at: i64,
    expires_at: i64,
    state: ChallengeState,
    /// Asked by a relying party (CIBA), not from a login page: no password came before, and
    /// the number to type is the one the relying party shows (its binding message).
    #[serde(default)]
    decoupled: bool,
}

/// What a push is sent for, and what limits it.
struct NewChallenge<'a> {
    subject: &'a str,
    interaction: String,
    client_name: &'a str,
    number: String,
    source_ip: Option<String>,
    user_agent: Option<String>,
    /// The limiter beside the account's, and the key it counts under.
    source_limit: (&'a RateLimiter, String, &'static str),
    decoupled: bool,
    now: i64,
}

fn challenge_key(id: &str) -> String {
    crate::store_keys::PUSH_CHALLENGE.key(id)
}

fn current_key(subject: &str) -> String {
    crate::store_keys::PUSH_CURRENT.key(subject)
}

fn random_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The push approval service: sends pushes for the login engine, answers the phones.
pub struct PushApprovals {
    directory: Directory,
    store: Arc<dyn SessionStore>,
    settings: PushSettings,
    /// Pushes sent to one account per window.
    per_account: RateLimiter,
    /// Pushes asked from one source address per window, across accounts.
    per_address: RateLimiter,
    /// Pushes asked by one relying party (CIBA) per window, across accounts.
    per_client: RateLimiter,
    /// Wakes the phone (webhook), or keeps quiet.
    notifier: PushNotifier,
    /// `{issuer}/push/v1`: the audience of every phone request, and where phones find us.
    endpoint: String,
}

impl PushApprovals {
    pub fn new(directory: Directory, store: Arc<dyn SessionStore>, issuer: &str, settings: PushSettings) -> Self {
        let per_account = RateLimiter::new(
            store.clone(),
            crate::store_keys::LIMIT_PUSHES_PER_ACCOUNT,
            Rate::new(settings.per_account_max, settings.per_account_window),
        );
        let per_address = RateLimiter::new(
            store.clone(),
            crate::store_keys::LIMIT_PUSHES_PER_ADDRESS,
            Rate::new(settings.per_address_max, settings.per_address_window),
        );
        let per_client = RateLimiter::new(
            store.clone(),
            crate::store_keys::LIMIT_PUSHES_PER_CLIENT,
            Rate::new(settings.per_client_max, settings.per_client_window),
        );
        let notifier = PushNotifier::new(store.clone(), settings.silence);
        PushApprovals {
            per_client,
            notifier,
            directory,
            store,
            settings,
            per_account,
            per_address,
            endpoint: format!("{}/push/v1", issuer.trim_end_matches('/')),
        }
    }

    /// Wakes phones through a push gateway ([`crate::push_notify`]).
    pub fn with_webhook(mut self, webhook: WebhookSettings) -> Result<Self, AuthError> {
        self.notifier = self.notifier.with_webhook(webhook)?;
        Ok(self)
    }

    pub fn settings(&self) -> &PushSettings {
        &self.settings
    }

    /// The device API's base URL (also the `aud` every phone request must carry).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The subject's push phone, if enrolled and active (the oldest, should two have raced).
    async fn device_of(&self, subject: &str) -> Result<Option<directory::AuthenticatorRecord>, AuthError> {
        let all = self.directory.authenticators().list_for_subject(subject).await?;
        Ok(all.into_iter().find(|a| a.kind == KIND && a.active))
    }

    /// Whether pushes are blocked for `subject`, and since when.
    pub async fn block_of(&self, subject: &str) -> Result<Option<directory::PushBlock>, AuthError> {
        Ok(self.directory.push_blocks().get(subject).await?)
    }

    /// Blocks pushes (the wallet's switch, an admin, or the phone's «ce n'était pas moi»).
    /// Audited; returns whether this call set the block.
    pub async fn block(&self, subject: &str, reason: &str, actor: Option<&str>, now: i64) -> Result<bool, AuthError> {
        let set = self.directory.push_blocks().block(subject, reason, actor, now).await?;
        if set {
            let details = serde_json::json!({ "reason": reason });
            self.audit("push_blocked", subject, actor, None, "blocked", details, now).await;
        }
        // A push still pending dies with the block: its login page reads it as refused.
        if let Some(id) = self.store.take(&current_key(subject)).await? {
            let key = challenge_key(&String::from_utf8_lossy(&id));
            if let Some(raw) = self.store.get(&key).await?
                && let Ok(ch) = serde_json::from_slice::<Challenge>(&raw)
                && ch.state == ChallengeState::Pending
            {
                let denied =
                    serde_json::to_vec(&Challenge { state: ChallengeState::Denied, ..ch }).map_err(internal)?;
                // Lost only to an answer that came first, which then stands.
                self.store.compare_and_swap(&key, &raw, &denied, self.settings.validity).await?;
            }
        }
        Ok(set)
    }

    /// Lifts a push block; audited with who did it. Returns whether there was one.
    pub async fn unblock(&self, subject: &str, actor: Option<&str>, now: i64) -> Result<bool, AuthError> {
        self.unblock_with(subject, actor, serde_json::Value::Null, now).await
    }

    /// Lifts the block, audited with `details` (who lifted it, from where).
    async fn unblock_with(
        &self,
        subject: &str,
        actor: Option<&str>,
        details: serde_json::Value,
        now: i64,
    ) -> Result<bool, AuthError> {
        let lifted = self.directory.push_blocks().unblock(subject).await?;
        if lifted {
            self.audit("push_unblocked", subject, actor, None, "unblocked", details, now).await;
        }
        Ok(lifted)
    }

    /// Sends a push to `subject`'s phone. The caller has checked the password: this is never
    /// reachable with an identifier alone.
    pub async fn send(&self, cx: &AuthContext, subject: &str, client_name: &str) -> Result<PushSend, AuthError> {
        self.send_challenge(NewChallenge {
            subject,
            interaction: cx.interaction.clone(),
            client_name,
            number: format!("{:02}", rand::rng().random_range(10..100u32)),
            source_ip: cx.source_ip.clone(),
            user_agent: cx.user_agent.as_deref().map(printable),
            source_limit: (&self.per_address, session_store::source_subject(cx.address()), "address"),
            decoupled: false,
            now: cx.now,
        })
        .await
    }

    async fn send_challenge(&self, new: NewChallenge<'_>) -> Result<PushSend, AuthError> {
        let subject = new.subject;
        let (limiter, limit_key, limit_name) = new.source_limit;
        let audit_ip = new.source_ip.clone();
        let refused = |reason: &'static str| {
            let details = serde_json::json!({ "interaction": new.interaction, "limit": reason });
            (details, audit_ip.clone())
        };
        if self.block_of(subject).await?.is_some() {
            self.audit("push_refused", subject, None, audit_ip.as_deref(), "blocked", serde_json::Value::Null, new.now)
                .await;
            return Ok(PushSend::Blocked);
        }
        let Some(device) = self.device_of(subject).await? else {
            return Ok(PushSend::NoDevice);
        };
        if let Some(retry_after) = limiter.hit(&limit_key).await?.retry_after_secs() {
            let (details, ip) = refused(limit_name);
            self.audit("push_refused", subject, None, ip.as_deref(), "throttled", details, new.now).await;
            return Ok(PushSend::Throttled { retry_after });
        }
        if let Some(retry_after) = self.per_account.hit(subject).await?.retry_after_secs() {
            let (details, ip) = refused("account");
            self.audit("push_refused", subject, None, ip.as_deref(), "throttled", details, new.now).await;
            return Ok(PushSend::Throttled { retry_after });
        }
        let validity = i64::try_from(self.settings.validity.as_secs()).unwrap_or(60);
        let challenge = Challenge {
            id: random_id(),
            subject: subject.to_owned(),
            device: device.id.clone(),
            number: new.number,
            interaction: new.interaction,
            client_name: new.client_name.chars().take(100).collect(),
            source_ip: new.source_ip,
            user_agent: new.user_agent,
            created_at: new.now,
            expires_at: new.now + validity,
            state: ChallengeState::Pending,
            decoupled: new.decoupled,
        };
        self.store
            .put(
                &challenge_key(&challenge.id),
                &serde_json::to_vec(&challenge).map_err(internal)?,
                self.settings.validity,
            )
            .await?;
        // One push at a time per account: a newer one replaces the older, which the phone
        // no longer lists and which can no longer be approved.
        let previous = self.store.take(&current_key(subject)).await?;
        self.store.put(&current_key(subject), challenge.id.as_bytes(), self.settings.validity).await?;
        if let Some(old) = previous {
            self.store.delete(&challenge_key(&String::from_utf8_lossy(&old))).await?;
        }
        let wake =
            self.notifier.request_created(subject, &device.id, &challenge.id, challenge.expires_at, new.now).await?;
        let (woken, silenced_until) = match wake {
            WakeUpOutcome::Sent => (Some(true), None),
            WakeUpOutcome::NoGateway => (None, None),
            WakeUpOutcome::Silenced { until } => (Some(false), Some(until)),
        };
        let details = serde_json::json!({
            "interaction": challenge.interaction, "device": device.id, "client": challenge.client_name,
            "woken": woken, "silenced_until": silenced_until, "decoupled": challenge.decoupled,
        });
        self.audit("push_sent", subject, None, challenge.source_ip.as_deref(), "sent", details, new.now).await;
        Ok(PushSend::Sent {
            challenge: challenge.id,
            number: challenge.number,
            expires_at: challenge.expires_at,
            silenced: silenced_until.is_some(),
        })
    }

    /// Whether the push `challenge` of this login still awaits the phone's answer. Reads only:
    /// an approval stays for [`PushApprovals::status`] to consume.
    pub async fn is_waiting(&self, cx: &AuthContext, challenge: &str) -> Result<bool, AuthError> {
        Ok(self.read(&challenge_key(challenge)).await?.is_some_and(|c| {
            c.interaction == cx.interaction && c.expires_at >= cx.now && c.state == ChallengeState::Pending
        }))
    }

    /// Where the push `challenge` of this login stands. An approval is consumed by the first
    /// caller to see it: the factor is returned once.
    pub async fn status(&self, cx: &AuthContext, challenge: &str) -> Result<PushStatus, AuthError> {
        let key = challenge_key(challenge);
        let Some(found) = self.read(&key).await? else {
            return Ok(PushStatus::Expired);
        };
        if found.interaction != cx.interaction || found.expires_at < cx.now {
            return Ok(PushStatus::Expired);
        }
        match found.state {
            ChallengeState::Pending => Ok(PushStatus::Waiting { number: found.number, expires_at: found.expires_at }),
            ChallengeState::Denied => Ok(PushStatus::Denied),
            ChallengeState::NotMe => Ok(PushStatus::NotMe),
            ChallengeState::Approved => {
                let Some(taken) = self.store.take(&key).await? else {
                    return Ok(PushStatus::Expired);
                };
                let taken: Challenge = serde_json::from_slice(&taken).map_err(internal)?;
                if taken.state != ChallengeState::Approved {
                    return Ok(PushStatus::Expired);
                }
                // A block set after the phone approved (an administrator, «ce n'était pas moi»
                // from another push) still stops this login.
                if self.block_of(&taken.subject).await?.is_some() {
                    return Ok(PushStatus::Denied);
                }
                Ok(PushStatus::Approved(FactorResult {
                    subject: taken.subject,
                    method: METHOD_ID.to_owned(),
                    credential: Some(taken.device),
                    kind: FactorKind::Possession,
                    // Every answer of the app needs its PIN to unseal the phone's key (as a
                    // scanned QR code does): a decoupled login, with no password before it,
                    // counts that knowledge. After a password it adds nothing.
                    also: if taken.decoupled { vec![FactorKind::Knowledge] } else { Vec::new() },
                    phishing_resistant: false,
                    // RFC 8176: a proof of possession of a software-secured key.
                    amr: vec!["swk".to_owned()],
                    at: cx.now,
                    level: None,
                }))
            }
        }
    }

    /// Checks a signed request from an enrolled phone (`kid` names it).
    async fn device_request<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        now: i64,
    ) -> Result<(directory::AuthenticatorRecord, T), DeviceError> {
        let header = RequestCheck::header(token)?;
        let kid = header.kid.ok_or(DeviceError::InvalidRequest("kid must name the device"))?;
        let device = match self.directory.authenticators().get(&kid).await? {
            Some(d) if d.kind == KIND && d.active && d.subject.is_some() => d,
            _ => return Err(DeviceError::Unauthorized),
        };
        let key: DevicePublicKey =
            serde_json::from_value(device.params.clone()).map_err(|_| DeviceError::Unauthorized)?;
        let body = self.check(now).verify(token, &key, &format!("device:{}", device.id)).await?;
        Ok((device, body))
    }

    fn check(&self, now: i64) -> RequestCheck<'_> {
        RequestCheck { store: self.store.as_ref(), audience: &self.endpoint, skew: self.settings.clock_skew, now }
    }

    async fn read(&self, key: &str) -> Result<Option<Challenge>, AuthError> {
        let Some(bytes) = self.store.get(key).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice(&bytes).ok())
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        event: &str,
        subject: &str,
        actor: Option<&str>,
        source_ip: Option<&str>,
        outcome: &str,
        details: serde_json::Value,
        at: i64,
    ) {
        let record = AuditEvent {
            event: event.to_owned(),
            actor: actor.map(str::to_owned),
            subject: Some(subject.to_owned()),
            client_id: None,
            source_ip: source_ip.map(str::to_owned),
            outcome: outcome.to_owned(),
            details,
            at,
        };
        if let Err(e) = self.directory.audit().append(record).await {
            tracing::error!(error = %e, event, "audit append failed");
        }
    }
}

/// A header's text as a phone may show it: printable ASCII only, at most 256 characters.
fn printable(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(256).collect()
}

fn internal(e: impl std::fmt::Display) -> AuthError {
    AuthError::Internal(e.to_string())
}
