//! OpenID Connect Back-Channel Logout 1.0: when a session ends, every relying party it signed
//! into that registered a `backchannel_logout_uri` receives a signed logout token, at once and
//! concurrently. Each delivery has a short timeout and a few quick retries; what still fails is
//! recorded and retried later with back-off by whichever node claims it first. A slow or dead
//! relying party delays nobody: deliveries run in their own tasks, never in the request that
//! ended the session.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::client::ClientRegistry;
use crate::keys::{KeyRing, TokenKind};
use crate::session::SsoSession;
use crate::util::random_id;

pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// One logout token to deliver to one relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub sid: String,
    pub subject: String,
    pub client_id: String,
    pub uri: String,
    pub attempts: i64,
}

/// The outcome of an attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Try again at `at` (Unix seconds).
    Retry {
        at: i64,
        error: String,
    },
    /// Given up.
    Failed {
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("delivery log: {0}")]
pub struct DeliveryLogError(pub String);

/// Where deliveries and their outcomes are kept (the directory, through the server's wiring).
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// Records a new delivery, pending. `first_due` is when its first attempts are surely over
    /// (Unix seconds): from then on, the retry job of any node may take it, so that a delivery
    /// whose node died in the middle of it is still sent.
    async fn created(&self, delivery: &Delivery, now: i64, first_due: i64) -> Result<(), DeliveryLogError>;
    async fn attempted(&self, delivery: &Delivery, outcome: &DeliveryOutcome, now: i64)
    -> Result<(), DeliveryLogError>;
    /// Pending deliveries due at `now`, each leased to the caller until `lease_until`.
    async fn claim_due(&self, now: i64, lease_until: i64) -> Result<Vec<Delivery>, DeliveryLogError>;
}

#[derive(Debug, Clone)]
pub struct BackchannelSettings {
    /// Each POST gives up after this long.
    pub timeout: Duration,
    /// Quick retries right after a failure, with these pauses.
    pub quick_retries: Vec<Duration>,
    /// Total attempts before giving up (quick ones included).
    pub max_attempts: i64,
    /// Later retries wait this long, doubling each time.
    pub backoff: i64,
    /// Logout tokens are valid this long.
    pub token_ttl: i64,
}

impl Default for BackchannelSettings {
    fn default() -> Self {
        BackchannelSettings {
            timeout: Duration::from_secs(2),
            quick_retries: vec![Duration::from_millis(300), Duration::from_millis(1000)],
            max_attempts: 8,
            backoff: 30,
            token_ttl: 120,
        }
    }
}

/// The claims of a logout token (Back-Channel Logout 1.0, section 2.4).
#[derive(Debug, Serialize)]
struct LogoutTokenClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    sub: &'a str,
    sid: &'a str,
    events: serde_json::Value,
}

/// Sends logout tokens. Cheap to share; every delivery runs in its own task.
pub struct Notifier {
    issuer: String,
    keys: Arc<KeyRing>,
    clients: Arc<dyn ClientRegistry>,
    log: Arc<dyn DeliveryLog>,
    http: reqwest::Client,
    settings: BackchannelSettings,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl Notifier {
    pub fn new(
        issuer: String,
        keys: Arc<KeyRing>,
        clients: Arc<dyn ClientRegistry>,
        log: Arc<dyn DeliveryLog>,
        settings: BackchannelSettings,
        clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) -> Result<Arc<Self>, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // A logout endpoint answers; it does not send the provider elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Arc::new(Notifier { issuer, keys, clients, log, http, settings, clock }))
    }

