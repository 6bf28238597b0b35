//! Append-only, hash-chained audit log.
//!
//! Each record's hash covers its id, the previous record's hash and its own fields, so editing or
//! removing a record breaks the chain at that point, which [`AuditLog::verify`] reports. The hash
//! is an HMAC-SHA256 under a key derived from the master key (purpose [`KEY_PURPOSE`], domain
//! `caducee-audit-v2`): whoever can write the database but lacks the key cannot rewrite the chain
//! from some point on and recompute the rest, as a bare SHA-256 would let them.
//!
//! Records chained before the key existed (bare SHA-256, domain `caducee-audit-v1`) are accepted
//! only as the chain's prefix, before its first keyed record, and counted apart; an unkeyed
//! record after a keyed one is tampering (else anyone could extend or rewrite the chain unkeyed).
//!
//! What the chain alone cannot show is records removed from its end, or the chain rebuilt by
//! someone holding the key (or, while it is all unkeyed, by anyone). For that, operators keep the
//! newest record's id and hash ([`AuditLog::head`], printed by `caducee audit head`) outside the
//! database, and [`AuditLog::verify`] checks the chain against it.
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

use crate::crypto::{KeyedHash, sha256_hex};
use crate::entity::audit_log::{self, Column, Entity};
use crate::{DirectoryError, Inner};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The purpose of the chain's key among the keys derived from the master key.
pub const KEY_PURPOSE: &str = "audit-chain";
/// Keyed records (HMAC-SHA256): every record this version writes.
const HASH_DOMAIN: &str = "caducee-audit-v2";
/// Records of earlier versions (bare SHA-256), accepted only before the first keyed one.
const UNKEYED_HASH_DOMAIN: &str = "caducee-audit-v1";
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
    /// Hex HMAC-SHA256 (under the chain's key) over `prev_hash`, `id` and the event fields; a bare
    /// SHA-256 for records written before the chain was keyed.
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
    /// Records at the start of the chain written before it was keyed: only the keyed records
    /// after them, or a head exported since, protect them. All of them when the chain has no
    /// keyed record at all.
    pub unkeyed_records: u64,
    /// The newest record, to keep outside the database for the next check.
    pub head: Option<AuditHead>,
    /// How the chain compares with the head it was checked against, if one was given.
    pub head_check: Option<HeadCheck>,
}

impl AuditVerification {
    /// No record breaks the chain, and the given head (if any) is in it, unchanged.
    pub fn is_intact(&self) -> bool {
        self.first_bad_id.is_none() && self.head_check.is_none_or(|c| c == HeadCheck::Matches)
    }
}

/// The newest record of a chain as an operator exported it: written `ID:HASH`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub id: i64,
    pub hash: String,
}

impl std::fmt::Display for AuditHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, self.hash)
    }
}

impl std::str::FromStr for AuditHead {
    type Err = DirectoryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad =
            || DirectoryError::Invalid("an audit head is written ID:HASH (as `caducee audit head` prints it)".into());
        let (id, hash) = text.trim().split_once(':').ok_or_else(bad)?;
        let id: i64 = id.parse().map_err(|_| bad())?;
        let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if id < 1 || !hex {
            return Err(bad());
        }
        Ok(AuditHead { id, hash: hash.to_owned() })
    }
}

/// What became of the record an exported head names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadCheck {
    /// Still there, with the same hash: nothing at or before it changed.
    Matches,
    /// No record has its id any more: the chain was cut short.
    Missing,
    /// A record has its id but another hash: the chain was rewritten up to it.
    Differs,
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
    /// Queues a refresh-token write with the next group, `record` to be chained with it if it
    /// takes effect, and returns once it is committed.
    pub(crate) async fn refresh(
        &self,
        inner: &Arc<Inner>,
        op: crate::refresh_tokens::RefreshOp,
        record: Option<AttachedRecord>,
    ) -> Result<Option<crate::entity::refresh_token::Model>, DirectoryError> {
        let (reply, answer) = oneshot::channel();
        let _pending = record.as_ref().map(|_| PendingRecord::new());
        let job = Job::Refresh(crate::refresh_tokens::RefreshJob { op, record, reply });
        match self {
            AuditWriter::Thread(writer) => {
                writer.submit(job)?;
                answer.await.unwrap_or_else(|_| Err(writer_gone()))
            }
            AuditWriter::Pool(queue) => group::enqueue(inner, queue, job, answer).await,
        }
    }

    /// The dedicated thread for a SQLite file; the pool otherwise.
    pub(crate) fn for_sqlite_file(path: &Path, key: KeyedHash) -> Result<Self, DirectoryError> {
        Ok(AuditWriter::Thread(sqlite_writer::SqliteAuditWriter::start(path, key)?))
    }

    pub(crate) fn pool() -> Self {
        AuditWriter::Pool(group::AuditQueue::default())
    }
}

