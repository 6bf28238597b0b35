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
#[derive(Clone)]
pub struct AuthContext {
    pub now: i64,
    pub source_ip: Option<String>,
    /// The login interaction this step belongs to (binds challenges to it).
    pub interaction: String,
    /// The browser's device cookie, as sent ([`crate::device`]).
    pub device_cookie: Option<String>,
    /// The browser's `User-Agent`, as sent (shown to the professional's phone).
    pub user_agent: Option<String>,
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

/// What the login page must show for the next step.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Prompt {
    /// Text inputs with these stable names.
    Fields(Vec<&'static str>),
}

/// One successful factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorResult {
    pub subject: String,
    pub method: String,
    /// The credential used (authenticator id), for the professional's own view.
    pub credential: Option<String>,
    pub kind: FactorKind,
    pub phishing_resistant: bool,
    /// RFC 8176 values this factor contributes (`pwd`, `otp`, `hwk`, `sc`, `pin`, ...).
    pub amr: Vec<String>,
    pub at: i64,
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
}
