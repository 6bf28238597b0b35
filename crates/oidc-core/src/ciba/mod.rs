//! OpenID Connect Client-Initiated Backchannel Authentication (CIBA Core 1.0), poll and ping
//! modes: a relying party, authenticated, names a professional (`login_hint`, the national
//! identifier) and shows a number (`binding_message`); the professional approves on their
//! enrolled phone by typing that number; the relying party then takes tokens at the token
//! endpoint with the grant `urn:openid:params:grant-type:ciba`.
//!
//! This module owns the protocol: the request's checks (§7.1), its record in the session store
//! (by the hash of its `auth_req_id`, single use), the token endpoint's answers while the
//! professional has not answered (§11: `authorization_pending`, `slow_down`, `expired_token`,
//! `access_denied`) and the ping (§10.2). How the professional is asked is the
//! [`DecoupledLogin`]'s, wired by the server to the push service with the same limits, number
//! check and «ce n'était pas moi» block as a login page's push. It must not depend on that
//! service, nor on any authentication method.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::client::{CibaDeliveryMode, Client, GrantType};
use crate::client_auth::ClientCredentials;
use crate::error::{EndpointError, ErrorCode, OAuthError, ProviderError};
use crate::provider::{AuditEntry, ProtocolEvent, Provider};
use crate::secret::SecretString;
use crate::session::{LoginResult, RequestOrigin};
use crate::util::{random_token, sha256_b64};

mod ping;
mod request;

use request::check_request;
pub use request::{BackchannelParams, BackchannelResponse};

/// Seconds a polling client waits between two token requests, unless told to slow down.
pub const DEFAULT_INTERVAL: i64 = 5;
/// What `slow_down` adds to the interval (CIBA §11: "by 5 seconds").
const SLOW_DOWN_STEP: i64 = 5;

/// What the professional is asked, as the protocol hands it to the [`DecoupledLogin`].
#[derive(Debug, Clone)]
pub struct DecoupledRequest<'a> {
    /// This request's own id (not the `auth_req_id`, which only the client holds).
    pub request_id: &'a str,
    /// The national identifier the relying party named.
    pub login_hint: &'a str,
    pub client_id: &'a str,
    pub client_name: &'a str,
    /// The number the relying party shows, which the professional types on the phone.
    pub binding_message: &'a str,
    /// The relying party's address.
    pub source_ip: Option<&'a str>,
    pub now: i64,
}

/// A professional was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoupledStarted {
    /// What names the question for [`DecoupledLogin::status`].
    pub handle: String,
    pub expires_at: i64,
}

/// Why the professional could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum DecoupledRefusal {
    #[error("no professional has this identifier")]
    UnknownUser,
    /// No phone, or the phone app is blocked for the account.
    #[error("the professional cannot be asked on a phone")]
    CannotAsk,
    #[error("too many approval requests; retry after {retry_after} s")]
    Throttled { retry_after: u64 },
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Where the question stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecoupledStatus {
    Pending,
    /// Approved; told once (the next call says `Gone`).
    Approved(LoginResult),
    Denied,
    /// No longer known: expired, replaced by a newer question, or its approval already told.
    Gone,
}

/// Asks a professional, away from any login page, to approve a relying party's request.
#[async_trait]
pub trait DecoupledLogin: Send + Sync {
    async fn start(&self, request: &DecoupledRequest<'_>) -> Result<DecoupledStarted, DecoupledRefusal>;
    /// `required_acr`: the weakest `acr` the relying party accepts, if it asked for one; an
    /// approval that does not reach it is `Denied`.
    async fn status(
        &self,
        handle: &str,
        request_id: &str,
        required_acr: Option<&str>,
        now: i64,
    ) -> Result<DecoupledStatus, ProviderError>;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
enum CibaState {
    Pending,
    Approved {
        login: LoginResult,
    },
    Denied,
    /// Tokens were issued: the `auth_req_id` is spent.
    Issued,
}

/// A CIBA request, in the session store until it expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CibaRecord {
    id: String,
    client_id: String,
    scopes: Vec<String>,
    required_acr: Option<String>,
    handle: String,
    mode: CibaDeliveryMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notification_token: Option<String>,
    source_ip: Option<String>,
    created_at: i64,
    expires_at: i64,
    interval: i64,
    #[serde(default)]
    last_poll: Option<i64>,
    #[serde(flatten)]
    state: CibaState,
}

fn record_key(auth_req_id: &str) -> String {
    crate::store_keys::CIBA_REQUEST.key(sha256_b64(auth_req_id.as_bytes()))
}

fn access_denied(description: &'static str) -> EndpointError {
    OAuthError::new(ErrorCode::AccessDenied, description).with_status(403).into()
}

fn secs(n: i64) -> Duration {
    Duration::from_secs(u64::try_from(n).unwrap_or(1).max(1))
}
impl Provider {
    /// Whether CIBA is offered (a [`DecoupledLogin`] is wired).
    pub fn ciba_enabled(&self) -> bool {
        self.decoupled.is_some()
    }

