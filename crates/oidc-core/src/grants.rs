//! Refresh tokens and the grants they belong to, kept durably by a [`RefreshTokenStore`]
//! (the directory, through the server's wiring). Tokens are stored by their hash only.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::provider::AuditEntry;

/// One refresh token of a grant (a family: every rotation adds one, reuse of an old one
/// revokes them all).
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub subject: String,
    pub sid: String,
    pub context: GrantContext,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set once the token was exchanged (rotation): a second use is a replay.
    pub consumed_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// What tokens refreshed from this grant must carry, kept with each refresh token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GrantContext {
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    /// Individual claims the `claims` parameter asked for.
    #[serde(default, skip_serializing_if = "crate::claims_request::ClaimsRequest::is_empty")]
    pub claims: crate::claims_request::ClaimsRequest,
}

/// The refresh token that replaces a consumed one in a rotation: stored in the same step as
/// the consumption, with the consumed token's grant, client, subject, session and context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Successor {
    pub token_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The outcome of trying to use a refresh token once.
#[derive(Debug)]
pub enum ConsumeResult {
    Consumed(RefreshGrant),
    /// Already used: someone replays it, so the whole grant must be revoked.
    Reused(RefreshGrant),
    Revoked(RefreshGrant),
    Expired(RefreshGrant),
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("grant storage unavailable: {0}")]
    Unavailable(String),
    #[error("grant storage failure: {0}")]
    Failed(String),
}

#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Stores `grant`, and `issued` (the record of the tokens issued with it) in the audit log
    /// in the same transaction: both or neither.
    async fn insert(&self, grant: &RefreshGrant, issued: Option<AuditEntry>) -> Result<(), GrantError>;
    /// The token's record whatever its state (consumed, revoked, expired): callers decide.
    async fn get(&self, token_hash: &str) -> Result<Option<RefreshGrant>, GrantError>;
    /// Atomically marks the token used; of concurrent callers at most one gets `Consumed`, and
    /// only for that one are `successor` stored and `issued` recorded in the audit log, in the
    /// same transaction.
    async fn consume(
        &self,
        token_hash: &str,
        now: i64,
        successor: Option<Successor>,
        issued: Option<AuditEntry>,
    ) -> Result<ConsumeResult, GrantError>;
    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<u64, GrantError>;
    /// Revokes every token of `subject`'s session `sid`.
    async fn revoke_sid(&self, subject: &str, sid: &str, now: i64) -> Result<u64, GrantError>;
    /// Revokes every token issued to a professional, whatever its session.
    async fn revoke_subject(&self, subject: &str, now: i64) -> Result<u64, GrantError>;
}
