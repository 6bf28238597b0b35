//! Back-channel logout deliveries: what was sent to which relying party for which ended
//! session, how many attempts, the outcome, and when to try again.

use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _};

use crate::entity::logout_delivery::{self, ActiveModel, Column, Entity};
use crate::{DirectoryError, Inner};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not delivered yet; another attempt is due at `next_attempt_at`.
    Pending,
    /// The relying party acknowledged it (HTTP 200).
    Delivered,
    /// Given up after the last attempt.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, DirectoryError> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            other => Err(DirectoryError::Invalid(format!("unknown delivery status {other}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutDeliveryRecord {
    pub id: String,
    pub sid: String,
    pub subject: String,
    pub client_id: String,
    pub uri: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub sid: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub status: Option<DeliveryStatus>,
    /// Newest first; at most this many (default 100, capped at 1000).
    pub limit: Option<u64>,
}

pub struct LogoutDeliveries<'a> {
    inner: &'a Inner,
}

fn from_row(row: logout_delivery::Model) -> Result<LogoutDeliveryRecord, DirectoryError> {
    Ok(LogoutDeliveryRecord {
        status: DeliveryStatus::parse(&row.status)?,
        id: row.id,
        sid: row.sid,
        subject: row.subject,
        client_id: row.client_id,
        uri: row.uri,
        attempts: row.attempts,
        last_error: row.last_error,
        next_attempt_at: row.next_attempt_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

impl<'a> LogoutDeliveries<'a> {
    pub(crate) fn new(inner: &'a Inner) -> Self {
        LogoutDeliveries { inner }
    }

    pub async fn insert(&self, r: &LogoutDeliveryRecord) -> Result<(), DirectoryError> {
        let am: ActiveModel = logout_delivery::Model {
            id: r.id.clone(),
            sid: r.sid.clone(),
            subject: r.subject.clone(),
            client_id: r.client_id.clone(),
            uri: r.uri.clone(),
            status: r.status.as_str().to_owned(),
            attempts: r.attempts,
            last_error: r.last_error.clone(),
            next_attempt_at: r.next_attempt_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
        .into();
        Entity::insert(am).exec_without_returning(&self.inner.db).await?;
        Ok(())
    }

    /// Records an attempt's outcome.
    pub async fn update(
        &self,
        id: &str,
        status: DeliveryStatus,
        attempts: i64,
        last_error: Option<String>,
        next_attempt_at: Option<i64>,
        now: i64,
    ) -> Result<(), DirectoryError> {
        let am = ActiveModel {
            status: Set(status.as_str().to_owned()),
            attempts: Set(attempts),
            last_error: Set(last_error),
            next_attempt_at: Set(next_attempt_at),
            updated_at: Set(now),
            ..Default::default()
        };
        let res = Entity::update_many().set(am).filter(Column::Id.eq(id)).exec(&self.inner.db).await?;
        if res.rows_affected == 0 {
            return Err(DirectoryError::NotFound);
        }
        Ok(())
    }

    /// Takes a pending delivery whose next attempt is due, so that one node at most retries it:
    /// the conditional update pushes its next attempt to `lease_until` only if nobody did first.
    pub async fn claim_due(
        &self,
        now: i64,
        lease_until: i64,
        limit: u64,
    ) -> Result<Vec<LogoutDeliveryRecord>, DirectoryError> {
        let candidates = Entity::find()
            .filter(Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(Column::NextAttemptAt.lte(now))
            .order_by_asc(Column::NextAttemptAt)
            .limit(limit)
            .all(&self.inner.db)
            .await?;
        let mut claimed = Vec::new();
        for row in candidates {
            let res = Entity::update_many()
                .col_expr(Column::NextAttemptAt, sea_orm::sea_query::Expr::value(lease_until))
                .filter(Column::Id.eq(row.id.clone()))
                .filter(Column::Status.eq(DeliveryStatus::Pending.as_str()))
                .filter(Column::NextAttemptAt.eq(row.next_attempt_at))
                .exec(&self.inner.db)
                .await?;
            if res.rows_affected == 1 {
                claimed.push(from_row(row)?);
            }
        }
        Ok(claimed)
    }

    pub async fn get(&self, id: &str) -> Result<Option<LogoutDeliveryRecord>, DirectoryError> {
        Entity::find_by_id(id.to_owned()).one(&self.inner.db).await?.map(from_row).transpose()
    }

    pub async fn query(&self, q: &DeliveryQuery) -> Result<Vec<LogoutDeliveryRecord>, DirectoryError> {
        let mut select = Entity::find();
        if let Some(sid) = &q.sid {
            select = select.filter(Column::Sid.eq(sid.clone()));
        }
        if let Some(subject) = &q.subject {
            select = select.filter(Column::Subject.eq(subject.clone()));
        }
        if let Some(client) = &q.client_id {
            select = select.filter(Column::ClientId.eq(client.clone()));
        }
        if let Some(status) = q.status {
            select = select.filter(Column::Status.eq(status.as_str()));
        }
        let rows = select
            .order_by_desc(Column::CreatedAt)
            .order_by_asc(Column::Id)
            .limit(q.limit.unwrap_or(100).min(1000))
            .all(&self.inner.db)
            .await?;
        rows.into_iter().map(from_row).collect()
    }
}
