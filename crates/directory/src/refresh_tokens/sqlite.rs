//! Refresh-token writes as the SQLite file's writer thread runs them ([`crate::audit`]'s
//! `sqlite_writer`): each inside the thread's group transaction, under a savepoint of its own,
//! so that one write failing (a hash already stored) fails that caller alone.

use rusqlite::{OptionalExtension as _, params};

use super::{RefreshJob, RefreshOp};
use crate::DirectoryError;
use crate::entity::refresh_token::Model;

const INSERT: &str = "INSERT INTO refresh_tokens \
     (token_hash, grant_id, client_id, subject, sid, payload, created_at, expires_at, consumed_at, revoked_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Runs `job`'s write under a savepoint of `conn`'s open transaction; on error, what it wrote
/// is rolled back and the rest of the group goes on.
/// The savepoint's statements are prepared once, like the writes': not parsed again for each.
pub(crate) fn run(job: &RefreshJob, conn: &rusqlite::Connection) -> Result<Option<Model>, DirectoryError> {
    conn.prepare_cached("SAVEPOINT refresh")?.execute([])?;
    let result = write(job, conn);
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO refresh")?.execute([])?;
    }
    conn.prepare_cached("RELEASE refresh")?.execute([])?;
    result
}

fn write(job: &RefreshJob, conn: &rusqlite::Connection) -> Result<Option<Model>, DirectoryError> {
    match &job.op {
        RefreshOp::Insert(row) => {
            insert(conn, row)?;
            Ok(None)
        }
        RefreshOp::Rotate { token_hash, now, successor } => {
            let used = conn
                .prepare_cached(super::CONSUME_SQLITE)?
                .query_row(params![token_hash, now], |r| {
                    Ok(Model {
                        token_hash: String::new(),
                        grant_id: r.get(0)?,
                        client_id: r.get(1)?,
                        subject: r.get(2)?,
                        sid: r.get(3)?,
                        payload: r.get(4)?,
                        created_at: r.get(5)?,
                        expires_at: r.get(6)?,
                        consumed_at: None,
                        revoked_at: None,
                    })
                })
                .optional()?;
            if let (Some(used), Some(next)) = (&used, successor) {
                let row = Model {
                    token_hash: next.token_hash.clone(),
                    created_at: next.created_at,
                    expires_at: next.expires_at,
                    ..used.clone()
                };
                insert(conn, &row)?;
            }
            Ok(used)
        }
    }
}

fn insert(conn: &rusqlite::Connection, r: &Model) -> Result<(), DirectoryError> {
    conn.prepare_cached(INSERT)?.execute(params![
        r.token_hash,
        r.grant_id,
        r.client_id,
        r.subject,
        r.sid,
        r.payload,
        r.created_at,
        r.expires_at,
        r.consumed_at,
        r.revoked_at
    ])?;
    Ok(())
}
