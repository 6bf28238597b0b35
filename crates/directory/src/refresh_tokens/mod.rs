//! Refresh tokens, stored by hash, grouped in grants (rotation families).
//!
//! Writes are on the token endpoint's path, so they are kept cheap without giving up what a
//! refresh token guarantees (stored hashed, used once, decided atomically, durable before it is
//! handed out):
//! - They join the audit log's group commits: on a SQLite file through the file's writer thread
//!   ([`sqlite`]), elsewhere with the callers taking turns through the pool ([`write_in`]).
//!   Several requests' writes share one transaction (on PostgreSQL, one synced log write), and
//!   each caller returns once its own write is committed, as for audit records.
//! - A rotation is one step: the presented token is marked used and its successor stored in the
//!   same transaction, and on PostgreSQL in a single statement.
//! - The audit record of the tokens issued with a write ([`RefreshTokens::insert_recorded`],
//!   [`RefreshTokens::rotate_recorded`]) is chained in the same transaction, only if the write
//!   took effect: the token, its successor and its record are committed together or not at all,
//!   for one wait on the writer instead of two.
//!
//! This module owns the table's statements; it knows nothing of tokens' contents (the
//! payload is the protocol crate's JSON).

pub(crate) mod sqlite;

use std::sync::Arc;

use sea_orm::sea_query::{Expr, IntoCondition};
use sea_orm::{ColumnTrait as _, Condition, ConnectionTrait, DbBackend, EntityTrait as _, QueryFilter as _, Statement};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::audit::{AttachedRecord, AuditEvent};
use crate::entity::refresh_token::{self, ActiveModel, Column, Entity};
use crate::{DirectoryError, Inner};

/// Rows per `INSERT` statement of a group: 10 bound values each.
const ROWS_PER_INSERT: usize = 64;

/// A write for the group commit.
pub(crate) enum RefreshOp {
    Insert(refresh_token::Model),
    /// Marks the token used if it is live, and then stores `successor` with the used row's grant.
    Rotate {
        token_hash: String,
        now: i64,
        successor: Option<Successor>,
    },
}

/// A write and where its answer goes once its transaction is committed: for a rotation, the
/// row it used (`None`: the token was not live).
pub(crate) struct RefreshJob {
    pub(crate) op: RefreshOp,
    /// Chained in the write's transaction if the write took effect (see [`RefreshJob::took_effect`]).
    pub(crate) record: Option<AttachedRecord>,
    pub(crate) reply: oneshot::Sender<Result<Option<refresh_token::Model>, DirectoryError>>,
}

impl RefreshJob {
    /// Whether the write, answered `answer`, did what it was asked: an insert stored its row, a
    /// rotation consumed the token. Its audit record is written only then.
    pub(crate) fn took_effect(&self, answer: &Option<refresh_token::Model>) -> bool {
        match self.op {
            RefreshOp::Insert(_) => true,
            RefreshOp::Rotate { .. } => answer.is_some(),
        }
    }
}

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

/// The token that replaces a consumed one: same grant, client, subject, session and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Successor {
    pub token_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The result of presenting a refresh token.
#[derive(Clone, Debug, PartialEq)]
pub enum ConsumeOutcome {
    /// This call used it (and stored its successor, if one was given): issue the next token.
    Consumed(RefreshTokenRecord),
    /// Used before: a replay, the caller should revoke the whole grant.
    AlreadyConsumed(RefreshTokenRecord),
    Revoked(RefreshTokenRecord),
    Expired(RefreshTokenRecord),
    Unknown,
}

/// Repository of refresh tokens; obtained from [`crate::Directory::refresh_tokens`].
pub struct RefreshTokens<'a> {
    inner: &'a Arc<Inner>,
}

/// PostgreSQL: the presented token marked used and its successor stored, in one statement.
const ROTATE_PG: &str = "WITH used AS ( \
       UPDATE refresh_tokens SET consumed_at = $2 \
       WHERE token_hash = $1 AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > $2 \
       RETURNING grant_id, client_id, subject, sid, payload, created_at, expires_at \
     ), next AS ( \
       INSERT INTO refresh_tokens (token_hash, grant_id, client_id, subject, sid, payload, created_at, expires_at) \
       SELECT $3, grant_id, client_id, subject, sid, payload, $4, $5 FROM used WHERE $3 IS NOT NULL \
     ) \
     SELECT grant_id, client_id, subject, sid, payload, created_at, expires_at FROM used";
