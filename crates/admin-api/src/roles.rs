//! Administrators who are professionals: the admin role that opens the console (`/admin`),
//! granted and revoked from the command line only, and what the console needs to find people.

use serde::Serialize;
use utoipa::ToSchema;

use crate::service::{AccountView, Actor, AdminError, AdminService, DeliveryView};

/// A professional holding the admin role.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminRoleView {
    pub national_id: Option<String>,
    pub subject: String,
    pub granted_by: Option<String>,
    pub granted_at: i64,
}

impl AdminService {
    /// Grants the admin role to a professional; returns whether they lacked it.
    pub async fn grant_admin(&self, actor: &Actor, national_id: &str) -> Result<bool, AdminError> {
        let p = self.professional(national_id).await?;
        let granted = self.directory.admin_roles().grant(&p.subject, Some(&actor.id), self.now()).await?;
        self.audit(actor, "admin.role.grant", Some(&p.subject), serde_json::json!({ "already_admin": !granted })).await;
        Ok(granted)
    }

    /// Revokes the admin role; their console session closes at its next request.
    pub async fn revoke_admin(&self, actor: &Actor, national_id: &str) -> Result<bool, AdminError> {
        let p = self.professional(national_id).await?;
        let revoked = self.directory.admin_roles().revoke(&p.subject).await?;
        self.audit(actor, "admin.role.revoke", Some(&p.subject), serde_json::json!({ "was_admin": revoked })).await;
        Ok(revoked)
    }

    /// Whether this subject holds the admin role now (read from the database on every call,
    /// so that a role revoked on one node counts on every node at once).
    pub async fn is_admin(&self, subject: &str) -> Result<bool, AdminError> {
        Ok(self.directory.admin_roles().is_admin(subject).await?)
    }

    pub async fn admins(&self) -> Result<Vec<AdminRoleView>, AdminError> {
        let mut out = Vec::new();
        for role in self.directory.admin_roles().list().await? {
            let national_id =
                self.directory.professionals().get_by_subject(&role.subject).await?.map(|p| p.national_id);
            out.push(AdminRoleView {
                national_id,
                subject: role.subject,
                granted_by: role.granted_by,
                granted_at: role.granted_at,
            });
        }
        Ok(out)
    }

    /// Professionals by national identifier or name (at most 50).
    pub async fn search_accounts(&self, query: &str) -> Result<Vec<AccountView>, AdminError> {
        let found = self.directory.professionals().search(query, 50).await?;
        Ok(found.iter().map(AccountView::from).collect())
    }

    /// A professional's back-channel logout deliveries, newest first (at most `limit`).
    pub async fn deliveries_for(&self, national_id: &str, limit: u64) -> Result<Vec<DeliveryView>, AdminError> {
        let p = self.professional(national_id).await?;
        let q = directory::DeliveryQuery {
            sid: None,
            subject: Some(p.subject),
            client_id: None,
            status: None,
            limit: Some(limit),
        };
        Ok(self.directory.logout_deliveries().query(&q).await?.into_iter().map(DeliveryView::from).collect())
    }
}

impl AdminService {
    /// A professional's most recent audit records, newest first (at most `limit`).
    pub async fn recent_audit(
        &self,
        national_id: &str,
        limit: u64,
    ) -> Result<Vec<crate::audit::AuditRecordView>, AdminError> {
        let p = self.professional(national_id).await?;
        let query = directory::AuditQuery {
            subject: Some(p.subject),
            limit: Some(limit.min(1000)),
            newest_first: true,
            ..directory::AuditQuery::default()
        };
        Ok(self.directory.audit().query(query).await?.into_iter().map(Into::into).collect())
    }
}
