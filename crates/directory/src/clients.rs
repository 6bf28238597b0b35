//! OIDC relying parties. The protocol crate owns what the metadata means; this stores it.

use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _};
use serde_json::Value;

use crate::entity::client::{self, ActiveModel, Column, Entity};
use crate::{DirectoryError, Inner, now};

/// A registered client.
#[derive(Clone, PartialEq)]
pub struct ClientRecord {
    pub client_id: String,
    /// Hash of the client secret, computed by the caller, or the secret sealed
    /// ([`Clients::seal_secret`]); `None` for public or mTLS clients.
    pub secret_hash: Option<String>,
    pub metadata: Value,
    pub created_at: i64,
    pub updated_at: i64,
    /// When its credentials (secret, keys, authentication method) last changed, as the caller's
    /// clock said; `None` if they never changed since registration. Tokens issued before that
    /// moment were obtained with credentials that no longer hold.
    pub credentials_changed_at: Option<i64>,
}

impl std::fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRecord")
            .field("client_id", &self.client_id)
            .field("has_secret", &self.secret_hash.is_some())
            .field("metadata", &self.metadata)
            .field("credentials_changed_at", &self.credentials_changed_at)
            .finish_non_exhaustive()
    }
}

fn secret_aad(client_id: &str) -> Vec<u8> {
    [b"client-secret:".as_slice(), client_id.as_bytes()].concat()
}

/// Repository of clients; obtained from [`crate::Directory::clients`].
pub struct Clients<'a> {
    inner: &'a Inner,
}

/// What marks a secret kept sealed (encrypted under the master key) in the secret column,
/// instead of its hash: a client that MACs its assertions with it (`client_secret_jwt`) needs
/// the provider to hold the secret itself.
const SEALED_SECRET: &str = "sealed$";

impl<'a> Clients<'a> {
    pub(crate) fn new(inner: &'a Inner) -> Self {
        Clients { inner }
    }

    /// The value to store in the secret column for a secret the provider must be able to read
    /// back (bound to the client id: it opens for that client only).
    pub fn seal_secret(&self, client_id: &str, secret: &str) -> Result<String, DirectoryError> {
        use base64::Engine as _;
        let sealed = self.inner.sealer.seal(secret.as_bytes(), &secret_aad(client_id))?;
        Ok(format!("{SEALED_SECRET}{}", base64::engine::general_purpose::STANDARD.encode(sealed)))
    }

    /// The secret of a stored value made by [`Clients::seal_secret`]; `None` for a hash (or a
    /// value that does not open for this client).
    pub fn open_secret(&self, client_id: &str, stored: &str) -> Option<zeroize::Zeroizing<String>> {
        use base64::Engine as _;
        let sealed = base64::engine::general_purpose::STANDARD.decode(stored.strip_prefix(SEALED_SECRET)?).ok()?;
        let plain = self.inner.sealer.open(&sealed, &secret_aad(client_id)).ok()?;
        String::from_utf8(plain.to_vec()).ok().map(zeroize::Zeroizing::new)
    }

    /// Stores the record as given (timestamps included). `Conflict` if the client id exists.
    pub async fn create(&self, record: ClientRecord) -> Result<(), DirectoryError> {
        if record.client_id.is_empty() {
            return Err(DirectoryError::Invalid("client_id is empty".into()));
        }
        let am: ActiveModel = client::Model {
            client_id: record.client_id.clone(),
            secret_hash: record.secret_hash,
            metadata: serde_json::to_string(&record.metadata)?,
            created_at: record.created_at,
            updated_at: record.updated_at,
            credentials_changed_at: record.credentials_changed_at,
        }
        .into();
        Entity::insert(am).exec_without_returning(&self.inner.db).await.map_err(|e| match DirectoryError::from(e) {
            DirectoryError::Conflict(_) => {
                DirectoryError::Conflict(format!("client {} already exists", record.client_id))
            }
            other => other,
        })?;
        self.inner.changed();
        Ok(())
    }

    pub async fn get(&self, client_id: &str) -> Result<Option<ClientRecord>, DirectoryError> {
        Entity::find_by_id(client_id.to_owned()).one(&self.inner.db).await?.map(to_record).transpose()
    }

    /// Every client, ordered by client id.
    pub async fn list(&self) -> Result<Vec<ClientRecord>, DirectoryError> {
        Entity::find().order_by_asc(Column::ClientId).all(&self.inner.db).await?.into_iter().map(to_record).collect()
    }

    /// Replaces the metadata. `credentials_changed_at` is `Some(now)` when the new metadata
    /// changes how the client authenticates (its keys, its method): the caller knows what the
    /// metadata means, this crate does not.
    pub async fn update_metadata(
        &self,
        client_id: &str,
        metadata: Value,
        credentials_changed_at: Option<i64>,
    ) -> Result<(), DirectoryError> {
        let mut am = ActiveModel { metadata: Set(serde_json::to_string(&metadata)?), ..Default::default() };
        if let Some(at) = credentials_changed_at {
            am.credentials_changed_at = Set(Some(at));
        }
        self.update_row(client_id, am).await
    }

    /// Replaces the secret's hash, in the same write as the moment (`changed_at`, the caller's
    /// clock) its credentials changed.
    pub async fn set_secret_hash(
        &self,
        client_id: &str,
        secret_hash: Option<String>,
        changed_at: i64,
    ) -> Result<(), DirectoryError> {
        let am = ActiveModel {
            secret_hash: Set(secret_hash),
            credentials_changed_at: Set(Some(changed_at)),
            ..Default::default()
        };
        self.update_row(client_id, am).await
    }

    /// `false` if there was no such client.
    pub async fn delete(&self, client_id: &str) -> Result<bool, DirectoryError> {
        let res = Entity::delete_by_id(client_id.to_owned()).exec(&self.inner.db).await?;
        self.inner.changed();
        Ok(res.rows_affected > 0)
    }

    async fn update_row(&self, client_id: &str, mut am: ActiveModel) -> Result<(), DirectoryError> {
        am.updated_at = Set(now());
        let res = Entity::update_many().set(am).filter(Column::ClientId.eq(client_id)).exec(&self.inner.db).await?;
        self.inner.changed();
        if res.rows_affected == 0 {
            return Err(DirectoryError::NotFound);
        }
        Ok(())
    }
}

fn to_record(row: client::Model) -> Result<ClientRecord, DirectoryError> {
    Ok(ClientRecord {
        client_id: row.client_id,
        secret_hash: row.secret_hash,
        metadata: serde_json::from_str(&row.metadata)?,
        created_at: row.created_at,
        updated_at: row.updated_at,
        credentials_changed_at: row.credentials_changed_at,
    })
}