/// SQLite: the same in two statements of one transaction.
const CONSUME_SQLITE: &str = "UPDATE refresh_tokens SET consumed_at = ?2 \
     WHERE token_hash = ?1 AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > ?2 \
     RETURNING grant_id, client_id, subject, sid, payload, created_at, expires_at";
const SUCCESSOR_SQLITE: &str = "INSERT INTO refresh_tokens \
     (token_hash, grant_id, client_id, subject, sid, payload, created_at, expires_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

impl<'a> RefreshTokens<'a> {
    pub(crate) fn new(inner: &'a Arc<Inner>) -> Self {
        RefreshTokens { inner }
    }

    /// `Conflict` if the hash exists (a token collision, or an insert retried); on the pool's
    /// path the writes of its whole group then fail with it (see the module's notes).
    pub async fn insert(&self, record: RefreshTokenRecord) -> Result<(), DirectoryError> {
        self.insert_recorded(record, None).await
    }

    /// [`Self::insert`], and `issued` (the record of the tokens issued with it) chained in the
    /// audit log in the same transaction.
    pub async fn insert_recorded(
        &self,
        record: RefreshTokenRecord,
        issued: Option<AuditEvent>,
    ) -> Result<(), DirectoryError> {
        let row = refresh_token::Model {
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
        };
        let issued = issued.map(AttachedRecord::new).transpose()?;
        self.inner.audit_writer.refresh(self.inner, RefreshOp::Insert(row), issued).await.map(drop)
    }

    pub async fn get(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>, DirectoryError> {
        Entity::find_by_id(token_hash.to_owned()).one(&self.inner.db).await?.map(to_record).transpose()
    }

    /// Marks the token used if it is live, atomically: among concurrent callers (on any node)
    /// exactly one gets `Consumed`, the others `AlreadyConsumed`.
    pub async fn consume(&self, token_hash: &str, now: i64) -> Result<ConsumeOutcome, DirectoryError> {
        self.rotate(token_hash, now, None).await
    }

    /// [`Self::consume`], and when this call is the one that used the token, `successor` stored
    /// in the same transaction: a rotation either happens whole or not at all.
    pub async fn rotate(
        &self,
        token_hash: &str,
        now: i64,
        successor: Option<Successor>,
    ) -> Result<ConsumeOutcome, DirectoryError> {
        self.rotate_recorded(token_hash, now, successor, None).await
    }

    /// [`Self::rotate`], and when this call used the token, `issued` (the record of the tokens
    /// issued for it) chained in the audit log in the same transaction; otherwise not written.
    pub async fn rotate_recorded(
        &self,
        token_hash: &str,
        now: i64,
        successor: Option<Successor>,
        issued: Option<AuditEvent>,
    ) -> Result<ConsumeOutcome, DirectoryError> {
        let op = RefreshOp::Rotate { token_hash: token_hash.to_owned(), now, successor };
        let issued = issued.map(AttachedRecord::new).transpose()?;
        let used = self.inner.audit_writer.refresh(self.inner, op, issued).await?;
        if let Some(used) = used {
            return Ok(ConsumeOutcome::Consumed(to_record(refresh_token::Model {
                token_hash: token_hash.to_owned(),
                consumed_at: Some(now),
                revoked_at: None,
                ..used
            })?));
        }
        // Not used by this call: say why (rare: replays, revoked or expired tokens).
        let Some(record) = self.get(token_hash).await? else {
            return Ok(ConsumeOutcome::Unknown);
        };
        Ok(if record.revoked_at.is_some() {
            ConsumeOutcome::Revoked(record)
        } else if record.consumed_at.is_some() {
            ConsumeOutcome::AlreadyConsumed(record)
        } else {
            ConsumeOutcome::Expired(record)
        })
    }

    /// Revokes every live token of a grant (reuse detected, code replayed); returns how many.
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<u64, DirectoryError> {
        self.revoke_where(Column::GrantId.eq(grant_id), now).await
    }

    /// Revokes every token of `subject`'s SSO session `sid` (logout, session revoked by an
    /// admin). The subject is asked for because the table's index is `(subject, sid)`: one
    /// index for both revocations, one page less written per token stored.
    pub async fn revoke_sid(&self, subject: &str, sid: &str, now: i64) -> Result<u64, DirectoryError> {
        self.revoke_where(Condition::all().add(Column::Subject.eq(subject)).add(Column::Sid.eq(sid)), now).await
    }

    /// Revokes every token of a professional ("log out everywhere", account blocked).
    pub async fn revoke_subject(&self, subject: &str, now: i64) -> Result<u64, DirectoryError> {
        self.revoke_where(Column::Subject.eq(subject), now).await
    }

    /// Revokes every token issued to a client (the client is removed or compromised).
    pub async fn revoke_client(&self, client_id: &str, now: i64) -> Result<u64, DirectoryError> {
        self.revoke_where(Column::ClientId.eq(client_id), now).await
    }

    /// Deletes expired tokens; returns how many.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, DirectoryError> {
        let res = Entity::delete_many().filter(Column::ExpiresAt.lte(now)).exec(&self.inner.db).await?;
        Ok(res.rows_affected)
    }

