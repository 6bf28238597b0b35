//! The provider's token-signing keys, private halves sealed at rest.

use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _};
use zeroize::Zeroizing;

use crate::crypto::aad;
use crate::entity::signing_key::{self, ActiveModel, Column, Entity};
use crate::{DirectoryError, Inner};

const AAD_PURPOSE: &str = "caducee/signing-key/v1";

/// A signing key with its private half decrypted.
#[derive(Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// JOSE algorithm: `RS256`, `ES256`, ...
    pub alg: String,
    pub private_pkcs8: Zeroizing<Vec<u8>>,
    pub created_at: i64,
    /// When it stopped signing; `None` while current.
    pub retired_at: Option<i64>,
    /// Until when the public half stays in the JWKS (tokens it signed may still be checked).
    pub publish_until: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_pkcs8", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("publish_until", &self.publish_until)
            .finish()
    }
}

/// Repository of signing keys; obtained from [`crate::Directory::signing_keys`].
pub struct SigningKeys<'a> {
    inner: &'a Inner,
}

impl<'a> SigningKeys<'a> {
    pub(crate) fn new(inner: &'a Inner) -> Self {
        SigningKeys { inner }
    }

    /// Stores a key. `Conflict` if the kid exists.
    pub async fn insert(&self, record: SigningKeyRecord) -> Result<(), DirectoryError> {
        let sealed = self.inner.sealer.seal(&record.private_pkcs8, &key_aad(&record.kid))?;
        let am: ActiveModel = signing_key::Model {
            kid: record.kid.clone(),
            alg: record.alg,
            private_key: sealed,
            created_at: record.created_at,
            retired_at: record.retired_at,
            publish_until: record.publish_until,
        }
        .into();
        Entity::insert(am).exec_without_returning(&self.inner.db).await.map_err(|e| match DirectoryError::from(e) {
            DirectoryError::Conflict(_) => {
                DirectoryError::Conflict(format!("signing key {} already exists", record.kid))
            }
            other => other,
        })?;
        Ok(())
    }

    /// Every key, oldest first.
    pub async fn list(&self) -> Result<Vec<SigningKeyRecord>, DirectoryError> {
        let rows = Entity::find().order_by_asc(Column::CreatedAt).order_by_asc(Column::Kid).all(&self.inner.db).await?;
        rows.into_iter()
            .map(|row| {
                let private_pkcs8 = self.inner.sealer.open(&row.private_key, &key_aad(&row.kid))?;
                Ok(SigningKeyRecord {
                    kid: row.kid,
                    alg: row.alg,
                    private_pkcs8,
                    created_at: row.created_at,
                    retired_at: row.retired_at,
                    publish_until: row.publish_until,
                })
            })
            .collect()
    }

    /// Stops signing with `kid` at `at`, keeping it published until `publish_until`.
    pub async fn retire(&self, kid: &str, at: i64, publish_until: i64) -> Result<(), DirectoryError> {
        let am =
            ActiveModel { retired_at: Set(Some(at)), publish_until: Set(Some(publish_until)), ..Default::default() };
        let res = Entity::update_many().set(am).filter(Column::Kid.eq(kid)).exec(&self.inner.db).await?;
        if res.rows_affected == 0 {
            return Err(DirectoryError::NotFound);
        }
        Ok(())
    }

    /// Deletes keys no longer published (`publish_until < now`); returns how many.
    pub async fn purge(&self, now: i64) -> Result<u64, DirectoryError> {
        let res = Entity::delete_many()
            .filter(Column::PublishUntil.is_not_null())
            .filter(Column::PublishUntil.lt(now))
            .exec(&self.inner.db)
            .await?;
        Ok(res.rows_affected)
    }
}

fn key_aad(kid: &str) -> Vec<u8> {
    aad(AAD_PURPOSE, &[kid])
}
