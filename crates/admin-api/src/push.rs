//! Push blocks, as administrators see and set them: a professional who answered «ce n'était
//! pas moi» gets no approval requests until the block is lifted (here, or by them in the wallet).

use serde::Serialize;
use utoipa::ToSchema;

use crate::service::{Actor, AdminError, AdminService};

/// Whether push approvals reach a professional's phone.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PushBlockView {
    pub blocked: bool,
    /// `not_me` (answered on the phone), `wallet` (the professional's switch) or `admin`.
    pub reason: Option<String>,
    /// Who set the block: the subject, an admin id, or none for the phone's answer.
    pub actor: Option<String>,
    pub since: Option<i64>,
}

impl From<Option<directory::PushBlock>> for PushBlockView {
    fn from(b: Option<directory::PushBlock>) -> Self {
        match b {
            Some(b) => {
                PushBlockView { blocked: true, reason: Some(b.reason), actor: b.actor, since: Some(b.blocked_at) }
            }
            None => PushBlockView { blocked: false, reason: None, actor: None, since: None },
        }
    }
}

impl AdminService {
    /// Whether pushes are blocked for a professional.
    pub async fn push_block(&self, national_id: &str) -> Result<PushBlockView, AdminError> {
        let p = self.professional(national_id).await?;
        Ok(self.directory.push_blocks().get(&p.subject).await?.into())
    }

    /// Blocks pushes for a professional: their phone gets no more approvals, and a push
    /// pending now is refused (its login page says so). Held in the database, so it holds on
    /// every node, push approval on or off.
    pub async fn block_pushes(&self, actor: &Actor, national_id: &str) -> Result<PushBlockView, AdminError> {
        let p = self.professional(national_id).await?;
        let set = self.push.block(&p.subject, "admin", Some(&actor.id), self.now()).await?;
        self.audit(actor, "admin.push.block", Some(&p.subject), serde_json::json!({ "already_blocked": !set })).await;
        self.push_block(national_id).await
    }

    /// «Débloquer les notifications»: lifts a push block, whoever set it.
    pub async fn unblock_pushes(&self, actor: &Actor, national_id: &str) -> Result<PushBlockView, AdminError> {
        let p = self.professional(national_id).await?;
        let lifted = self.directory.push_blocks().get(&p.subject).await?;
        self.push.unblock(&p.subject, Some(&actor.id), self.now()).await?;
        let details = serde_json::json!({ "was_blocked": lifted.is_some(), "reason": lifted.map(|b| b.reason) });
        self.audit(actor, "admin.push.unblock", Some(&p.subject), details).await;
        self.push_block(national_id).await
    }
}