    /// The backchannel authentication endpoint (CIBA §7).
    /// `clock` times the ping mode's watch.
    pub async fn backchannel_authorize(
        self: &Arc<Self>,
        params: BackchannelParams,
        creds: &ClientCredentials,
        origin: &RequestOrigin,
        clock: crate::http::Clock,
    ) -> Result<BackchannelResponse, EndpointError> {
        let now = clock();
        let Some(decoupled) = self.decoupled.clone() else {
            return Err(OAuthError::invalid_request("backchannel authentication is not offered").into());
        };
        let client = self.authenticate_client(creds, true, now).await?;
        let mode = match client.metadata.backchannel_token_delivery_mode {
            Some(mode) if client.metadata.allows_grant(GrantType::Ciba) => mode,
            _ => {
                return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not use CIBA").into());
            }
        };
        let checked = check_request(&params, &client, &self.config.acr_levels, mode)?;
        let request_id = crate::util::random_id();
        let started = decoupled
            .start(&DecoupledRequest {
                request_id: &request_id,
                login_hint: checked.login_hint,
                client_id: &client.client_id,
                client_name: client.display_name(),
                binding_message: checked.binding_message,
                source_ip: origin.source_ip.as_deref(),
                now,
            })
            .await;
        let started = match started {
            Ok(s) => s,
            Err(refusal) => return Err(self.refused(&client, origin, refusal).await),
        };
        let expires_at = match checked.requested_expiry {
            Some(asked) => started.expires_at.min(now.saturating_add(asked)),
            None => started.expires_at,
        };
        let auth_req_id = random_token();
        let record = CibaRecord {
            id: request_id,
            client_id: client.client_id.clone(),
            scopes: checked.scopes,
            required_acr: checked.required_acr,
            handle: started.handle,
            mode,
            notification_token: checked.notification_token,
            source_ip: origin.source_ip.clone(),
            created_at: now,
            expires_at,
            interval: DEFAULT_INTERVAL,
            last_poll: None,
            state: CibaState::Pending,
        };
        let key = record_key(&auth_req_id);
        let bytes = serde_json::to_vec(&record).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
        // Kept past its expiry for a while, so that a late poll hears `expired_token`.
        self.store.put(&key, &bytes, secs(expires_at - now + 600)).await?;
        self.audit(
            AuditEntry::new(ProtocolEvent::CibaRequest, "asked")
                .client(&client.client_id)
                .ip(origin.source_ip.clone())
                .details(serde_json::json!({ "request": record.id, "mode": mode.as_str() })),
        )
        .await;
        if mode == CibaDeliveryMode::Ping {
            // The watch holds the `auth_req_id` the ping must name: the store keeps only its hash.
            let provider = Arc::clone(self);
            let named = auth_req_id.clone();
            tokio::spawn(async move { provider.watch_for_ping(key, named, clock).await });
        }
        Ok(BackchannelResponse {
            auth_req_id: SecretString::from(auth_req_id),
            expires_in: (expires_at - now).max(1),
            interval: DEFAULT_INTERVAL,
        })
    }

    async fn refused(&self, client: &Client, origin: &RequestOrigin, refusal: DecoupledRefusal) -> EndpointError {
        let (outcome, error) = match refusal {
            DecoupledRefusal::UnknownUser => (
                "unknown_user",
                OAuthError::new(ErrorCode::UnknownUserId, "login_hint names no professional known here").into(),
            ),
            DecoupledRefusal::CannotAsk => {
                ("cannot_ask", access_denied("the professional cannot approve on a phone (none enrolled, or blocked)"))
            }
            DecoupledRefusal::Throttled { retry_after } => (
                "throttled",
                OAuthError::new(ErrorCode::AccessDenied, "too many approval requests, try again later")
                    .with_status(403)
                    .with_detail(format!("retry after {retry_after} s"))
                    .into(),
            ),
            DecoupledRefusal::Provider(e) => return e.into(),
        };
        self.audit(
            AuditEntry::new(ProtocolEvent::CibaRequest, outcome).client(&client.client_id).ip(origin.source_ip.clone()),
        )
        .await;
        error
    }

