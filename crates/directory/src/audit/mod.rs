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
//! per event into one per batch, without weakening "an answered append is durable". On a SQLite
//! file a dedicated thread writes the groups ([`sqlite_writer`]); elsewhere the callers take
//! turns writing them through the pool ([`group`]).

mod group;
mod sqlite_writer;

use std::path::Path;
use std::sync::Arc;

use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::crypto::sha256_hex;
use crate::entity::audit_log::{self, Column, Entity};
use crate::{DirectoryError, Inner};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HASH_DOMAIN: &str = "caducee-audit-v1";
const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;
const VERIFY_BATCH: u64 = 500;
/// Most records one group commit writes; the rest wait for the next one.
const MAX_GROUP: usize = 256;

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

/// Who writes this process's appends.
pub(crate) enum AuditWriter {
    /// The callers, taking turns through the pool.
    Pool(group::AuditQueue),
    /// A thread of its own, on its own connection to the SQLite file.
    Thread(sqlite_writer::SqliteAuditWriter),
}

impl AuditWriter {
    /// The dedicated thread for a SQLite file; the pool otherwise.
    pub(crate) fn for_sqlite_file(path: &Path) -> Result<Self, DirectoryError> {
        Ok(AuditWriter::Thread(sqlite_writer::SqliteAuditWriter::start(path)?))
    }

    pub(crate) fn pool() -> Self {
        AuditWriter::Pool(group::AuditQueue::default())
    }
}

/// An append waiting for its group to be committed.
pub(crate) struct Waiting {
    event: AuditEvent,
    details: String,
    reply: oneshot::Sender<Result<AuditRecord, DirectoryError>>,
}

type Answer = oneshot::Receiver<Result<AuditRecord, DirectoryError>>;

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
        let (reply, answer) = oneshot::channel();
        let waiting = Waiting { event, details, reply };
        match &self.inner.audit_writer {
            AuditWriter::Thread(writer) => {
                writer.submit(waiting)?;
                answer.await.unwrap_or_else(|_| Err(writer_gone()))
            }
            AuditWriter::Pool(queue) => group::append(self.inner, queue, waiting, answer).await,
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

fn writer_gone() -> DirectoryError {
    DirectoryError::Unavailable("the audit writer stopped before committing".into())
}

/// A group taken apart: the rows to chain and write, and what each caller gets back.
struct SplitGroup {
    rows: Vec<audit_log::Model>,
    replies: Vec<oneshot::Sender<Result<AuditRecord, DirectoryError>>>,
    /// The callers' details as given, so that the answer need not parse them back.
    details: Vec<Value>,
}

fn split_group(group: Vec<Waiting>) -> SplitGroup {
    let mut split = SplitGroup {
        rows: Vec::with_capacity(group.len()),
        replies: Vec::with_capacity(group.len()),
        details: Vec::with_capacity(group.len()),
    };
    for w in group {
        split.replies.push(w.reply);
        split.details.push(w.event.details);
        split.rows.push(audit_log::Model {
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
    split
}

/// Gives each row its id, its link to the record before it and its hash, after `last` (the
/// newest stored record's id and hash, read inside the write lock).
fn chain_rows(rows: &mut [audit_log::Model], last: Option<(i64, String)>) -> Result<(), DirectoryError> {
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
    Ok(())
}

/// Tells every caller of the group how its write went: its own record, or the group's error.
fn reply_all(split: SplitGroup, result: Result<(), DirectoryError>) {
    match result {
        Ok(()) => {
            for ((reply, row), details) in split.replies.into_iter().zip(split.rows).zip(split.details) {
                let record = AuditRecord { details, ..to_record_fields_raw(row) };
                let _ = reply.send(Ok(record));
            }
        }
        Err(e) => {
            for reply in split.replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
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
