//! What the phone asks of pushes: the list of those waiting for it (held open a while, as a
//! long poll), and its answer (approve with the number, refuse, «ce n'était pas moi»).

use std::time::Duration;

use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::{
    AnswerOutcome, Challenge, ChallengeState, Decision, PendingView, PushApprovals, challenge_key, current_key,
    internal,
};
use crate::push_request::DeviceError;

#[derive(Deserialize)]
struct ListBody {
    action: String,
    /// Seconds the phone is ready to wait for a request when none is pending (long poll).
    #[serde(default)]
    wait: u64,
}

/// How often a held list request looks again (in the shared store: any node's push shows).
const WAIT_POLL: Duration = Duration::from_millis(250);

#[derive(Deserialize)]
struct AnswerBody {
    action: String,
    challenge: String,
    decision: Decision,
    #[serde(default)]
    number: String,
}

impl PushApprovals {
    /// The phone asks what is waiting for its approval.
    ///
    /// With `wait` (seconds, at most `max_wait`), an empty answer is held until a request
    /// comes or the time is up, so that a phone that keeps a connection open learns of a push
    /// at once without a gateway. `clock` gives the provider's time as it passes.
    pub async fn pending(
        &self,
        token: &str,
        clock: &(dyn Fn() -> i64 + Send + Sync),
    ) -> Result<Vec<PendingView>, DeviceError> {
        let (device, body): (_, ListBody) = self.device_request(token, clock()).await?;
        if body.action != "list" {
            return Err(DeviceError::InvalidRequest("action must be list"));
        }
        let Some(subject) = device.subject.clone() else {
            return Err(DeviceError::Unauthorized);
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(body.wait).min(self.settings.max_wait);
        loop {
            let found = self.pending_for(&device, &subject, clock()).await?;
            if !found.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(found);
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// What waits for `device` now.
    async fn pending_for(
        &self,
        device: &directory::AuthenticatorRecord,
        subject: &str,
        now: i64,
    ) -> Result<Vec<PendingView>, DeviceError> {
        let Some(id) = self.store.get(&current_key(subject)).await? else {
            return Ok(Vec::new());
        };
        let Some(ch) = self.read(&challenge_key(&String::from_utf8_lossy(&id))).await? else {
            return Ok(Vec::new());
        };
        if ch.state != ChallengeState::Pending || ch.device != device.id || ch.expires_at < now {
            return Ok(Vec::new());
        }
        let context = self.trusted_context(ch.client_name, ch.source_ip, ch.user_agent, ch.created_at, ch.expires_at);
        Ok(vec![PendingView { id: ch.id, context }])
    }

    /// The phone answers a push: approve (with the number the login page shows), deny, or
    /// «ce n'était pas moi». A push is answered once; a wrong number spends it.
    pub async fn answer(&self, token: &str, now: i64) -> Result<AnswerOutcome, DeviceError> {
        let (device, body): (_, AnswerBody) = self.device_request(token, now).await?;
        if body.action != "answer" {
            return Err(DeviceError::InvalidRequest("action must be answer"));
        }
        let key = challenge_key(&body.challenge);
        let Some(raw) = self.store.get(&key).await? else {
            return Err(DeviceError::NotFound("challenge"));
        };
        let ch: Challenge = serde_json::from_slice(&raw).map_err(|e| DeviceError::Unavailable(internal(e)))?;
        if ch.device != device.id || ch.state != ChallengeState::Pending || ch.expires_at < now {
            return Err(DeviceError::NotFound("challenge"));
        }
        // An approval is refused once pushes are blocked, even if this one was sent before.
        if body.decision == Decision::Approve && self.directory.push_blocks().get(&ch.subject).await?.is_some() {
            return Err(DeviceError::NotFound("challenge"));
        }
        let right_number = bool::from(body.number.trim().as_bytes().ct_eq(ch.number.as_bytes()));
        let (state, outcome) = match body.decision {
            Decision::Approve if right_number => (ChallengeState::Approved, AnswerOutcome::Approved),
            Decision::Approve => (ChallengeState::Denied, AnswerOutcome::Denied { wrong_number: true }),
            Decision::Deny => (ChallengeState::Denied, AnswerOutcome::Denied { wrong_number: false }),
            Decision::NotMe => (ChallengeState::NotMe, AnswerOutcome::NotMe { subject: ch.subject.clone() }),
        };
        let answered = Challenge { state, ..ch.clone() };
        let bytes = serde_json::to_vec(&answered).map_err(|e| DeviceError::Unavailable(internal(e)))?;
        let left = u64::try_from(ch.expires_at - now).unwrap_or(0).max(1);
        // Of two answers racing (two taps, two nodes), exactly one changes the pending push.
        if !self.store.compare_and_swap(&key, &raw, &bytes, Duration::from_secs(left)).await? {
            return Err(DeviceError::NotFound("challenge"));
        }
        // The answer stands whatever happens to the auto-silence's bookkeeping.
        if let Err(e) = self.notifier.answered(&ch.subject, &ch.id, outcome == AnswerOutcome::Approved).await {
            tracing::warn!(error = %e, "counting a push answer for auto-silence failed");
        }
        let details =
            serde_json::json!({ "interaction": ch.interaction, "device": device.id, "client": ch.client_name });
        let (event, result) = match &outcome {
            AnswerOutcome::Approved => ("push_approved", "approved"),
            AnswerOutcome::Denied { wrong_number: true } => ("push_denied", "wrong_number"),
            AnswerOutcome::Denied { wrong_number: false } => ("push_denied", "denied"),
            AnswerOutcome::NotMe { .. } => ("push_not_me", "not_me"),
        };
        self.audit(event, &ch.subject, Some(&ch.subject), ch.source_ip.as_deref(), result, details, now).await;
        if let AnswerOutcome::NotMe { subject } = &outcome {
            // For administrators: someone else holds this professional's password. What is
            // known of them (address, browser, the service they aimed at) goes with the alert.
            let alert = serde_json::json!({
                "reason": "push_not_me",
                "source_ip": ch.source_ip,
                "user_agent": ch.user_agent,
                "client": ch.client_name,
                "interaction": ch.interaction,
                "enrolment_frozen_until": now.saturating_add(i64::try_from(self.settings.enrolment_freeze.as_secs()).unwrap_or(0)),
            });
            self.audit("security_alert", subject, None, ch.source_ip.as_deref(), "push_not_me", alert, now).await;
            self.block(subject, "not_me", None, now).await?;
        }
        Ok(outcome)
    }
}
