//! Refresh tokens, stored by hash, grouped in grants (rotation families).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::Value;

use crate::entity::refresh_token::{self, ActiveModel, Column, Entity};
use crate::{DirectoryError, Inner};

/// A refresh token as stored. The token itself is never stored, only its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshTokenRecord {
    /// Hex SHA-256 of the token, computed by the caller (see [`crate::sha256_hex`]).
    pub token_hash: String,
    /// The rotation family: every token refreshed from the same authorization shares it.
    pub grant_id: String,
    pub client_id: String,
    pub subject: String,
    /// The SSO session it was issued in, so that ending the session kills it.
    pub sid: String,
    /// Scopes, auth_time, acr, amr...: owned by the protocol crate.
    pub payload: Value,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The result of presenting a refresh token.
#[derive(Clone, Debug, PartialEq)]
pub enum ConsumeOutcome {
    /// This call used it: issue the next token.
    Consumed(RefreshTokenRecord),
    /// Used before: a replay, the caller should revoke the whole grant.
    AlreadyConsumed(RefreshTokenRecord),
    Revoked(RefreshTokenRecord),
    Expired(RefreshTokenRecord),
    Unknown,
}

/// Repository of refresh tokens; obtained from [`crate::Directory::refresh_tokens`].
pub struct RefreshTokens<'a> {
    inner: &'a Inner,
}

impl<'a> RefreshTokens<'a> {
    pub(crate) fn new(inner: &'a Inner) -> Self {
        RefreshTokens { inner }
    }

    /// `Conflict` if the hash exists (a token collision, or an insert retried).
    pub async fn insert(&self, record: RefreshTokenRecord) -> Result<(), DirectoryError> {
        let am: ActiveModel = refresh_token::Model {
            token_hash: record.token_hash,
            grant_id: record.grant_id,
            client_id: record.client_id,
            subject: record.subject,
            sid: record.sid,
            payload: serde_json::to_string(&record.payload)?,
            created_at: record.created_at,
            expires_at: record.expires_at,
            consumed_at: record.consumed_at,
            revoked_at: record.revoked_at,
        }
        .into();
        Entity::insert(am).exec_without_returning(&self.inner.db).await?;
        Ok(())
    }

    pub async fn get(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>, DirectoryError> {
        Entity::find_by_id(token_hash.to_owned()).one(&self.inner.db).await?.map(to_record).transpose()
    }

    /// Marks the token used if it is live, atomically: among concurrent callers (on any node)
    /// exactly one gets `Consumed`, the others `AlreadyConsumed`.
    pub async fn consume(&self, token_hash: &str, now: i64) -> Result<ConsumeOutcome, DirectoryError> {
        let res = Entity::update_many()
            .col_expr(Column::ConsumedAt, Expr::value(now))
            .filter(Column::TokenHash.eq(token_hash))
            .filter(Column::ConsumedAt.is_null())
            .filter(Column::RevokedAt.is_null())
            .filter(Column::ExpiresAt.gt(now))
            .exec(&self.inner.db)
            .await?;
        let Some(record) = self.get(token_hash).await? else {
            return Ok(ConsumeOutcome::Unknown);
        };
        Ok(if res.rows_affected == 1 {
            ConsumeOutcome::Consumed(record)
        } else if record.revoked_at.is_some() {
            ConsumeOutcome::Revoked(record)
        } else if record.consumed_at.is_some() {
            ConsumeOutcome::AlreadyConsumed(record)
        } else {
            ConsumeOutcome::Expired(record)
        })
    }

    /// Revokes every live token of a grant (reuse detected, code replayed); returns how many.
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<u64, DirectoryError> {
        self.revoke_where(Column::GrantId, grant_id, now).await
    }

    /// Revokes every token of an SSO session (logout, session revoked by an admin).
    pub async fn revoke_sid(&self, sid: &str, now: i64) -> Result<u64, DirectoryError> {
        self.revoke_where(Column::Sid, sid, now).await
    }

    /// Revokes every token of a professional ("log out everywhere", account blocked).
    pub async fn revoke_subject(&self, subject: &str, now: i64) -> Result<u64, DirectoryError> {
        self.revoke_where(Column::Subject, subject, now).await
    }

    /// Revokes every token issued to a client (the client is removed or compromised).
    pub async fn revoke_client(&self, client_id: &str, now: i64) -> Result<u64, DirectoryError> {
        self.revoke_where(Column::ClientId, client_id, now).await
    }

    /// Deletes expired tokens; returns how many.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, DirectoryError> {
        let res = Entity::delete_many().filter(Column::ExpiresAt.lte(now)).exec(&self.inner.db).await?;
        Ok(res.rows_affected)
    }

    async fn revoke_where(&self, column: Column, value: &str, now: i64) -> Result<u64, DirectoryError> {
        let res = Entity::update_many()
            .col_expr(Column::RevokedAt, Expr::value(now))
            .filter(column.eq(value))
            .filter(Column::RevokedAt.is_null())
            .exec(&self.inner.db)
            .await?;
        Ok(res.rows_affected)
    }
}

fn to_record(row: refresh_token::Model) -> Result<RefreshTokenRecord, DirectoryError> {
    Ok(RefreshTokenRecord {
        payload: serde_json::from_str(&row.payload)?,
        token_hash: row.token_hash,
        grant_id: row.grant_id,
        client_id: row.client_id,
        subject: row.subject,
        sid: row.sid,
        created_at: row.created_at,
        expires_at: row.expires_at,
        consumed_at: row.consumed_at,
        revoked_at: row.revoked_at,
    })
}