    /// Revokes the live tokens `which` selects.
    async fn revoke_where(&self, which: impl IntoCondition, now: i64) -> Result<u64, DirectoryError> {
        let res = Entity::update_many()
            .col_expr(Column::RevokedAt, Expr::value(now))
            .filter(which)
            .filter(Column::RevokedAt.is_null())
            .exec(&self.inner.db)
            .await?;
        Ok(res.rows_affected)
    }
}

/// The group's refresh-token writes in `txn` (the pool's path): the inserts in as few
/// statements as rows allow, then each rotation; their answers in the jobs' order.
pub(crate) async fn write_in<C: ConnectionTrait>(
    txn: &C,
    jobs: &[RefreshJob],
) -> Result<Vec<Option<refresh_token::Model>>, DirectoryError> {
    let inserts: Vec<ActiveModel> = jobs
        .iter()
        .filter_map(|j| match &j.op {
            RefreshOp::Insert(row) => Some(row.clone().into()),
            RefreshOp::Rotate { .. } => None,
        })
        .collect();
    for chunk in inserts.chunks(ROWS_PER_INSERT) {
        Entity::insert_many(chunk.iter().cloned()).exec_without_returning(txn).await?;
    }
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        answers.push(match &job.op {
            RefreshOp::Insert(_) => None,
            RefreshOp::Rotate { token_hash, now, successor } => rotate_in(txn, token_hash, *now, successor).await?,
        });
    }
    Ok(answers)
}

/// The row a rotation consumed in `txn` (its `token_hash`, `consumed_at` and `revoked_at` left
/// for the caller to fill in), or `None` if it was not live.
async fn rotate_in<C: ConnectionTrait>(
    txn: &C,
    token_hash: &str,
    now: i64,
    successor: &Option<Successor>,
) -> Result<Option<refresh_token::Model>, DirectoryError> {
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        let (next_hash, next_created, next_expires) = match successor {
            Some(s) => (Some(s.token_hash.clone()), s.created_at, s.expires_at),
            None => (None, 0, 0),
        };
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                ROTATE_PG,
                [token_hash.into(), now.into(), next_hash.into(), next_created.into(), next_expires.into()],
            ))
            .await?;
        return row.map(|r| used_row(&r)).transpose();
    }
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(backend, CONSUME_SQLITE, [token_hash.into(), now.into()]))
        .await?;
    let used = row.map(|r| used_row(&r)).transpose()?;
    if let (Some(u), Some(s)) = (&used, successor) {
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            SUCCESSOR_SQLITE,
            [
                s.token_hash.clone().into(),
                u.grant_id.clone().into(),
                u.client_id.clone().into(),
                u.subject.clone().into(),
                u.sid.clone().into(),
                u.payload.clone().into(),
                s.created_at.into(),
                s.expires_at.into(),
            ],
        ))
        .await?;
    }
    Ok(used)
}

/// The columns the consuming statements return, as a row without its key and use marks.
fn used_row(row: &sea_orm::QueryResult) -> Result<refresh_token::Model, DirectoryError> {
    Ok(refresh_token::Model {
        token_hash: String::new(),
        grant_id: row.try_get("", "grant_id")?,
        client_id: row.try_get("", "client_id")?,
        subject: row.try_get("", "subject")?,
        sid: row.try_get("", "sid")?,
        payload: row.try_get("", "payload")?,
        created_at: row.try_get("", "created_at")?,
        expires_at: row.try_get("", "expires_at")?,
        consumed_at: None,
        revoked_at: None,
    })
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
