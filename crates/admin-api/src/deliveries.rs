//! Back-channel logout deliveries an administrator sends again: a failed one (its retries
//! exhausted) or a pending one, now rather than at its next scheduled attempt.

use directory::DeliveryStatus;

use crate::service::{Actor, AdminError, AdminService, DeliveryView};

impl AdminService {
    /// Puts a delivery back in the queue, due now; the background retry loop sends it within
    /// seconds. A delivered one is left as it is.
    pub async fn retry_delivery(&self, actor: &Actor, id: &str) -> Result<DeliveryView, AdminError> {
        let deliveries = self.directory.logout_deliveries();
        let d = deliveries.get(id).await?.ok_or(AdminError::NotFound("delivery"))?;
        if d.status == DeliveryStatus::Delivered {
            return Err(AdminError::Conflict("this logout token was already delivered".into()));
        }
        let now = self.now();
        deliveries.update(id, DeliveryStatus::Pending, d.attempts, d.last_error.clone(), Some(now), now).await?;
        let details = serde_json::json!({ "delivery": id, "client_id": d.client_id, "was": d.status.as_str() });
        self.audit(actor, "admin.logout_delivery.retry", Some(&d.subject), details).await;
        deliveries.get(id).await?.map(DeliveryView::from).ok_or(AdminError::NotFound("delivery"))
    }
}