    /// Tells every relying party of `session` that it ended. Returns once the deliveries are
    /// recorded and started; they complete in the background.
    pub async fn session_ended(self: &Arc<Self>, session: &SsoSession) -> Vec<tokio::task::JoinHandle<()>> {
        let now = (self.clock)();
        let mut handles = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for c in &session.clients {
            if seen.contains(&c.client_id.as_str()) {
                continue;
            }
            seen.push(&c.client_id);
            let client = match self.clients.get(&c.client_id).await {
                Ok(Some(client)) => client,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(client_id = %c.client_id, error = %e, "cannot read the client to send its logout");
                    continue;
                }
            };
            let Some(uri) = client.metadata.backchannel_logout_uri.clone() else {
                continue;
            };
            let delivery = Delivery {
                id: random_id(),
                sid: session.sid.clone(),
                subject: session.subject.clone(),
                client_id: client.client_id.clone(),
                uri,
                attempts: 0,
            };
            if let Err(e) = self.log.created(&delivery, now, now + self.first_attempts_bound()).await {
                tracing::error!(error = %e, "recording a logout delivery failed");
            }
            let me = self.clone();
            handles.push(tokio::spawn(async move { me.deliver(delivery, true).await }));
        }
        handles
    }

    /// Seconds the first attempts of a delivery can take at most (each bounded by the timeout,
    /// with the pauses between them), plus a margin for a busy node to record their outcome.
    fn first_attempts_bound(&self) -> i64 {
        const MARGIN: Duration = Duration::from_secs(5);
        let attempts = u32::try_from(self.settings.quick_retries.len() + 1).unwrap_or(u32::MAX);
        let pauses: Duration = self.settings.quick_retries.iter().sum();
        let worst = self.settings.timeout.saturating_mul(attempts).saturating_add(pauses).saturating_add(MARGIN);
        i64::try_from(worst.as_secs()).unwrap_or(i64::MAX).saturating_add(1)
    }

    /// Retries the deliveries that are due (called periodically by every node; each pending
    /// delivery is claimed by one node only).
    pub async fn retry_due(self: &Arc<Self>) -> usize {
        let now = (self.clock)();
        let lease = now + i64::try_from(self.settings.timeout.as_secs()).unwrap_or(2) * 4 + 30;
        let due = match self.log.claim_due(now, lease).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read due logout deliveries");
                return 0;
            }
        };
        let count = due.len();
        let mut handles = Vec::with_capacity(count);
        for d in due {
            let me = self.clone();
            handles.push(tokio::spawn(async move { me.deliver(d, false).await }));
        }
        for h in handles {
            let _ = h.await;
        }
        count
    }

    async fn deliver(&self, mut delivery: Delivery, with_quick_retries: bool) {
        let pauses: Vec<Duration> = if with_quick_retries { self.settings.quick_retries.clone() } else { Vec::new() };
        let mut error = String::new();
        for attempt in 0..=pauses.len() {
            delivery.attempts += 1;
            match self.post(&delivery).await {
                Ok(()) => {
                    self.record(&delivery, DeliveryOutcome::Delivered).await;
                    return;
                }
                Err(e) => error = e,
            }
            if delivery.attempts >= self.settings.max_attempts {
                break;
            }
            if let Some(pause) = pauses.get(attempt) {
                tokio::time::sleep(*pause).await;
            }
        }
        tracing::warn!(client_id = %delivery.client_id, attempts = delivery.attempts, %error, "back-channel logout not delivered");
        let outcome = if delivery.attempts >= self.settings.max_attempts {
            DeliveryOutcome::Failed { error }
        } else {
            let exponent = u32::try_from((delivery.attempts - 1).max(0)).unwrap_or(16).min(16);
            let wait = self.settings.backoff.saturating_mul(1i64 << exponent).min(24 * 3600);
            DeliveryOutcome::Retry { at: (self.clock)() + wait, error }
        };
        self.record(&delivery, outcome).await;
    }

    async fn record(&self, delivery: &Delivery, outcome: DeliveryOutcome) {
        let label = match outcome {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retry { .. } => "retry_later",
            DeliveryOutcome::Failed { .. } => "failed",
        };
        metrics::counter!("caducee_backchannel_deliveries_total", "outcome" => label).increment(1);
        if let Err(e) = self.log.attempted(delivery, &outcome, (self.clock)()).await {
            tracing::error!(error = %e, "recording a logout delivery failed");
        }
    }

    async fn post(&self, delivery: &Delivery) -> Result<(), String> {
        let client = self
            .clients
            .get(&delivery.client_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the client no longer exists".to_owned())?;
        let now = (self.clock)();
        let claims = LogoutTokenClaims {
            iss: &self.issuer,
            aud: &client.client_id,
            iat: now,
            exp: now + self.settings.token_ttl,
            jti: random_id(),
            sub: &delivery.subject,
            sid: &delivery.sid,
            events: serde_json::json!({ BACKCHANNEL_EVENT: {} }),
        };
        let token = self
            .keys
            .sign(client.metadata.id_token_signed_response_alg, TokenKind::LogoutToken, &claims)
            .map_err(|e| e.to_string())?;
        let response = self
            .http
            .post(&delivery.uri)
            .header(reqwest::header::CACHE_CONTROL, "no-store")
            .form(&[("logout_token", token.as_str())])
            .send()
            .await
            .map_err(|e| if e.is_timeout() { "timed out".to_owned() } else { e.to_string() })?;
        if response.status().is_success() { Ok(()) } else { Err(format!("HTTP {}", response.status().as_u16())) }
    }
}
