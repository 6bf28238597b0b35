//! Enrolled authenticators: TOTP apps, hardware OTP tokens, phone apps, passkeys and security
//! keys (WebAuthn: the credential in `secret`, its id in `serial`, its signature counter in
//! `counter`).
//!
//! Seeds are plaintext only in memory ([`Zeroizing`]); at rest they are sealed with the data key,
//! bound to the row id and kind.

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::crypto::aad;
use crate::entity::authenticator::{self, ActiveModel, Column, Entity};
use crate::{DirectoryError, Inner, now};

const AAD_PURPOSE: &str = "caducee/authenticator/secret/v1";

/// An enrolled authenticator with its secret decrypted.
#[derive(Clone)]
pub struct AuthenticatorRecord {
    pub id: String,
    /// `None` for a hardware token imported but not yet handed to anyone.
    pub subject: Option<String>,
    /// `"totp"`, `"hotp"`, ...
    pub kind: String,
    pub label: String,
    /// Hardware serial number, unique when set.
    pub serial: Option<String>,
    pub secret: Zeroizing<Vec<u8>>,
    /// Method parameters (algorithm, digits, period...), owned by the authentication methods.
    pub params: Value,
    pub active: bool,
    /// TOTP: last accepted time step; HOTP: next expected counter.
    pub counter: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for AuthenticatorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticatorRecord")
            .field("id", &self.id)
            .field("subject", &self.subject)
            .field("kind", &self.kind)
            .field("label", &self.label)
            .field("serial", &self.serial)
            .field("secret", &"<redacted>")
            .field("params", &self.params)
            .field("active", &self.active)
            .field("counter", &self.counter)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish()
    }
}

/// What the caller provides to enrol an authenticator.
#[derive(Clone)]
pub struct NewAuthenticator {
    pub subject: Option<String>,
    pub kind: String,
    pub label: String,
    pub serial: Option<String>,
    pub secret: Zeroizing<Vec<u8>>,
    pub params: Value,
    /// `false` while an enrolment awaits its first valid code.
    pub active: bool,
    pub counter: i64,
}

impl std::fmt::Debug for NewAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAuthenticator")
            .field("subject", &self.subject)
            .field("kind", &self.kind)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

/// Repository of authenticators; obtained from [`crate::Directory::authenticators`].
pub struct Authenticators<'a> {
    inner: &'a Inner,
}

impl<'a> Authenticators<'a> {
    pub(crate) fn new(inner: &'a Inner) -> Self {
        Authenticators { inner }
    }

