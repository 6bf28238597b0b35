//! Append-only, hash-chained audit log.
//!
//! Each record's hash covers its id, the previous record's hash and its own fields, so editing or
//! removing a record breaks the chain at that point, which [`AuditLog::verify`] reports. (Removing
//! the newest records, or rewriting the whole chain from some point on, is not detectable from the
//! chain alone: ship the latest hash elsewhere, e.g. to the logs, to anchor it.)
//!
//! Appends are group-committed: the chain needs one writer at a time, so appends that arrive
//! while a transaction commits wait and are written together by the next one, and each caller
//! still returns only once its own record is committed. Under load this turns one transaction
//! per event into one per batch, without weakening "an answered append is durable".

use std::sync::Arc;

use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::crypto::sha256_hex;
use crate::entity::audit_log::{self, ActiveModel, Column, Entity};
use crate::{DirectoryError, Inner, LOCK_AUDIT};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HASH_DOMAIN: &str = "caducee-audit-v1";
const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;
const VERIFY_BATCH: u64 = 500;
/// Most records one group commit writes; the rest wait for the next one.
const MAX_GROUP: usize = 256;
/// Rows per `INSERT` statement: 11 bound values each stays far below SQLite's variable limit.
const ROWS_PER_INSERT: usize = 64;

/// Something worth keeping a durable trace of (logins, admin actions, revocations...).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Dotted name, e.g. `login.password`, `admin.session.revoke`.
    pub event: String,
    /// Who did it (an admin, a professional, `system`).
    pub actor: Option<String>,
    /// Whom it concerns.
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub source_ip: Option<String>,
    /// `success`, `failure`, `denied`...
    pub outcome: String,
    pub details: Value,
    pub at: i64,
}

/// A stored event with its place in the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Contiguous and increasing: 1, 2, 3...
    pub id: i64,
    pub event: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub source_ip: Option<String>,
    pub outcome: String,
    pub details: Value,
    pub at: i64,
    pub prev_hash: String,
    /// Hex SHA-256 over `prev_hash`, `id` and the event fields.
    pub hash: String,
}

/// Filters for [`AuditLog::query`]; every field optional. Pages by `after_id`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub subject: Option<String>,
    pub event: Option<String>,
    /// Inclusive lower bound on `at`.
    pub from: Option<i64>,
    /// Inclusive upper bound on `at`.
    pub to: Option<i64>,
    /// Only records with a greater id (the last id of the previous page).
    pub after_id: Option<i64>,
    /// Default 100, at most 1000.
    pub limit: Option<u64>,
    /// Newest first (then `after_id` is ignored): for "what happened lately" views.
    pub newest_first: bool,
}

/// The result of checking the whole chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerification {
    pub records: u64,
    /// The first record whose hash or link to its predecessor does not match.
    pub first_bad_id: Option<i64>,
}

/// The audit log; obtained from [`crate::Directory::audit`].
pub struct AuditLog<'a> {
    inner: &'a Arc<Inner>,
}

/// Appends of this process waiting for the next group commit, and the right to write one.
#[derive(Default)]
pub(crate) struct AuditQueue {
    pending: std::sync::Mutex<Vec<Waiting>>,
    writer: tokio::sync::Mutex<()>,
}

struct Waiting {
    event: AuditEvent,
    details: String,
    reply: oneshot::Sender<Result<AuditRecord, DirectoryError>>,
}

impl<'a> AuditLog<'a> {
    pub(crate) fn new(inner: &'a Arc<Inner>) -> Self {
        AuditLog { inner }
    }