/// What the writer (the thread, or the callers taking turns) is asked to write.
pub(crate) enum Job {
    Append(Waiting),
    Refresh(crate::refresh_tokens::RefreshJob),
}

/// A group's appends and refresh-token writes, apart.
fn split_jobs(group: Vec<Job>) -> (Vec<Waiting>, Vec<crate::refresh_tokens::RefreshJob>) {
    let mut appends = Vec::with_capacity(group.len());
    let mut refreshes = Vec::new();
    for job in group {
        match job {
            Job::Append(w) => appends.push(w),
            Job::Refresh(r) => refreshes.push(r),
        }
    }
    (appends, refreshes)
}

/// The audit record of a refresh-token write, chained in its transaction if the write takes
/// effect ([`crate::refresh_tokens::RefreshJob::took_effect`]).
pub(crate) struct AttachedRecord {
    event: AuditEvent,
    details: String,
}

impl AttachedRecord {
    pub(crate) fn new(event: AuditEvent) -> Result<Self, DirectoryError> {
        let details = serde_json::to_string(&event.details)?;
        Ok(AttachedRecord { event, details })
    }
}

/// Adds to `rows`, after the group's appends, the records of the refresh-token writes that took
/// effect (`answers`, in the jobs' order, `None` for a write that failed: its record is dropped
/// with it).
fn attach_records<'a>(
    rows: &mut Vec<audit_log::Model>,
    refreshes: &mut [crate::refresh_tokens::RefreshJob],
    answers: impl IntoIterator<Item = Option<&'a Option<crate::entity::refresh_token::Model>>>,
) {
    for (job, answer) in refreshes.iter_mut().zip(answers) {
        let Some(answer) = answer else { continue };
        if job.took_effect(answer)
            && let Some(record) = job.record.take()
        {
            count_event(&record.event);
            rows.push(row_of(record.event, record.details));
        }
    }
}

/// Every sensitive event is audited, so this one count shows them all to monitoring: logins,
/// pushes, lockouts, tokens, logouts, by name and outcome (both from code, a bounded set).
fn count_event(event: &AuditEvent) {
    metrics::counter!("caducee_audit_events_total", "event" => event.event.clone(), "outcome" => event.outcome.clone())
        .increment(1);
}

/// Each refresh-token write of a group, answered on its own.
type RefreshAnswers = Vec<Result<Option<crate::entity::refresh_token::Model>, DirectoryError>>;

/// Tells each refresh-token write of a group its own answer, or the group's error; returns
/// what the group's appends are to be told.
fn reply_refreshes(
    refreshes: Vec<crate::refresh_tokens::RefreshJob>,
    result: Result<RefreshAnswers, DirectoryError>,
) -> Result<(), DirectoryError> {
    match result {
        Ok(answers) => {
            for (job, answer) in refreshes.into_iter().zip(answers) {
                let _ = job.reply.send(answer);
            }
            Ok(())
        }
        Err(e) => {
            for job in refreshes {
                let _ = job.reply.send(Err(e.clone()));
            }
            Err(e)
        }
    }
}

/// An append waiting for its group to be committed.
pub(crate) struct Waiting {
    event: AuditEvent,
    details: String,
    reply: oneshot::Sender<Result<AuditRecord, DirectoryError>>,
}

/// Counts, in `caducee_audit_pending_records`, the appends waiting for their record to be
/// committed: a depth that grows means the database is slower than the requests waiting on it.
/// A caller that gives up stops counting (its record is still written).
struct PendingRecord(metrics::Gauge);

impl PendingRecord {
    fn new() -> Self {
        let gauge = metrics::gauge!("caducee_audit_pending_records");
        gauge.increment(1.0);
        PendingRecord(gauge)
    }
}

