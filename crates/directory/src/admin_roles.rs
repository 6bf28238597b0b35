//! Professionals holding the admin role: they may sign in to the console (`/admin`). Granted
//! and revoked at the command line only (`caducee account grant-admin` / `revoke-admin`), so
//! that no administrator can make another from the browser. Kept in the database: the role
//! must hold on every node and outlive restarts, and the console reads it on every request.

use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait as _, QueryOrder as _};

use crate::entity::admin_role::{self, ActiveModel, Column, Entity};
use crate::{DirectoryError, Inner};

/// Who holds the role, since when, granted by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRole {
    pub subject: String,
    /// The operator who granted it, as the audit names them.
    pub granted_by: Option<String>,
    pub granted_at: i64,
}

/// Repository of admin roles; obtained from [`crate::Directory::admin_roles`].
pub struct AdminRoles<'a> {
    inner: &'a Inner,
}

impl<'a> AdminRoles<'a> {
    pub(crate) fn new(inner: &'a Inner) -> Self {
        AdminRoles { inner }
    }

    pub async fn get(&self, subject: &str) -> Result<Option<AdminRole>, DirectoryError> {
        let row = Entity::find_by_id(subject.to_owned()).one(&self.inner.db).await?;
        Ok(row.map(to_role))
    }

    pub async fn is_admin(&self, subject: &str) -> Result<bool, DirectoryError> {
        Ok(self.get(subject).await?.is_some())
    }

    /// Every administrator, oldest grant first.
    pub async fn list(&self) -> Result<Vec<AdminRole>, DirectoryError> {
        let rows = Entity::find().order_by_asc(Column::GrantedAt).all(&self.inner.db).await?;
        Ok(rows.into_iter().map(to_role).collect())
    }

    /// Grants the role; an existing grant is kept as it was. Returns whether this call made it.
    pub async fn grant(&self, subject: &str, granted_by: Option<&str>, at: i64) -> Result<bool, DirectoryError> {
        let am: ActiveModel = admin_role::Model {
            subject: subject.to_owned(),
            granted_by: granted_by.map(str::to_owned),
            granted_at: at,
        }
        .into();
        let res = Entity::insert(am)
            .on_conflict(OnConflict::column(Column::Subject).do_nothing().to_owned())
            .exec_without_returning(&self.inner.db)
            .await?;
        Ok(res == 1)
    }

    /// Revokes the role; returns whether there was one.
    pub async fn revoke(&self, subject: &str) -> Result<bool, DirectoryError> {
        let res = Entity::delete_by_id(subject.to_owned()).exec(&self.inner.db).await?;
        Ok(res.rows_affected > 0)
    }
}

fn to_role(r: admin_role::Model) -> AdminRole {
    AdminRole { subject: r.subject, granted_by: r.granted_by, granted_at: r.granted_at }
}
