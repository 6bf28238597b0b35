//! The one error type every repository returns.

use std::ops::Deref;

use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// What went wrong in a directory operation.
///
/// Callers branch on the variant: `Unavailable` must become a 503 (fail closed), `Conflict` a
/// 409-like answer, `Crypto` means the data key does not match the stored secrets.
#[derive(Clone, Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("cannot decrypt a secret at rest: wrong data key or altered row")]
    Crypto,
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Db(String),
}

impl From<DbErr> for DirectoryError {
    fn from(err: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(msg)) = err.sql_err() {
            return DirectoryError::Conflict(msg);
        }
        if is_unavailable(&err) {
            metrics::counter!("caducee_database_errors_total", "kind" => "unavailable").increment(1);
            return DirectoryError::Unavailable(err.to_string());
        }
        metrics::counter!("caducee_database_errors_total", "kind" => "other").increment(1);
        DirectoryError::Db(err.to_string())
    }
}

impl From<rusqlite::Error> for DirectoryError {
    /// From the audit log's own SQLite connection ([`crate::audit`]).
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match err.sqlite_error_code() {
            // The busy timeout ran out, or the file cannot be opened or read: fail closed.
            Some(C::DatabaseBusy | C::DatabaseLocked | C::CannotOpen | C::SystemIoFailure) => {
                metrics::counter!("caducee_database_errors_total", "kind" => "unavailable").increment(1);
                DirectoryError::Unavailable(err.to_string())
            }
            Some(C::ConstraintViolation) => DirectoryError::Conflict(err.to_string()),
            _ => {
                metrics::counter!("caducee_database_errors_total", "kind" => "other").increment(1);
                DirectoryError::Db(err.to_string())
            }
        }
    }
}

impl From<serde_json::Error> for DirectoryError {
    fn from(err: serde_json::Error) -> Self {
        // Only rows we wrote ourselves are parsed, so a failure means a corrupted column.
        DirectoryError::Db(format!("malformed JSON column: {err}"))
    }
}

/// Whether the error means "the database cannot be reached or cannot serve now", as opposed to
/// "the query is wrong": the former must fail closed and clear by itself when the database is back.
fn is_unavailable(err: &DbErr) -> bool {
    let sqlx_err = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    use sea_orm::sqlx::Error as E;
    match sqlx_err.deref() {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => true,
        E::Protocol(_) => true,
        E::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: class 08 connection exception, 57P0x shutdown/recovery, 53300 too many
            // connections. SQLite: SQLITE_BUSY (5, with extended codes) and SQLITE_LOCKED (6)
            // after the busy timeout ran out.
            code.starts_with("08")
                || code.starts_with("57P0")
                || code == "53300"
                || matches!(code.as_ref(), "5" | "6" | "261" | "262" | "517" | "773")
        }
        _ => false,
    }
}
