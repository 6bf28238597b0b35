//! The seam every authentication method plugs into.
//!
//! A method is a step function over its own state (kept by the caller with the login
//! interaction, so any node can take the next step): `begin` opens it, `submit` feeds it what
//! the person typed, `poll` asks an out-of-band method (phone app, push) whether the other
//! device answered. Each step returns facts ([`Step`]); the engine alone counts failures,
//! enforces lockouts and turns factors into `acr`/`amr`.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A method's stable identifier (`"pwd"`, `"totp"`, later `"otp-mail"`, `"hotp"`, `"qr"`, ...).
pub type MethodId = &'static str;

/// The kind of proof a factor brings (two distinct kinds make multi-factor authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorKind {
    Knowledge,
    Possession,
    Inherence,
}

/// Where and when a step happens.
#[derive(Clone, Default)]
pub struct AuthContext {
    pub now: i64,
    pub source_ip: Option<String>,
    /// The login interaction this step belongs to (binds challenges to it).
    pub interaction: String,
    /// The browser's device cookie, as sent ([`crate::device`]).
    pub device_cookie: Option<String>,
    /// The browser's `User-Agent`, as sent (shown to the professional's phone).
    pub user_agent: Option<String>,
    /// The relying party's registered name (shown on the professional's phone).
    pub client_name: String,
    /// The weakest `acr` the relying party accepts for this login, if it asked for one.
    pub required_acr: Option<String>,
    /// The certificate chain (DER, the client's own first) the browser presented in the TLS
    /// handshake of this request, on the provider's card listener: the handshake proved the
    /// key (a CPS card read by the browser's middleware). Never from a form field.
    pub tls_client_chain: Option<Vec<Vec<u8>>>,
}

impl AuthContext {
    /// The source address, when known and well formed.
    pub fn address(&self) -> Option<std::net::IpAddr> {
        self.source_ip.as_deref().and_then(|ip| ip.parse().ok())
    }
}

impl fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The device cookie vouches for a browser: it stays out of logs.
        f.debug_struct("AuthContext")
            .field("now", &self.now)
            .field("source_ip", &self.source_ip)
            .field("interaction", &self.interaction)
            .field("device_cookie", &self.device_cookie.as_ref().map(|_| "<redacted>"))
            .field("user_agent", &self.user_agent)
            .field("client_name", &self.client_name)
            .field("required_acr", &self.required_acr)
            .field("tls_client_chain", &self.tls_client_chain.as_ref().map(Vec::len))
            .finish()
    }
}

/// What the person submitted, by form field name (see docs/login-ui.md). Debug hides values.
#[derive(Clone, Default)]
pub struct Input {
    fields: HashMap<String, String>,
}

impl Input {
    pub fn new() -> Self {
        Input::default()
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.fields.insert(name.to_owned(), value.into());
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.fields.keys().collect();
        names.sort();
        f.debug_struct("Input").field("fields", &names).finish()
    }
}

/// A method's private state between steps, serialised with the interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MethodState(pub serde_json::Value);

/// What the login page must show for the next step. Each variant is drawn by its own template
/// fragment; it is kept with the login, so that any node can draw the page again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Prompt {
    /// Text inputs with these stable names (docs/login-ui.md).
    Fields { fields: Vec<String> },
    /// A code was mailed to `masked_address`, valid until `until` (written `time` `date` in the
    /// configured time zone); the person types it in `otp`.
    CodeSent { masked_address: String, until: i64, time: String, date: String },
    /// The person's other device must answer: the page shows `number`, to be typed there, until
    /// `expires_at`. `silenced`: the device was not woken (auto-silence).
    Number { number: String, expires_at: i64, silenced: bool },
    /// A QR code to scan with the phone app until `expires_at`; it holds `payload`, which is
    /// also offered as a link for a phone that shows the page itself. Without network, the app
    /// derives an identifier and a code from it, typed in `qr_id` and `qr_code`.
    Qr { payload: String, expires_at: i64 },
    /// A WebAuthn ceremony: the page's script hands `options` (the JSON of
    /// `navigator.credentials.get`'s `publicKey`, binary fields in base64url) to the browser
    /// and posts the authenticator's answer in `webauthn_response`.
    Passkey { options: String },
    /// A CPS card sign-in: the page hands `challenge` to the card agent at `agent` on the
    /// professional's computer (the card's PIN is typed there, never sent to the provider) and
    /// posts the card's answer (`card_certificates`, `card_signature`) before `expires_at`.
    /// `notice`: what the agent reported last (`wrong_pin` with `tries_left`, `card_blocked`…).
    /// `tls_origin`: where the browser may present the card itself, over TLS (none: not offered).
    Card {
        challenge: String,
        agent: String,
        #[serde(default)]
        tls_origin: Option<String>,
        expires_at: i64,
        notice: Option<String>,
        tries_left: Option<u8>,
    },
}

impl Prompt {
    /// Inputs with these names.
    pub fn fields(names: &[&str]) -> Prompt {
        Prompt::Fields { fields: names.iter().map(|n| (*n).to_owned()).collect() }
    }

