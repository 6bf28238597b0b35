//! Appends through the connection pool, group-committed: the path for PostgreSQL (several nodes
//! share the chain, serialised by an advisory lock) and for in-memory SQLite (one connection, so
//! no second one for a dedicated writer).
//!
//! The chain needs one writer at a time, so appends that arrive while a transaction commits wait
//! and are written together by the next one, and each caller still returns only once its own
//! record is committed.

use std::sync::Arc;

use sea_orm::{EntityTrait as _, QueryOrder as _, QuerySelect as _};
use tokio::sync::oneshot;

use super::{Answer, MAX_GROUP, Waiting, chain_rows, reply_all, split_group, writer_gone};
use crate::entity::audit_log::{ActiveModel, Column, Entity};
use crate::{DirectoryError, Inner, LOCK_AUDIT};

/// Rows per `INSERT` statement: 11 bound values each stays far below SQLite's variable limit.
const ROWS_PER_INSERT: usize = 64;

/// Appends of this process waiting for the next group commit, and the right to write one.
#[derive(Default)]
pub(crate) struct AuditQueue {
    pending: std::sync::Mutex<Vec<Waiting>>,
    writer: tokio::sync::Mutex<()>,
}

/// Queues `waiting` and returns once it is committed: by the caller holding the writer's turn
/// when it comes, or by an earlier writer that took it in its group.
pub(crate) async fn append(
    inner: &Arc<Inner>,
    queue: &AuditQueue,
    waiting: Waiting,
    mut answer: Answer,
) -> Result<super::AuditRecord, DirectoryError> {
    lock_pending(queue).push(waiting);
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
                let group: Vec<Waiting> = {
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

fn lock_pending(queue: &AuditQueue) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
    // The lock only guards pushes and drains, which cannot panic halfway.
    queue.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn commit_group(inner: Arc<Inner>, group: Vec<Waiting>) {
    let mut split = split_group(group);
    let result = write_rows(&inner, &mut split.rows).await;
    reply_all(split, result);
}

/// Chains `rows` after the last stored record and inserts them, in one locked transaction.
async fn write_rows(inner: &Inner, rows: &mut [crate::entity::audit_log::Model]) -> Result<(), DirectoryError> {
    let txn = inner.write_txn(LOCK_AUDIT).await?;
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
    txn.commit().await?;
    Ok(())
}
