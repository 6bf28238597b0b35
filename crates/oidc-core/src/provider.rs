//! The provider: the protocol's state and its dependencies, passed explicitly to every endpoint.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use session_store::{RateLimiter, SessionStore};

use crate::backchannel::Notifier;
use crate::claims::AccountDirectory;
use crate::client::{Client, ClientRegistry};
use crate::config::ProviderConfig;
use crate::error::ProviderError;
use crate::grants::RefreshTokenStore;
use crate::keys::KeyRing;
use crate::session::Sessions;

/// What the protocol records in the audit log, by the event names the log and its readers use
/// (docs/admin.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolEvent {
    Signin,
    SsoSignin,
    SigninOtherPerson,
    InteractionLimit,
    TokenIssued,
    TokenRevoked,
    CodeReplay,
    RefreshReuse,
    Logout,
    /// A CIBA request: asked, refused, approved, denied, pinged.
    CibaRequest,
}

impl ProtocolEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolEvent::Signin => "signin",
            ProtocolEvent::SsoSignin => "sso_signin",
            ProtocolEvent::SigninOtherPerson => "signin_other_person",
            ProtocolEvent::InteractionLimit => "interaction_limit",
            ProtocolEvent::TokenIssued => "token_issued",
            ProtocolEvent::TokenRevoked => "token_revoked",
            ProtocolEvent::CodeReplay => "code_replay",
            ProtocolEvent::RefreshReuse => "refresh_reuse",
            ProtocolEvent::Logout => "logout",
            ProtocolEvent::CibaRequest => "ciba_request",
        }
    }
}

/// One audit record as the protocol sees it; the server appends it to the audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub event: ProtocolEvent,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub source_ip: Option<String>,
    pub outcome: &'static str,
    pub details: Value,
}

impl AuditEntry {
    pub fn new(event: ProtocolEvent, outcome: &'static str) -> Self {
        AuditEntry { event, subject: None, client_id: None, source_ip: None, outcome, details: Value::Null }
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.source_ip = ip;
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// The audit log could not take a record (its database is down).
#[derive(Debug, thiserror::Error)]
#[error("audit log unavailable: {0}")]
pub struct AuditUnavailable(pub String);

/// Where sensitive protocol events are recorded (the audit log).
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Appends `entry`; returns once it is durably written, or why it could not be.
    async fn record(&self, entry: AuditEntry) -> Result<(), AuditUnavailable>;
}

/// Everything the protocol needs from the rest of the system.
pub struct ProviderDeps {
    pub config: ProviderConfig,
    pub keys: Arc<KeyRing>,
    pub store: Arc<dyn SessionStore>,
    pub clients: Arc<dyn ClientRegistry>,
    pub accounts: Arc<dyn AccountDirectory>,
    pub grants: Arc<dyn RefreshTokenStore>,
    pub audit: Arc<dyn AuditSink>,
    /// Sends back-channel logouts when sessions end (none: nobody is told).
    pub notifier: Option<Arc<Notifier>>,
    /// Asks professionals on their phone for CIBA requests (none: CIBA is not offered).
    pub decoupled: Option<Arc<dyn crate::ciba::DecoupledLogin>>,
    /// MACs refresh tokens (the same on every node).
    pub refresh_token_key: crate::token::RefreshTokenKey,
}

/// The OpenID provider. Cheap to share (`Arc<Provider>`); holds no per-request state.
pub struct Provider {
    pub(crate) config: ProviderConfig,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) clients: Arc<dyn ClientRegistry>,
    pub(crate) accounts: Arc<dyn AccountDirectory>,
    pub(crate) grants: Arc<dyn RefreshTokenStore>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) notifier: Option<Arc<Notifier>>,
    pub(crate) decoupled: Option<Arc<dyn crate::ciba::DecoupledLogin>>,
    pub(crate) refresh_key: crate::token::RefreshTokenKey,
    /// Sends CIBA pings (short timeouts, no redirects).
    pub(crate) ping_http: reqwest::Client,
    pub(crate) sessions: Sessions,
    pub(crate) discovery: Arc<str>,
    /// Access tokens whose signature was checked lately (userinfo, introspection).
    pub(crate) verified: crate::verified::VerifiedTokens,
    /// Login interactions started per source address and per browser.
    pub(crate) interactions_per_address: RateLimiter,
    pub(crate) interactions_per_browser: RateLimiter,
}

impl Provider {
    pub fn new(deps: ProviderDeps) -> Result<Self, ProviderError> {
        let discovery = crate::discovery::document(&deps.config, deps.decoupled.is_some())
            .map_err(|e| ProviderError::Corrupt(format!("discovery document: {e}")))?;
        let ping_http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .connect_timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ProviderError::Corrupt(format!("HTTP client: {e}")))?;
        Ok(Provider {
            decoupled: deps.decoupled,
            refresh_key: deps.refresh_token_key,
            ping_http,
            sessions: Sessions::new(deps.store.clone(), deps.config.session_ttl)
                .with_idle_timeout(deps.config.session_idle_timeout),
            interactions_per_address: RateLimiter::new(
                deps.store.clone(),
                crate::store_keys::LIMIT_INTERACTIONS_PER_ADDRESS,
                deps.config.interactions_per_address,
            ),
            interactions_per_browser: RateLimiter::new(
                deps.store.clone(),
                crate::store_keys::LIMIT_INTERACTIONS_PER_BROWSER,
                deps.config.interactions_per_browser,
            ),
            discovery: Arc::from(discovery),
            verified: Default::default(),
            config: deps.config,
            keys: deps.keys,
            store: deps.store,
            clients: deps.clients,
            accounts: deps.accounts,
            grants: deps.grants,
            audit: deps.audit,
            notifier: deps.notifier,
        })
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn notifier(&self) -> Option<&Arc<Notifier>> {
        self.notifier.as_ref()
    }

    pub fn discovery_json(&self) -> Arc<str> {
        self.discovery.clone()
    }

    pub(crate) async fn client(&self, client_id: &str) -> Result<Option<Arc<Client>>, ProviderError> {
        if client_id.is_empty() || client_id.len() > 255 {
            return Ok(None);
        }
        Ok(self.clients.get(client_id).await?)
    }

    /// The name to show people for a client (its registered name, else its id).
    pub async fn client_display_name(&self, client_id: &str) -> Option<String> {
        let client = self.client(client_id).await.ok().flatten()?;
        Some(client.display_name().to_owned())
    }

    /// Records `entry`; a failure is logged and does not stop what is being done (a refusal,
    /// a logout: refusing them for want of a record would help nobody).
    pub(crate) async fn audit(&self, entry: AuditEntry) {
        let event = entry.event.as_str();
        if let Err(e) = self.audit.record(entry).await {
            tracing::error!(error = %e, event, "audit append failed");
        }
    }

    /// Records the issue of tokens before they are handed out: a token whose record could not
    /// be written is not given (fail closed), so the log never misses a token in use.
    pub(crate) async fn audit_issued(&self, entry: AuditEntry) -> Result<(), ProviderError> {
        Ok(self.audit.record(entry).await?)
    }

    /// Whether the dependencies answer (for health checks and to fail closed early).
    pub async fn ready(&self) -> Result<(), ProviderError> {
        self.store.ping().await?;
        Ok(())
    }
}
