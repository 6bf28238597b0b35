//! Caducée's durable data, through `sea-orm`, on SQLite (the default, one file) or PostgreSQL
//! (production, several nodes): health professionals and their PSC-shaped professional data,
//! OIDC clients, enrolled authenticators (secrets encrypted at rest), refresh-token grants,
//! signing keys, and the audit log, chained by keyed hashes; plus the schema migrations for both
//! backends.
//! (On a SQLite file, the audit log's writer thread has a connection of its own, through
//! `rusqlite`, linked to the same SQLite library as sqlx.)
//!
//! This crate owns storage only. It must not depend on the protocol (`oidc-core`), the
//! authentication methods (`authn-methods`), the pages (`login-ui`) or the `server` crate: they
//! depend on it, through the repositories returned by [`Directory`].
//!
//! Every timestamp is `i64` Unix seconds, UTC. Operations that must be single-use across nodes
//! (`Authenticators::advance_counter`, `RefreshTokens::consume`) are one conditional `UPDATE`,
//! decided by the number of rows it changed, never read-then-write.

mod admin_roles;
mod audit;
mod authenticators;
mod backup;
mod clients;
mod crypto;
mod entity;
mod error;
mod logout_deliveries;
mod migration;
mod professionals;
mod push_blocks;
mod refresh_tokens;
mod signing_keys;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

pub use admin_roles::{AdminRole, AdminRoles};
pub use audit::{AuditEvent, AuditHead, AuditLog, AuditQuery, AuditRecord, AuditVerification, GENESIS_HASH, HeadCheck};
pub use authenticators::{AuthenticatorRecord, Authenticators, NewAuthenticator};
pub use clients::{ClientRecord, Clients};
pub use crypto::{DataKey, KeyedHash, SubKeys, sha256_hex};
pub use error::DirectoryError;
pub use logout_deliveries::{DeliveryQuery, DeliveryStatus, LogoutDeliveries, LogoutDeliveryRecord};
pub use professionals::{
    AccountStatus, Activity, MAX_NATIONAL_ID_LEN, NewProfessional, OtherId, Practice, Professional, ProfessionalUpdate,
    Professionals, is_valid_national_id,
};
pub use push_blocks::{PushBlock, PushBlocks};
pub use refresh_tokens::{ConsumeOutcome, RefreshTokenRecord, RefreshTokens, Successor};
pub use signing_keys::{SigningKeyRecord, SigningKeys};

use crypto::Sealer;

/// How long a caller waits for a connection before getting `Unavailable` (and a 503).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite waits for another writer before giving up with `SQLITE_BUSY`.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// `pg_advisory_xact_lock` keys ("Caducee" + a purpose byte), so nodes sharing one database
/// serialise migrations and audit appends.
const LOCK_MIGRATE: i64 = 0x4361_6475_6365_6501;
pub(crate) const LOCK_AUDIT: i64 = 0x4361_6475_6365_6502;

/// Handle to the durable store. Cheap to clone (an `Arc` inside); one per process is enough.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: DatabaseConnection,
    pub(crate) sealer: Sealer,
    pub(crate) sub_keys: SubKeys,
    /// The audit chain's key (see [`audit`]), derived once.
    pub(crate) audit_key: KeyedHash,
    pub(crate) audit_writer: audit::AuditWriter,
    /// See [`Directory::change_count`].
    pub(crate) changes: AtomicU64,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").field("backend", &self.inner.db.get_database_backend()).finish_non_exhaustive()
    }
}