    /// Enrols an authenticator. `Conflict` if the serial is already known.
    pub async fn create(&self, new: NewAuthenticator) -> Result<AuthenticatorRecord, DirectoryError> {
        if new.kind.is_empty() {
            return Err(DirectoryError::Invalid("authenticator kind is empty".into()));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let sealed = self.inner.sealer.seal(&new.secret, &secret_aad(&id, &new.kind))?;
        let record = AuthenticatorRecord {
            id,
            subject: new.subject,
            kind: new.kind,
            label: new.label,
            serial: new.serial,
            secret: new.secret,
            params: new.params,
            active: new.active,
            counter: new.counter,
            created_at: now(),
            last_used_at: None,
        };
        let am: ActiveModel = authenticator::Model {
            id: record.id.clone(),
            subject: record.subject.clone(),
            kind: record.kind.clone(),
            label: record.label.clone(),
            serial: record.serial.clone(),
            secret: sealed,
            params: serde_json::to_string(&record.params)?,
            active: record.active,
            counter: record.counter,
            created_at: record.created_at,
            last_used_at: None,
        }
        .into();
        Entity::insert(am).exec_without_returning(&self.inner.db).await.map_err(|e| match DirectoryError::from(e) {
            DirectoryError::Conflict(_) => {
                DirectoryError::Conflict(format!("an authenticator with serial {:?} already exists", record.serial))
            }
            other => other,
        })?;
        Ok(record)
    }

    pub async fn get(&self, id: &str) -> Result<Option<AuthenticatorRecord>, DirectoryError> {
        let row = Entity::find_by_id(id.to_owned()).one(&self.inner.db).await?;
        row.map(|r| self.decrypt(r)).transpose()
    }

    pub async fn get_by_serial(&self, serial: &str) -> Result<Option<AuthenticatorRecord>, DirectoryError> {
        let row = Entity::find().filter(Column::Serial.eq(serial)).one(&self.inner.db).await?;
        row.map(|r| self.decrypt(r)).transpose()
    }

    /// The subject's authenticators, oldest first (active or not).
    pub async fn list_for_subject(&self, subject: &str) -> Result<Vec<AuthenticatorRecord>, DirectoryError> {
        let rows = Entity::find()
            .filter(Column::Subject.eq(subject))
            .order_by_asc(Column::CreatedAt)
            .order_by_asc(Column::Id)
            .all(&self.inner.db)
            .await?;
        rows.into_iter().map(|r| self.decrypt(r)).collect()
    }

    /// Every authenticator, oldest first, assigned or not.
    pub async fn list_all(&self) -> Result<Vec<AuthenticatorRecord>, DirectoryError> {
        let rows = Entity::find().order_by_asc(Column::CreatedAt).order_by_asc(Column::Id).all(&self.inner.db).await?;
        rows.into_iter().map(|r| self.decrypt(r)).collect()
    }

    /// Marks an enrolment confirmed.
    pub async fn activate(&self, id: &str) -> Result<(), DirectoryError> {
        self.update_row(id, ActiveModel { active: Set(true), ..Default::default() }).await
    }

    /// Suspends an authenticator (lost token) without forgetting it.
    pub async fn deactivate(&self, id: &str) -> Result<(), DirectoryError> {
        self.update_row(id, ActiveModel { active: Set(false), ..Default::default() }).await
    }

    /// Hands a token to a professional, or takes it back with `None`.
    pub async fn assign(&self, id: &str, subject: Option<String>) -> Result<(), DirectoryError> {
        self.update_row(id, ActiveModel { subject: Set(subject), ..Default::default() }).await
    }

    /// Renames an authenticator (the name its owner gave it).
    pub async fn set_label(&self, id: &str, label: &str) -> Result<(), DirectoryError> {
        self.update_row(id, ActiveModel { label: Set(label.to_owned()), ..Default::default() }).await
    }

    /// Records a use that moves no counter (a passkey whose authenticator keeps none).
    pub async fn touch(&self, id: &str, now: i64) -> Result<(), DirectoryError> {
        self.update_row(id, ActiveModel { last_used_at: Set(Some(now)), ..Default::default() }).await
    }

    /// Replaces the parameters (e.g. a hardware token's tracked clock drift).
    pub async fn set_params(&self, id: &str, params: &Value) -> Result<(), DirectoryError> {
        let text = serde_json::to_string(params)?;
        self.update_row(id, ActiveModel { params: Set(text), ..Default::default() }).await
    }

    /// `false` if there was no such authenticator.
    pub async fn delete(&self, id: &str) -> Result<bool, DirectoryError> {
        let res = Entity::delete_by_id(id.to_owned()).exec(&self.inner.db).await?;
        Ok(res.rows_affected > 0)
    }

    /// Moves the counter forward to `new_value` if, and only if, it is below it; `true` when this
    /// call did so. One conditional `UPDATE`, so of several nodes accepting the same OTP at once
    /// exactly one wins and the code is used once.
    pub async fn advance_counter(&self, id: &str, new_value: i64, now: i64) -> Result<bool, DirectoryError> {
        let res = Entity::update_many()
            .col_expr(Column::Counter, Expr::value(new_value))
            .col_expr(Column::LastUsedAt, Expr::value(now))
            .filter(Column::Id.eq(id))
            .filter(Column::Counter.lt(new_value))
            .exec(&self.inner.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    async fn update_row(&self, id: &str, am: ActiveModel) -> Result<(), DirectoryError> {
        let res = Entity::update_many().set(am).filter(Column::Id.eq(id)).exec(&self.inner.db).await?;
        if res.rows_affected == 0 {
            return Err(DirectoryError::NotFound);
        }
        Ok(())
    }

    fn decrypt(&self, row: authenticator::Model) -> Result<AuthenticatorRecord, DirectoryError> {
        let secret = self.inner.sealer.open(&row.secret, &secret_aad(&row.id, &row.kind))?;
        Ok(AuthenticatorRecord {
            secret,
            params: serde_json::from_str(&row.params)?,
            id: row.id,
            subject: row.subject,
            kind: row.kind,
            label: row.label,
            serial: row.serial,
            active: row.active,
            counter: row.counter,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        })
    }
}

fn secret_aad(id: &str, kind: &str) -> Vec<u8> {
    aad(AAD_PURPOSE, &[id, kind])
}
