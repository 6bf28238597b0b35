//! The audit log, as administrators read and check it: queries, and the keyed chain's
//! verification, against a head kept outside the database if given.

use directory::{AuditHead, AuditQuery, AuditRecord, HeadCheck};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::service::{AdminError, AdminService};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRecordView {
    pub id: i64,
    pub at: i64,
    pub event: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub source_ip: Option<String>,
    pub outcome: String,
    /// What the event carried, if anything.
    #[schema(value_type = Option<Object>)]
    pub details: serde_json::Value,
    pub hash: String,
}

impl From<AuditRecord> for AuditRecordView {
    fn from(r: AuditRecord) -> Self {
        AuditRecordView {
            id: r.id,
            at: r.at,
            event: r.event,
            actor: r.actor,
            subject: r.subject,
            client_id: r.client_id,
            source_ip: r.source_ip,
            outcome: r.outcome,
            details: r.details,
            hash: r.hash,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditCheck {
    /// No record breaks the chain, and the given head (if any) is in it unchanged.
    pub intact: bool,
    pub records: u64,
    /// The first record whose hash or link does not match (tampering), if any.
    pub first_bad_id: Option<i64>,
    /// Records at the start of the chain written before it was keyed (bare SHA-256): only the
    /// keyed records after them, or a head exported since, vouch for them.
    pub unkeyed_records: u64,
    /// The newest record as `ID:HASH`, to keep outside the database and check against later.
    pub head: Option<String>,
    /// With a `head` to check against: `matches`, `missing` (the chain was cut short before
    /// it) or `differs` (the chain was rewritten up to it).
    #[schema(value_type = Option<String>)]
    pub head_check: Option<HeadCheck>,
}

/// Filters of an audit query.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// A professional's national identifier.
    pub national_id: Option<String>,
    pub event: Option<String>,
    /// Unix seconds, inclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// The last id of the previous page.
    pub after_id: Option<i64>,
    /// At most 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

impl AdminService {
    pub async fn audit_query(&self, filter: AuditFilter) -> Result<Vec<AuditRecordView>, AdminError> {
        let subject = match &filter.national_id {
            Some(id) => Some(self.professional(id).await?.subject),
            None => None,
        };
        if filter.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
            return Err(AdminError::Invalid("limit must be between 1 and 1000".into()));
        }
        let query = AuditQuery {
            subject,
            event: filter.event,
            from: filter.from,
            to: filter.to,
            after_id: filter.after_id,
            limit: filter.limit.map(u64::from),
            newest_first: false,
        };
        Ok(self.directory.audit().query(query).await?.into_iter().map(AuditRecordView::from).collect())
    }

    /// The newest record as `ID:HASH` (`None` while the log is empty), without checking the chain.
    pub async fn audit_head(&self) -> Result<Option<String>, AdminError> {
        Ok(self.directory.audit().head().await?.map(|h| h.to_string()))
    }

    /// Checks the whole chain, and against `head` (`ID:HASH`, an earlier check's `head`) if given.
    pub async fn audit_verify(&self, head: Option<&str>) -> Result<AuditCheck, AdminError> {
        let head = head.map(str::parse::<AuditHead>).transpose()?;
        let v = self.directory.audit().verify(head.as_ref()).await?;
        Ok(AuditCheck {
            intact: v.is_intact(),
            records: v.records,
            first_bad_id: v.first_bad_id,
            unkeyed_records: v.unkeyed_records,
            head: v.head.map(|h| h.to_string()),
            head_check: v.head_check,
        })
    }
}