    /// The inputs this prompt asks for.
    pub fn field_names(&self) -> Vec<&str> {
        match self {
            Prompt::Fields { fields } => fields.iter().map(String::as_str).collect(),
            Prompt::CodeSent { .. } => vec!["otp"],
            Prompt::Number { .. } => Vec::new(),
            Prompt::Qr { .. } => vec!["qr_id", "qr_code"],
            Prompt::Passkey { .. } => vec!["webauthn_response"],
            Prompt::Card { .. } => vec!["card_certificates", "card_signature"],
        }
    }
}

/// One successful factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorResult {
    pub subject: String,
    pub method: String,
    /// The credential used (authenticator id), for the professional's own view.
    pub credential: Option<String>,
    pub kind: FactorKind,
    /// Kinds proven besides `kind` (the phone app's PIN, checked on the phone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<FactorKind>,
    pub phishing_resistant: bool,
    /// RFC 8176 values this factor contributes (`pwd`, `otp`, `hwk`, `sc`, `pin`, ...).
    pub amr: Vec<String>,
    pub at: i64,
    /// The level the operator's policy gives a login this factor completes (a passkey verified
    /// by its owner: `webauthn.acr`), in place of the level counted from kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}

/// Why a step did not succeed. The engine decides what the person is told (never which
/// factor was wrong, nor whether the identifier exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Wrong secret, unknown identifier, code already used: counts as a failed attempt.
    Bad,
    /// The challenge or code has expired.
    Expired,
    /// The person refused on their other device ("this was not me").
    Denied,
    /// Refused for a reason the person may be told, because it concerns what they hold and
    /// nobody else (a revoked or expired card certificate): counts as a failed attempt; the
    /// page names the reason (a stable code, e.g. `card_revoked`).
    Rejected(&'static str),
    /// The method cannot run for this person now (nothing enrolled, blocked, throttled): the
    /// page says why; it counts as no attempt.
    Unusable(Unusable),
}

/// Why a method cannot run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// The account has nothing this method needs (no phone, no mail address).
    NotEnrolled,
    /// The account's owner, or an administrator, blocked it («ce n'était pas moi»).
    Blocked,
    /// Too many requests: try again after `retry_after` seconds.
    Throttled { retry_after: u64 },
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Continue {
        state: MethodState,
        prompt: Prompt,
    },
    /// Waiting for another device; poll again after `poll_after_ms`.
    Pending {
        state: MethodState,
        prompt: Prompt,
        expires_at: i64,
        poll_after_ms: u64,
    },
    Done(FactorResult),
    Failed(Failure),
}

/// A method could not run (a dependency is down): the login fails closed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("directory: {0}")]
    Directory(#[from] directory::DirectoryError),
    #[error("session store: {0}")]
    Store(#[from] session_store::StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

impl AuthError {
    pub fn is_unavailable(&self) -> bool {
        match self {
            AuthError::Store(_) => true,
            AuthError::Directory(d) => matches!(d, directory::DirectoryError::Unavailable(_)),
            AuthError::Internal(_) => false,
        }
    }
}

#[async_trait]
pub trait AuthMethod: Send + Sync {
    fn id(&self) -> MethodId;
    fn kind(&self) -> FactorKind;
    /// Whether the person must already be identified (by an earlier factor) to use it.
    fn needs_subject(&self) -> bool;
    /// Whether `subject` can use this method (e.g. has an active authenticator of this kind).
    async fn available(&self, cx: &AuthContext, subject: Option<&str>) -> Result<bool, AuthError>;
    async fn begin(&self, cx: &AuthContext, subject: Option<&str>) -> Result<Step, AuthError>;
    async fn submit(&self, cx: &AuthContext, state: MethodState, input: &Input) -> Result<Step, AuthError>;
    /// Out-of-band methods report whether the other device answered; others never complete here.
    async fn poll(&self, _cx: &AuthContext, _state: MethodState) -> Result<Step, AuthError> {
        Ok(Step::Failed(Failure::Expired))
    }
    /// Whether an out-of-band step still awaits the other device. Reads only: an answer stays
    /// for `poll` to take (the page's script asks this, then submits the page).
    async fn waiting(&self, _cx: &AuthContext, _state: &MethodState) -> Result<bool, AuthError> {
        Ok(false)
    }
    /// The input field in which the person types who they are, if this method reads one (the
    /// password's `username`, the offline phone code's `qr_id`): the engine admits the attempt
    /// against that identifier's lockout before the method checks anything.
    fn identifier_field(&self) -> Option<&'static str> {
        None
    }
    /// The lockout counts this method's identifiers apart from the others' under this name
    /// (an offline phone ID must never share a count with a national identifier).
    fn identifier_namespace(&self) -> Option<&'static str> {
        None
    }
    /// Whether a refused attempt leaves this method's step open for another try (a code typed
    /// again, against the same mailed code or QR code). A WebAuthn ceremony is spent once
    /// answered: the next try opens a new one.
    fn retry_in_place(&self) -> bool {
        true
    }
    /// Kinds of proof this method's factor brings besides [`AuthMethod::kind`] (a phone key
    /// unlocked by a PIN on the phone: possession and knowledge).
    fn also_proves(&self) -> &'static [FactorKind] {
        &[]
    }
}
