//! Health professionals: identity, PSC professional data, password hash, account status.

mod model;

pub use model::{AccountStatus, Activity, OtherId, Practice, Professional};

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, Func, LikeExpr};
use sea_orm::{
    ColumnTrait as _, EntityTrait as _, PaginatorTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
};
use sea_orm::{Condition, ExprTrait as _};

use crate::entity::professional::{self, ActiveModel, Column, Entity};
use crate::{DirectoryError, Inner, now};

/// What the caller provides to create a professional.
#[derive(Clone, Default)]
pub struct NewProfessional {
    /// `None` generates a PSC-style `f:{uuid}:{national_id}`. Set it when importing accounts
    /// from another provider, so that relying parties keep recognising their users.
    pub subject: Option<String>,
    pub national_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub civility: String,
    pub practices: Vec<Practice>,
    pub other_ids: Vec<OtherId>,
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for NewProfessional {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewProfessional")
            .field("national_id", &self.national_id)
            .field("has_password", &self.password_hash.is_some())
            .finish_non_exhaustive()
    }
}

/// The editable identity and professional data (a full replacement, not a patch).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfessionalUpdate {
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub civility: String,
    pub practices: Vec<Practice>,
    pub other_ids: Vec<OtherId>,
}

/// Longest national identifier: `8` + RPPS is 12 characters, the longest registry forms (a
/// FINESS or SIRET prefix, `/`, an internal number) about 30; twice that leaves room.
pub const MAX_NATIONAL_ID_LEN: usize = 64;

/// Whether `s` can be a national identifier: 1 to [`MAX_NATIONAL_ID_LEN`] ASCII letters, digits
/// or `/ . _ -`. Accounts are created with such identifiers only, so anything else typed at the
/// login page is refused before it is stored, counted or logged anywhere.
pub fn is_valid_national_id(s: &str) -> bool {
    (1..=MAX_NATIONAL_ID_LEN).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'))
}

/// Repository of professionals; obtained from [`crate::Directory::professionals`].
pub struct Professionals<'a> {
    inner: &'a Inner,
}

impl<'a> Professionals<'a> {
    pub(crate) fn new(inner: &'a Inner) -> Self {
        Professionals { inner }
    }

    /// Creates the account. `Conflict` when the national id (or the given subject) is taken.
    pub async fn create(&self, new: NewProfessional) -> Result<Professional, DirectoryError> {
        if !is_valid_national_id(&new.national_id) {
            return Err(DirectoryError::Invalid(format!(
                "national_id must be 1 to {MAX_NATIONAL_ID_LEN} letters, digits or `/ . _ -`"
            )));
        }
        check_civility(&new.civility)?;
        let id = uuid::Uuid::new_v4().to_string();
        let subject = match new.subject {
            Some(s) if s.trim().is_empty() => {
                return Err(DirectoryError::Invalid("subject is empty".into()));
            }
            Some(s) => s,
            None => format!("f:{}:{}", uuid::Uuid::new_v4(), new.national_id),
        };
        let at = now();
        let row = professional::Model {
            id,
            subject,
            national_id: new.national_id,
            given_name: new.given_name,
            family_name: new.family_name,
            email: new.email,
            civility: new.civility,
            practices: serde_json::to_string(&new.practices)?,
            other_ids: serde_json::to_string(&new.other_ids)?,
            password_hash: new.password_hash,
            status: AccountStatus::Active.as_str().to_owned(),
            created_at: at,
            updated_at: at,
        };
        let am: ActiveModel = row.clone().into();
        Entity::insert(am).exec_without_returning(&self.inner.db).await.map_err(|e| match DirectoryError::from(e) {
            DirectoryError::Conflict(_) => DirectoryError::Conflict(format!(
                "a professional with national id {} or subject {} already exists",
                row.national_id, row.subject
            )),
            other => other,
        })?;
        self.inner.changed();
        to_professional(row)
    }

    pub async fn get_by_id(&self, id: &str) -> Result<Option<Professional>, DirectoryError> {
        self.find_one(Column::Id, id).await
    }

    pub async fn get_by_national_id(&self, national_id: &str) -> Result<Option<Professional>, DirectoryError> {
        self.find_one(Column::NationalId, national_id).await
    }

    pub async fn get_by_subject(&self, subject: &str) -> Result<Option<Professional>, DirectoryError> {
        self.find_one(Column::Subject, subject).await
    }

    /// A page of professionals ordered by national id.
    pub async fn list(&self, offset: u64, limit: u64) -> Result<Vec<Professional>, DirectoryError> {
        Entity::find()
            .order_by_asc(Column::NationalId)
            .offset(offset)
            .limit(limit)
            .all(&self.inner.db)
            .await?
            .into_iter()
            .map(to_professional)
            .collect()
    }

