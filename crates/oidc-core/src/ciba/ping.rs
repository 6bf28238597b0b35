//! CIBA's ping mode (CIBA Core 1.0 §10.2): the node that took the request watches it and tells
//! the client once the professional answered or the request expired.

use std::sync::Arc;
use std::time::Duration;

use super::{CibaRecord, CibaState};
use crate::provider::{AuditEntry, ProtocolEvent, Provider};

/// How often a ping-mode request is looked at, for the ping.
const PING_WATCH_EVERY: Duration = Duration::from_secs(1);
/// The longest a ping-mode request is watched (it lives a minute or so).
const PING_WATCH_AT_MOST: Duration = Duration::from_secs(15 * 60);

impl Provider {
    /// Ping mode (CIBA §10.2): watches the request until the professional answers or it
    /// expires, then tells the client at its notification endpoint. A client that polls
    /// meanwhile is answered as in poll mode.
    pub(super) async fn watch_for_ping(self: Arc<Self>, key: String, auth_req_id: String, clock: crate::http::Clock) {
        // However the store fares, the watch ends: a request lives minutes at most.
        let give_up = tokio::time::Instant::now() + PING_WATCH_AT_MOST;
        loop {
            tokio::time::sleep(PING_WATCH_EVERY).await;
            if tokio::time::Instant::now() >= give_up {
                tracing::warn!("CIBA ping: gave up watching a request");
                return;
            }
            let now = clock();
            let record = match self.store.get(&key).await {
                Ok(Some(raw)) => serde_json::from_slice::<CibaRecord>(&raw).ok(),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "CIBA ping: the store is unavailable, trying again");
                    continue;
                }
            };
            let Some(record) = record else { return };
            let record = match record.state {
                CibaState::Pending if now < record.expires_at => match self.advance(&key, record, now).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "CIBA ping: checking the request failed, trying again");
                        continue;
                    }
                },
                _ => record,
            };
            if record.state == CibaState::Pending && now < record.expires_at {
                continue;
            }
            if record.state != CibaState::Issued {
                self.ping(&record, &auth_req_id).await;
            }
            return;
        }
    }

    async fn ping(&self, record: &CibaRecord, auth_req_id: &str) {
        let Ok(Some(client)) = self.clients.get(&record.client_id).await else { return };
        let (Some(endpoint), Some(token)) =
            (client.metadata.backchannel_client_notification_endpoint.as_deref(), record.notification_token.as_deref())
        else {
            return;
        };
        let body = serde_json::json!({ "auth_req_id": auth_req_id });
        let sent = self.ping_http.post(endpoint).bearer_auth(token).json(&body).send().await.map(|r| r.status());
        let outcome = match &sent {
            Ok(status) if status.is_success() => "pinged",
            _ => "ping_failed",
        };
        if let Err(e) = &sent {
            tracing::warn!(error = %e, client = %record.client_id, "CIBA ping failed");
        }
        self.audit(
            AuditEntry::new(ProtocolEvent::CibaRequest, outcome)
                .client(&record.client_id)
                .details(serde_json::json!({ "request": record.id })),
        )
        .await;
    }
}