    /// Appends an event at the end of the chain and returns once it is committed. Reading the
    /// last record and inserting the next happen in one transaction holding a database-wide
    /// lock, so appends from several processes or nodes never fork the chain.
    ///
    /// Dropping the returned future does not withdraw the event: once queued, it goes in the
    /// next group written, by this caller or by the next one to append.
    pub async fn append(&self, event: AuditEvent) -> Result<AuditRecord, DirectoryError> {
        let details = serde_json::to_string(&event.details)?;
        let (reply, mut answer) = oneshot::channel();
        lock_pending(&self.inner.audit_queue).push(Waiting { event, details, reply });
        loop {
            tokio::select! {
                biased;
                result = &mut answer => return result.unwrap_or_else(|_| Err(writer_gone())),
                guard = self.inner.audit_queue.writer.lock() => {
                    // The writer before us may have taken our event in its group.
                    match answer.try_recv() {
                        Ok(result) => return result,
                        Err(oneshot::error::TryRecvError::Closed) => return Err(writer_gone()),
                        Err(oneshot::error::TryRecvError::Empty) => {}
                    }
                    let group: Vec<Waiting> = {
                        let mut pending = lock_pending(&self.inner.audit_queue);
                        let n = pending.len().min(MAX_GROUP);
                        pending.drain(..n).collect()
                    };
                    if group.is_empty() {
                        // Ours is in a group whose writer was dropped while its task commits.
                        drop(guard);
                        return answer.await.unwrap_or_else(|_| Err(writer_gone()));
                    }
                    // In a task of its own, so that a caller going away mid-commit cannot abandon
                    // the other callers' events.
                    let inner = Arc::clone(self.inner);
                    let _ = tokio::spawn(commit_group(inner, group)).await;
                    drop(guard);
                }
            }
        }
    }

    /// Matching records in id order, at most `limit`.
    pub async fn query(&self, q: AuditQuery) -> Result<Vec<AuditRecord>, DirectoryError> {
        let mut select = Entity::find();
        if let Some(subject) = q.subject {
            select = select.filter(Column::Subject.eq(subject));
        }
        if let Some(event) = q.event {
            select = select.filter(Column::Event.eq(event));
        }
        if let Some(from) = q.from {
            select = select.filter(Column::At.gte(from));
        }
        if let Some(to) = q.to {
            select = select.filter(Column::At.lte(to));
        }
        if let (Some(after), false) = (q.after_id, q.newest_first) {
            select = select.filter(Column::Id.gt(after));
        }
        let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        select = if q.newest_first { select.order_by_desc(Column::Id) } else { select.order_by_asc(Column::Id) };
        select.limit(limit).all(&self.inner.db).await?.into_iter().map(to_record_fields).collect()
    }

    /// Walks the whole chain from the first record, recomputing every hash.
    pub async fn verify(&self) -> Result<AuditVerification, DirectoryError> {
        let mut records = 0u64;
        let mut first_bad_id = None;
        let mut expected_prev = GENESIS_HASH.to_owned();
        let mut after = i64::MIN;
        loop {
            let batch = Entity::find()
                .filter(Column::Id.gt(after))
                .order_by_asc(Column::Id)
                .limit(VERIFY_BATCH)
                .all(&self.inner.db)
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.id;
            for row in batch {
                records += 1;
                if first_bad_id.is_none() && (row.prev_hash != expected_prev || chain_hash(&row)? != row.hash) {
                    first_bad_id = Some(row.id);
                }
                expected_prev = row.hash;
            }
        }
        Ok(AuditVerification { records, first_bad_id })
    }
}

fn lock_pending(queue: &AuditQueue) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
    // The lock only guards pushes and drains, which cannot panic halfway.
    queue.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn writer_gone() -> DirectoryError {
    DirectoryError::Unavailable("the audit writer stopped before committing".into())
}

