//! Accounts whose push approvals are blocked («ce n'était pas moi», or the professional's own
//! switch in the wallet). A row is the block; no row, no block. Kept in the database rather
//! than the session store because a block must outlive restarts and hold on every node.

use sea_orm::EntityTrait as _;
use sea_orm::sea_query::OnConflict;

use crate::entity::push_block::{self, ActiveModel, Column, Entity};
use crate::{DirectoryError, Inner};

/// Why and since when pushes are refused to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushBlock {
    pub subject: String,
    /// `not_me` (answered on the phone), `wallet` (the professional's switch), `admin`.
    pub reason: String,
    /// Who set it: the subject themselves, an admin's id, or none for the phone's answer.
    pub actor: Option<String>,
    pub blocked_at: i64,
}

/// Repository of push blocks; obtained from [`crate::Directory::push_blocks`].
pub struct PushBlocks<'a> {
    inner: &'a Inner,
}

impl<'a> PushBlocks<'a> {
    pub(crate) fn new(inner: &'a Inner) -> Self {
        PushBlocks { inner }
    }

    pub async fn get(&self, subject: &str) -> Result<Option<PushBlock>, DirectoryError> {
        let row = Entity::find_by_id(subject.to_owned()).one(&self.inner.db).await?;
        Ok(row.map(|r| PushBlock { subject: r.subject, reason: r.reason, actor: r.actor, blocked_at: r.blocked_at }))
    }

    /// Blocks pushes for `subject`. An existing block is kept as it was (its first reason and
    /// time tell what happened); returns whether this call created it.
    pub async fn block(
        &self,
        subject: &str,
        reason: &str,
        actor: Option<&str>,
        at: i64,
    ) -> Result<bool, DirectoryError> {
        let am: ActiveModel = push_block::Model {
            subject: subject.to_owned(),
            reason: reason.to_owned(),
            actor: actor.map(str::to_owned),
            blocked_at: at,
        }
        .into();
        let res = Entity::insert(am)
            .on_conflict(OnConflict::column(Column::Subject).do_nothing().to_owned())
            .exec_without_returning(&self.inner.db)
            .await?;
        Ok(res == 1)
    }

    /// Lifts the block; returns whether there was one.
    pub async fn unblock(&self, subject: &str) -> Result<bool, DirectoryError> {
        let res = Entity::delete_by_id(subject.to_owned()).exec(&self.inner.db).await?;
        Ok(res.rows_affected > 0)
    }
}
