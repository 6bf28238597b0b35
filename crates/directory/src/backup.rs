//! Online backups of the embedded default's SQLite file.
//!
//! `VACUUM INTO` writes a consistent snapshot of the whole database (the pages still in the WAL
//! included) to a new file while the provider keeps serving: it reads inside one read
//! transaction, so writers go on and the copy is of one moment. PostgreSQL is backed up with its
//! own tools (`pg_dump`), which do the same across the network.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::{Directory, DirectoryError};

impl Directory {
    /// Copies the SQLite database to `to`, a file that must not exist yet, created readable by
    /// its owner only (it holds password hashes and encrypted secrets). Returns the copy's size
    /// in bytes. The master key is not in it: secrets in the copy need it to be read.
    ///
    /// `Invalid` on PostgreSQL or an in-memory database, or when `to` already exists.
    pub async fn backup_to(&self, to: &Path) -> Result<u64, DirectoryError> {
        if self.inner.db.get_database_backend() != DbBackend::Sqlite {
            return Err(DirectoryError::Invalid(
                "this database is PostgreSQL: back it up with pg_dump (docs/operations.md)".into(),
            ));
        }
        let target = to
            .to_str()
            .ok_or_else(|| DirectoryError::Invalid(format!("{}: the path is not UTF-8", to.display())))?
            .to_owned();
        // SQLite accepts an existing file only if it is empty: create it here, private and new,
        // so that an existing backup is never overwritten and the copy is never world-readable
        // even for an instant.
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(to).map_err(|e| {
            DirectoryError::Invalid(match e.kind() {
                std::io::ErrorKind::AlreadyExists => format!("{} already exists: choose a new file", to.display()),
                _ => format!("cannot create {}: {e}", to.display()),
            })
        })?;
        let result = self
            .inner
            .db
            .execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, "VACUUM INTO ?", [target.into()]))
            .await;
        if let Err(e) = result {
            // Leave no half-written file that could be taken for a backup.
            let _ = std::fs::remove_file(to);
            return Err(e.into());
        }
        std::fs::metadata(to)
            .map(|m| m.len())
            .map_err(|e| DirectoryError::Invalid(format!("cannot read {}: {e}", to.display())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::DataKey;

    #[tokio::test]
    async fn a_backup_is_a_private_new_file_that_opens_as_the_same_database() {
        let dir = tempfile::tempdir().unwrap();
        let key = DataKey::generate().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("caducee.db").display());
        let db = Directory::connect(&url, DataKey::from_base64(&key.to_base64()).unwrap()).await.unwrap();
        db.migrate().await.unwrap();
        db.audit()
            .append(crate::AuditEvent {
                event: "test".into(),
                actor: None,
                subject: None,
                client_id: None,
                source_ip: None,
                outcome: "success".into(),
                details: serde_json::json!({}),
                at: 1,
            })
            .await
            .unwrap();

        let copy = dir.path().join("backup.db");
        let bytes = db.backup_to(&copy).await.unwrap();
        assert!(bytes > 0);
        assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o077, 0, "owner only");
        let again = db.backup_to(&copy).await.unwrap_err();
        assert!(again.to_string().contains("already exists"), "{again}");

        let restored = Directory::connect(
            &format!("sqlite://{}", copy.display()),
            DataKey::from_base64(&key.to_base64()).unwrap(),
        )
        .await
        .unwrap();
        let check = restored.audit().verify(None).await.unwrap();
        assert_eq!((check.records, check.first_bad_id), (1, None), "the copy holds the record, chain intact");
    }
}