impl Drop for PendingRecord {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
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
        count_event(&event);
        let details = serde_json::to_string(&event.details)?;
        let (reply, answer) = oneshot::channel();
        let waiting = Waiting { event, details, reply };
        let _pending = PendingRecord::new();
        match &self.inner.audit_writer {
            AuditWriter::Thread(writer) => match writer.submit(Job::Append(waiting)) {
                Ok(()) => answer.await.unwrap_or_else(|_| Err(writer_gone())),
                Err(e) => Err(e),
            },
            AuditWriter::Pool(queue) => group::enqueue(self.inner, queue, Job::Append(waiting), answer).await,
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

    /// The newest record's id and hash, `None` while the log is empty.
    pub async fn head(&self) -> Result<Option<AuditHead>, DirectoryError> {
        let newest = Entity::find()
            .select_only()
            .column(Column::Id)
            .column(Column::Hash)
            .order_by_desc(Column::Id)
            .into_tuple::<(i64, String)>()
            .one(&self.inner.db)
            .await?;
        Ok(newest.map(|(id, hash)| AuditHead { id, hash }))
    }

    /// Walks the whole chain from the first record, recomputing every hash, and compares it
    /// with `head` (an earlier [`AuditLog::head`]) if given.
    pub async fn verify(&self, head: Option<&AuditHead>) -> Result<AuditVerification, DirectoryError> {
        let key = &self.inner.audit_key;
        let mut v = AuditVerification {
            records: 0,
            first_bad_id: None,
            unkeyed_records: 0,
            head: None,
            head_check: head.map(|_| HeadCheck::Missing),
        };
        let mut keyed_seen = false;
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
                v.records += 1;
                let sound = if chain_hash(&row, key)? == row.hash {
                    keyed_seen = true;
                    true
                } else if !keyed_seen && unkeyed_chain_hash(&row)? == row.hash {
                    v.unkeyed_records += 1;
                    true
                } else {
                    false
                };
                if v.first_bad_id.is_none() && (row.prev_hash != expected_prev || !sound) {
                    v.first_bad_id = Some(row.id);
                }
                if let Some(head) = head
                    && head.id == row.id
                {
                    let same = row.hash == head.hash;
                    v.head_check = Some(if same { HeadCheck::Matches } else { HeadCheck::Differs });
                }
                expected_prev = row.hash;
                v.head = Some(AuditHead { id: row.id, hash: expected_prev.clone() });
            }
        }
        Ok(v)
    }
}

pub(crate) fn writer_gone() -> DirectoryError {
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
    for mut w in group {
        split.replies.push(w.reply);
        split.details.push(std::mem::take(&mut w.event.details));
        split.rows.push(row_of(w.event, w.details));
    }
    split
}

/// The row of `event` (its details already serialised), to be chained.
fn row_of(event: AuditEvent, details: String) -> audit_log::Model {
    audit_log::Model {
        id: 0,
        at: event.at,
        event: event.event,
        actor: event.actor,
        subject: event.subject,
        client_id: event.client_id,
        source_ip: event.source_ip,
        outcome: event.outcome,
        details,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Gives each row its id, its link to the record before it and its keyed hash, after `last` (the
/// newest stored record's id and hash, read inside the write lock).
fn chain_rows(
    rows: &mut [audit_log::Model],
    last: Option<(i64, String)>,
    key: &KeyedHash,
) -> Result<(), DirectoryError> {
    let (mut id, mut prev_hash) = match last {
        Some((id, hash)) => (id + 1, hash),
        None => (1, GENESIS_HASH.to_owned()),
    };
    for row in rows.iter_mut() {
        row.id = id;
        row.prev_hash = prev_hash;
        row.hash = chain_hash(row, key)?;
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

/// The keyed hash of a record: HMAC-SHA256 under the chain's key over [`chain_fields`].
fn chain_hash(row: &audit_log::Model, key: &KeyedHash) -> Result<String, DirectoryError> {
    Ok(key.hex(&[&chain_fields(HASH_DOMAIN, row)?]))
}

/// The hash records had before the chain was keyed: bare SHA-256 over [`chain_fields`].
fn unkeyed_chain_hash(row: &audit_log::Model) -> Result<String, DirectoryError> {
    Ok(sha256_hex(&chain_fields(UNKEYED_HASH_DOMAIN, row)?))
}

/// A JSON array of the domain and the fields: JSON escaping makes the encoding unambiguous, and
/// the details are hashed as the exact text stored, so no re-serialisation can change the hash.
/// Serialised straight from borrowed fields (a tuple is written as a JSON array), byte for byte
/// what `json!([...]).to_string()` gives, without building a `Value` on every append.
fn chain_fields(domain: &str, row: &audit_log::Model) -> Result<Vec<u8>, DirectoryError> {
    let fields = (
        domain,
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
    Ok(serde_json::to_vec(&fields)?)
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
            UNKEYED_HASH_DOMAIN,
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
        assert_eq!(unkeyed_chain_hash(&row).unwrap(), sha256_hex(old.as_bytes()));
        let key = crate::DataKey::from_bytes([9; 32]).sub_keys().keyed_hash(KEY_PURPOSE);
        let keyed = chain_hash(&row, &key).unwrap();
        assert_ne!(keyed, unkeyed_chain_hash(&row).unwrap());
        let other_key = crate::DataKey::from_bytes([8; 32]).sub_keys().keyed_hash(KEY_PURPOSE);
        assert_ne!(keyed, chain_hash(&row, &other_key).unwrap(), "the hash depends on the key");
    }
}
