//! Append-only, hash-chained audit log.
//!
//! Each record's hash covers its id, the previous record's hash and its own fields, so editing or
//! removing a record breaks the chain at that point, which [`AuditLog::verify`] reports. (Removing
//! the newest records, or rewriting the whole chain from some point on, is not detectable from the
//! chain alone: ship the latest hash elsewhere, e.g. to the logs, to anchor it.)

use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::crypto::sha256_hex;
use crate::entity::audit_log::{self, ActiveModel, Column, Entity};
use crate::{DirectoryError, Inner, LOCK_AUDIT};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HASH_DOMAIN: &str = "caducee-audit-v1";
const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;
const VERIFY_BATCH: u64 = 500;

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
    inner: &'a Inner,
}

impl<'a> AuditLog<'a> {
    pub(crate) fn new(inner: &'a Inner) -> Self {
        AuditLog { inner }
    }

    /// Appends an event at the end of the chain. Reading the last record and inserting the next
    /// happen in one transaction holding a database-wide lock, so appends from several processes
    /// or nodes never fork the chain.
    pub async fn append(&self, event: AuditEvent) -> Result<AuditRecord, DirectoryError> {
        let details = serde_json::to_string(&event.details)?;
        let txn = self.inner.write_txn(LOCK_AUDIT).await?;
        let last = Entity::find()
            .select_only()
            .column(Column::Id)
            .column(Column::Hash)
            .order_by_desc(Column::Id)
            .into_tuple::<(i64, String)>()
            .one(&txn)
            .await?;
        let (id, prev_hash) = match last {
            Some((id, hash)) => (id + 1, hash),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let mut row = audit_log::Model {
            id,
            at: event.at,
            event: event.event,
            actor: event.actor,
            subject: event.subject,
            client_id: event.client_id,
            source_ip: event.source_ip,
            outcome: event.outcome,
            details,
            prev_hash,
            hash: String::new(),
        };
        row.hash = chain_hash(&row);
        let am: ActiveModel = row.clone().into();
        Entity::insert(am).exec_without_returning(&txn).await?;
        txn.commit().await?;
        Ok(AuditRecord { details: event.details, ..to_record_fields(row)? })
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
                if first_bad_id.is_none() && (row.prev_hash != expected_prev || chain_hash(&row) != row.hash) {
                    first_bad_id = Some(row.id);
                }
                expected_prev = row.hash;
            }
        }
        Ok(AuditVerification { records, first_bad_id })
    }
}

/// SHA-256 over a JSON array of the fields: JSON escaping makes the encoding unambiguous, and the
/// details are hashed as the exact text stored, so no re-serialisation can change the hash.
fn chain_hash(row: &audit_log::Model) -> String {
    let canonical = json!([
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
    ]);
    sha256_hex(canonical.to_string().as_bytes())
}

fn to_record_fields(row: audit_log::Model) -> Result<AuditRecord, DirectoryError> {
    Ok(AuditRecord {
        details: serde_json::from_str(&row.details)?,
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
    })
}