impl Directory {
    /// Opens a pool on `sqlite:PATH` (file created if missing; WAL, 5 s busy timeout, foreign
    /// keys on), `sqlite::memory:` (one connection, since every connection would be its own
    /// database), or `postgres://...`.
    ///
    /// Fails with `Unavailable` when the database cannot be reached, `Invalid` for other URLs.
    pub async fn connect(database_url: &str, key: DataKey) -> Result<Self, DirectoryError> {
        let sealer = Sealer::new(&key)?;
        let sub_keys = key.sub_keys();
        let audit_key = sub_keys.keyed_hash(audit::KEY_PURPOSE);
        drop(key);

        let mut opts = ConnectOptions::new(database_url.to_owned());
        opts.sqlx_logging(false).connect_timeout(ACQUIRE_TIMEOUT).acquire_timeout(ACQUIRE_TIMEOUT);

        if database_url.starts_with("sqlite:") {
            let in_memory = sqlite_in_memory(database_url);
            if in_memory {
                // The single connection must never be recycled, or the data goes with it.
                opts.max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None::<Duration>)
                    .max_lifetime(None::<Duration>);
            } else {
                // SQLite has one writer at a time anyway; a few connections let reads overlap.
                opts.max_connections(8).min_connections(1);
            }
            opts.map_sqlx_sqlite_opts(move |o| {
                let o = o.create_if_missing(true).busy_timeout(SQLITE_BUSY_TIMEOUT).foreign_keys(true);
                if in_memory {
                    o
                } else {
                    // WAL: readers do not block the writer; NORMAL is durable in WAL mode except
                    // for the last transactions on power loss, which is acceptable here.
                    o.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal)
                }
            });
        } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            opts.max_connections(16).min_connections(1);
        } else {
            return Err(DirectoryError::Invalid("database_url must start with sqlite: or postgres://".into()));
        }

        let db = Database::connect(opts).await.map_err(|e| {
            // Whatever the cause (refused, unknown host, bad path), the store is not there.
            DirectoryError::Unavailable(e.to_string())
        })?;
        // After the pool, which has created the file if it was missing.
        let audit_writer = match sqlite_file(database_url)? {
            Some(path) => audit::AuditWriter::for_sqlite_file(&path, audit_key.clone())?,
            None => audit::AuditWriter::pool(),
        };
        let inner = Inner { db, sealer, sub_keys, audit_key, audit_writer, changes: AtomicU64::new(0) };
        Ok(Directory { inner: Arc::new(inner) })
    }

    /// Applies pending migrations; a no-op when the schema is current. Safe to run from several
    /// nodes at once (serialised by an advisory lock on PostgreSQL, a write lock on SQLite).
    pub async fn migrate(&self) -> Result<(), DirectoryError> {
        let txn = self.inner.write_txn(LOCK_MIGRATE).await?;
        migration::Migrator::up(&txn, None).await?;
        txn.commit().await?;
        Ok(())
    }

    /// A round-trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), DirectoryError> {
        self.inner.db.ping().await.map_err(|e| DirectoryError::Unavailable(e.to_string()))
    }

    /// `"sqlite"` or `"postgres"`, for logs and health output.
    pub fn backend(&self) -> &'static str {
        match self.inner.db.get_database_backend() {
            DbBackend::Postgres => "postgres",
            DbBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }

    /// Grows after every change this process makes to a client or a professional. In-process
    /// caches of either keep the count they read before loading an entry, and drop the entry
    /// once the count has moved; changes made by other nodes are not seen here, so such caches
    /// also bound how long they keep an entry.
    pub fn change_count(&self) -> u64 {
        self.inner.changes.load(Ordering::Acquire)
    }

    pub fn professionals(&self) -> Professionals<'_> {
        Professionals::new(&self.inner)
    }

    pub fn clients(&self) -> Clients<'_> {
        Clients::new(&self.inner)
    }

    pub fn authenticators(&self) -> Authenticators<'_> {
        Authenticators::new(&self.inner)
    }

    pub fn refresh_tokens(&self) -> RefreshTokens<'_> {
        RefreshTokens::new(&self.inner)
    }

    pub fn logout_deliveries(&self) -> LogoutDeliveries<'_> {
        LogoutDeliveries::new(&self.inner)
    }

    pub fn admin_roles(&self) -> AdminRoles<'_> {
        AdminRoles::new(&self.inner)
    }

    pub fn push_blocks(&self) -> PushBlocks<'_> {
        PushBlocks::new(&self.inner)
    }

    pub fn signing_keys(&self) -> SigningKeys<'_> {
        SigningKeys::new(&self.inner)
    }

    pub fn audit(&self) -> AuditLog<'_> {
        AuditLog::new(&self.inner)
    }

    /// The keyed hash for `purpose`, under a key derived from the master key this directory
    /// was opened with (the same on every node sharing that key).
    pub fn keyed_hash(&self, purpose: &str) -> KeyedHash {
        self.inner.sub_keys.keyed_hash(purpose)
    }

    /// A 32-byte secret for `purpose`, derived from the master key like [`Directory::keyed_hash`].
    pub fn derived_secret(&self, purpose: &str) -> zeroize::Zeroizing<[u8; 32]> {
        self.inner.sub_keys.secret(purpose)
    }
}

impl Inner {
    /// Called after a client or professional write has reached the database (not before: a
    /// cache that reads the old row after an early bump would keep it under the new count).
    pub(crate) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// A transaction that holds the database-wide lock `key` until it ends: an advisory lock on
    /// PostgreSQL, `BEGIN IMMEDIATE` on SQLite (which already allows a single writer, and taking
    /// the write lock up front avoids the `SQLITE_BUSY` of upgrading a read transaction).
    pub(crate) async fn write_txn(&self, key: i64) -> Result<DatabaseTransaction, DirectoryError> {
        match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let txn = self.db.begin().await?;
                txn.execute_raw(sea_orm::Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_advisory_xact_lock($1)",
                    [key.into()],
                ))
                .await?;
                Ok(txn)
            }
            _ => Ok(self
                .db
                .begin_with_options(TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await?),
        }
    }
}

/// The file behind a `sqlite:` URL, `None` for an in-memory database or another backend.
fn sqlite_file(database_url: &str) -> Result<Option<std::path::PathBuf>, DirectoryError> {
    use std::str::FromStr as _;
    if !database_url.starts_with("sqlite:") {
        return Ok(None);
    }
    let opts = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(database_url)
        .map_err(|e| DirectoryError::Invalid(format!("database_url: {e}")))?;
    let path = opts.get_filename();
    Ok((!sqlite_in_memory(database_url)).then(|| path.to_path_buf()))
}

/// Whether a `sqlite:` URL names an in-memory database (one per connection).
fn sqlite_in_memory(database_url: &str) -> bool {
    database_url.contains(":memory:") || database_url.contains("mode=memory")
}

/// Current Unix time in seconds, for the timestamps the directory sets itself.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