    /// The CIBA grant at the token endpoint (CIBA §10.1, §11).
    pub(crate) async fn ciba_grant(
        &self,
        client: &Client,
        auth_req_id: Option<&str>,
        now: i64,
    ) -> Result<(LoginResult, Vec<String>, Option<String>), EndpointError> {
        let auth_req_id = auth_req_id.ok_or_else(|| OAuthError::invalid_request("auth_req_id is required"))?;
        if auth_req_id.is_empty() || auth_req_id.len() > 128 {
            return Err(OAuthError::invalid_grant("invalid auth_req_id").into());
        }
        let key = record_key(auth_req_id);
        for _ in 0..8 {
            let Some(raw) = self.store.get(&key).await? else {
                return Err(OAuthError::invalid_grant("invalid or expired auth_req_id").into());
            };
            let record: CibaRecord = serde_json::from_slice(&raw).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
            if record.client_id != client.client_id {
                return Err(OAuthError::invalid_grant("auth_req_id was issued to another client").into());
            }
            match &record.state {
                CibaState::Issued => return Err(OAuthError::invalid_grant("auth_req_id already used").into()),
                CibaState::Denied => {
                    return Err(OAuthError::new(ErrorCode::AccessDenied, "the professional refused").into());
                }
                CibaState::Approved { login } => {
                    // Single use: of two requests racing, one swaps the approval out.
                    let issued = CibaRecord { state: CibaState::Issued, ..record.clone() };
                    let bytes = serde_json::to_vec(&issued).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
                    if self.store.compare_and_swap(&key, &raw, &bytes, secs(record.expires_at - now + 600)).await? {
                        return Ok((login.clone(), record.scopes.clone(), record.source_ip.clone()));
                    }
                    continue;
                }
                CibaState::Pending => {}
            }
            if now >= record.expires_at {
                return Err(OAuthError::new(ErrorCode::ExpiredToken, "the professional did not answer in time").into());
            }
            if let Some(last) = record.last_poll
                && now - last < record.interval
            {
                // CIBA §11: polled too fast; the interval grows for every later request.
                let slower = CibaRecord { interval: record.interval + SLOW_DOWN_STEP, last_poll: Some(now), ..record };
                let bytes = serde_json::to_vec(&slower).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
                // Lost only to another change, which stands: the answer is the same.
                let _ = self.store.compare_and_swap(&key, &raw, &bytes, secs(slower.expires_at - now + 600)).await?;
                return Err(
                    OAuthError::new(ErrorCode::SlowDown, "polling too fast, wait longer between requests").into()
                );
            }
            let polled = CibaRecord { last_poll: Some(now), ..record };
            let polled_bytes = serde_json::to_vec(&polled).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
            if !self.store.compare_and_swap(&key, &raw, &polled_bytes, secs(polled.expires_at - now + 600)).await? {
                // Another request of this client came at the same instant: it polled too fast.
                return Err(
                    OAuthError::new(ErrorCode::SlowDown, "polling too fast, wait longer between requests").into()
                );
            }
            let advanced = self.advance(&key, polled, now).await?;
            match advanced.state {
                CibaState::Pending => {
                    return Err(OAuthError::new(
                        ErrorCode::AuthorizationPending,
                        "the professional has not answered yet",
                    )
                    .into());
                }
                // Decided now: the next round of the loop answers it.
                _ => continue,
            }
        }
        Err(ProviderError::Corrupt("CIBA request kept changing".into()).into())
    }

    /// Asks where the question stands and records a decision. An approval is told once by
    /// the [`DecoupledLogin`]: it is written into the record whatever else changed meanwhile.
    async fn advance(&self, key: &str, record: CibaRecord, now: i64) -> Result<CibaRecord, ProviderError> {
        let Some(decoupled) = self.decoupled.as_ref() else {
            return Ok(record);
        };
        let status = decoupled.status(&record.handle, &record.id, record.required_acr.as_deref(), now).await?;
        let decided = match status {
            DecoupledStatus::Approved(login) => CibaState::Approved { login },
            DecoupledStatus::Denied => CibaState::Denied,
            // `Gone` before the record's expiry: replaced by a newer question, or its approval
            // taken by a concurrent check, which writes it: still pending here.
            DecoupledStatus::Pending | DecoupledStatus::Gone => return Ok(record),
        };
        let outcome = match &decided {
            CibaState::Approved { .. } => "approved",
            _ => "denied",
        };
        for _ in 0..16 {
            let Some(raw) = self.store.get(key).await? else {
                return Ok(record);
            };
            let current: CibaRecord =
                serde_json::from_slice(&raw).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
            if current.state != CibaState::Pending {
                return Ok(current);
            }
            let updated = CibaRecord { state: decided.clone(), ..current };
            let bytes = serde_json::to_vec(&updated).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
            if self.store.compare_and_swap(key, &raw, &bytes, secs(updated.expires_at - now + 600)).await? {
                self.audit(
                    AuditEntry::new(ProtocolEvent::CibaRequest, outcome)
                        .client(&updated.client_id)
                        .details(serde_json::json!({ "request": updated.id })),
                )
                .await;
                return Ok(updated);
            }
        }
        Err(ProviderError::Corrupt("CIBA request kept changing".into()))
    }
}