/// Writes a group of events in one transaction and tells each caller how it went.
async fn commit_group(inner: Arc<Inner>, group: Vec<Waiting>) {
    let mut replies = Vec::with_capacity(group.len());
    let mut rows = Vec::with_capacity(group.len());
    let mut values = Vec::with_capacity(group.len());
    for w in group {
        replies.push(w.reply);
        values.push(w.event.details);
        rows.push(audit_log::Model {
            id: 0,
            at: w.event.at,
            event: w.event.event,
            actor: w.event.actor,
            subject: w.event.subject,
            client_id: w.event.client_id,
            source_ip: w.event.source_ip,
            outcome: w.event.outcome,
            details: w.details,
            prev_hash: String::new(),
            hash: String::new(),
        });
    }
    match write_rows(&inner, &mut rows).await {
        Ok(()) => {
            for ((reply, row), details) in replies.into_iter().zip(rows).zip(values) {
                let record = AuditRecord { details, ..to_record_fields_raw(row) };
                let _ = reply.send(Ok(record));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// Chains `rows` after the last stored record and inserts them, in one locked transaction.
async fn write_rows(inner: &Inner, rows: &mut [audit_log::Model]) -> Result<(), DirectoryError> {
    let txn = inner.write_txn(LOCK_AUDIT).await?;
    let last = Entity::find()
        .select_only()
        .column(Column::Id)
        .column(Column::Hash)
        .order_by_desc(Column::Id)
        .into_tuple::<(i64, String)>()
        .one(&txn)
        .await?;
    let (mut id, mut prev_hash) = match last {
        Some((id, hash)) => (id + 1, hash),
        None => (1, GENESIS_HASH.to_owned()),
    };
    for row in rows.iter_mut() {
        row.id = id;
        row.prev_hash = prev_hash;
        row.hash = chain_hash(row)?;
        prev_hash = row.hash.clone();
        id += 1;
    }
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let models = chunk.iter().cloned().map(ActiveModel::from);
        Entity::insert_many(models).exec_without_returning(&txn).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// SHA-256 over a JSON array of the fields: JSON escaping makes the encoding unambiguous, and the
/// details are hashed as the exact text stored, so no re-serialisation can change the hash.
/// Serialised straight from borrowed fields (a tuple is written as a JSON array), byte for byte
/// what `json!([...]).to_string()` gives, without building a `Value` on every append.
fn chain_hash(row: &audit_log::Model) -> Result<String, DirectoryError> {
    let fields = (
        HASH_DOMAIN,
        row.id,
        &row.prev_hash,
        row.at,
        &row.event,
        &row.actor,
        &row.subject,
        &row.client_id,
        &row.source_ip,
        &row.outcome,
        &row.details,
    );
    Ok(sha256_hex(&serde_json::to_vec(&fields)?))
}

fn to_record_fields(row: audit_log::Model) -> Result<AuditRecord, DirectoryError> {
    let details = serde_json::from_str(&row.details)?;
    Ok(AuditRecord { details, ..to_record_fields_raw(row) })
}

/// The record without parsing its details (left `null`), for callers that still hold them.
fn to_record_fields_raw(row: audit_log::Model) -> AuditRecord {
    AuditRecord {
        details: Value::Null,
        id: row.id,
        event: row.event,
        actor: row.actor,
        subject: row.subject,
        client_id: row.client_id,
        source_ip: row.source_ip,
        outcome: row.outcome,
        at: row.at,
        prev_hash: row.prev_hash,
        hash: row.hash,
    }
}

#[cfg(test)]
mod chain_encoding_tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    /// Chains written before this encoding must still verify: the bytes hashed are the same.
    #[test]
    fn the_tuple_encoding_is_the_json_array_encoding() {
        let row = audit_log::Model {
            id: 42,
            at: -7,
            event: "token_issued".into(),
            actor: None,
            subject: Some("sub \"quoted\" é \u{1F600} \n".into()),
            client_id: Some("rp".into()),
            source_ip: None,
            outcome: "success".into(),
            details: "{\"scope\":\"openid\"}".into(),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        let old = json!([
            HASH_DOMAIN,
            row.id,
            row.prev_hash,
            row.at,
            row.event,
            row.actor,
            row.subject,
            row.client_id,
            row.source_ip,
            row.outcome,
            row.details,
        ])
        .to_string();
        assert_eq!(chain_hash(&row).unwrap(), sha256_hex(old.as_bytes()));
    }
}
