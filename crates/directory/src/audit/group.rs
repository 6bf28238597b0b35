//! Appends through the connection pool, group-committed: the path for PostgreSQL (several nodes
//! share the chain, serialised by an advisory lock) and for in-memory SQLite (one connection, so
//! no second one for a dedicated writer).
//!
//! The chain needs one writer at a time, so appends that arrive while a transaction commits wait
//! and are written together by the next one, and each caller still returns only once its own
//! record is committed. Refresh-token writes, also on the token endpoint's path, join the same
//! groups ([`crate::refresh_tokens`]): one commit, and on PostgreSQL one synced log write, for
//! the whole group. A write failing in a group fails the whole group (nothing of it is
//! committed, every caller gets the error): on PostgreSQL an error ends the transaction, and
//! savepoints would cost every write two more round trips; the only such write is a token hash
//! already stored, 256 random bits colliding.

use std::sync::Arc;

use sea_orm::{EntityTrait as _, QueryOrder as _, QuerySelect as _};
use tokio::sync::oneshot;

use super::{Job, MAX_GROUP, chain_rows, reply_all, split_group, writer_gone};
use crate::entity::audit_log::{ActiveModel, Column, Entity};
use crate::refresh_tokens::RefreshJob;
use crate::{DirectoryError, Inner, LOCK_AUDIT};

/// Rows per `INSERT` statement: 11 bound values each stays far below SQLite's variable limit.
const ROWS_PER_INSERT: usize = 64;

/// Appends of this process waiting for the next group commit, and the right to write one.
#[derive(Default)]
pub(crate) struct AuditQueue {
    pending: std::sync::Mutex<Vec<Job>>,
    writer: tokio::sync::Mutex<()>,
}

/// Queues `job` and returns once it is committed, with what `answer` receives: by the caller
/// holding the writer's turn when it comes, or by an earlier writer that took it in its group.
pub(crate) async fn enqueue<T>(
    inner: &Arc<Inner>,
    queue: &AuditQueue,
    job: Job,
    mut answer: oneshot::Receiver<Result<T, DirectoryError>>,
) -> Result<T, DirectoryError> {
    lock_pending(queue).push(job);
    loop {
        tokio::select! {
            biased;
            result = &mut answer => return result.unwrap_or_else(|_| Err(writer_gone())),
            guard = queue.writer.lock() => {
                // The writer before us may have taken our event in its group.
                match answer.try_recv() {
                    Ok(result) => return result,
                    Err(oneshot::error::TryRecvError::Closed) => return Err(writer_gone()),
                    Err(oneshot::error::TryRecvError::Empty) => {}
                }
                let group: Vec<Job> = {
                    let mut pending = lock_pending(queue);
                    let n = pending.len().min(MAX_GROUP);
                    pending.drain(..n).collect()
                };
                if group.is_empty() {
                    // Ours is in a group whose writer was dropped while its task commits.
                    drop(guard);
                    return answer.await.unwrap_or_else(|_| Err(writer_gone()));
                }
                // In a task of its own, so that a caller going away mid-commit cannot abandon
                // the other callers' events.
                let inner = Arc::clone(inner);
                let _ = tokio::spawn(commit_group(inner, group)).await;
                drop(guard);
            }
        }
    }
}

fn lock_pending(queue: &AuditQueue) -> std::sync::MutexGuard<'_, Vec<Job>> {
    // The lock only guards pushes and drains, which cannot panic halfway.
    queue.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn commit_group(inner: Arc<Inner>, group: Vec<Job>) {
    let (appends, mut refreshes) = super::split_jobs(group);
    let mut split = split_group(appends);
    let result = write_rows(&inner, &mut split.rows, &mut refreshes).await;
    let answers = result.map(|answers| answers.into_iter().map(Ok).collect());
    reply_all(split, super::reply_refreshes(refreshes, answers));
}

/// In one locked transaction: the refresh-token writes, then `rows` and the records of the
/// refresh-token writes that took effect, chained after the last stored record. The refresh
/// writes' answers, in order.
async fn write_rows(
    inner: &Inner,
    rows: &mut Vec<crate::entity::audit_log::Model>,
    refreshes: &mut [RefreshJob],
) -> Result<Vec<Option<crate::entity::refresh_token::Model>>, DirectoryError> {
    let txn = inner.write_txn(LOCK_AUDIT).await?;
    let answers = crate::refresh_tokens::write_in(&txn, refreshes).await?;
    super::attach_records(rows, refreshes, answers.iter().map(Some));
    if !rows.is_empty() {
        let last = Entity::find()
            .select_only()
            .column(Column::Id)
            .column(Column::Hash)
            .order_by_desc(Column::Id)
            .into_tuple::<(i64, String)>()
            .one(&txn)
            .await?;
        chain_rows(rows, last, &inner.audit_key)?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let models = chunk.iter().cloned().map(ActiveModel::from);
            Entity::insert_many(models).exec_without_returning(&txn).await?;
        }
    }
    txn.commit().await?;
    Ok(answers)
}