    /// Professionals whose national id is `query`, or whose names contain it (case aside):
    /// what an administrator types to find someone. At most `limit`, by family name.
    pub async fn search(&self, query: &str, limit: u64) -> Result<Vec<Professional>, DirectoryError> {
        let query = query.trim();
        if query.is_empty() {
            return Ok(Vec::new());
        }
        // LIKE's own wildcards in what was typed match themselves.
        let escaped: String = query
            .to_lowercase()
            .chars()
            .flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] })
            .collect();
        let pattern = format!("%{escaped}%");
        // LOWER on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
        let contains = |column: Column| {
            Expr::expr(Func::lower(Expr::col(column))).like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        Entity::find()
            .filter(
                Condition::any()
                    .add(Column::NationalId.eq(query))
                    .add(contains(Column::FamilyName))
                    .add(contains(Column::GivenName)),
            )
            .order_by_asc(Column::FamilyName)
            .order_by_asc(Column::GivenName)
            .limit(limit)
            .all(&self.inner.db)
            .await?
            .into_iter()
            .map(to_professional)
            .collect()
    }

    pub async fn count(&self) -> Result<u64, DirectoryError> {
        Ok(Entity::find().count(&self.inner.db).await?)
    }

    /// Sets or clears (disabling password login) the PHC hash.
    pub async fn set_password_hash(&self, id: &str, password_hash: Option<String>) -> Result<(), DirectoryError> {
        self.update_row(id, ActiveModel { password_hash: Set(password_hash), ..Default::default() }).await
    }

    /// Replaces the names, email, civility, practices and other ids; returns the new record.
    pub async fn update(&self, id: &str, update: ProfessionalUpdate) -> Result<Professional, DirectoryError> {
        check_civility(&update.civility)?;
        let am = ActiveModel {
            given_name: Set(update.given_name),
            family_name: Set(update.family_name),
            email: Set(update.email),
            civility: Set(update.civility),
            practices: Set(serde_json::to_string(&update.practices)?),
            other_ids: Set(serde_json::to_string(&update.other_ids)?),
            ..Default::default()
        };
        self.update_row(id, am).await?;
        self.get_by_id(id).await?.ok_or(DirectoryError::NotFound)
    }

    pub async fn set_status(&self, id: &str, status: AccountStatus) -> Result<(), DirectoryError> {
        self.update_row(id, ActiveModel { status: Set(status.as_str().to_owned()), ..Default::default() }).await
    }

    /// Deletes the account; `false` if there was none. Authenticators and tokens of its subject
    /// are left to the caller, which knows whether to revoke or keep them.
    pub async fn delete(&self, id: &str) -> Result<bool, DirectoryError> {
        let res = Entity::delete_by_id(id.to_owned()).exec(&self.inner.db).await?;
        self.inner.changed();
        Ok(res.rows_affected > 0)
    }

    async fn find_one(&self, column: Column, value: &str) -> Result<Option<Professional>, DirectoryError> {
        Entity::find().filter(column.eq(value)).one(&self.inner.db).await?.map(to_professional).transpose()
    }

    /// One `UPDATE ... WHERE id = ?` of the set fields plus `updated_at`; `NotFound` if no row.
    async fn update_row(&self, id: &str, mut am: ActiveModel) -> Result<(), DirectoryError> {
        am.updated_at = Set(now());
        let res = Entity::update_many().set(am).filter(Column::Id.eq(id)).exec(&self.inner.db).await?;
        self.inner.changed();
        if res.rows_affected == 0 {
            return Err(DirectoryError::NotFound);
        }
        Ok(())
    }
}

fn check_civility(civility: &str) -> Result<(), DirectoryError> {
    match civility {
        "M" | "MME" | "" => Ok(()),
        other => Err(DirectoryError::Invalid(format!("civility must be M, MME or empty, not {other:?}"))),
    }
}

fn to_professional(row: professional::Model) -> Result<Professional, DirectoryError> {
    let status = AccountStatus::parse(&row.status)
        .ok_or_else(|| DirectoryError::Db(format!("unknown account status {:?}", row.status)))?;
    Ok(Professional {
        id: row.id,
        subject: row.subject,
        national_id: row.national_id,
        given_name: row.given_name,
        family_name: row.family_name,
        email: row.email,
        civility: row.civility,
        practices: serde_json::from_str(&row.practices)?,
        other_ids: serde_json::from_str(&row.other_ids)?,
        password_hash: row.password_hash,
        status,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
