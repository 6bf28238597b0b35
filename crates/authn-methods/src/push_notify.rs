//! Waking the professional's phone for a push request, and keeping quiet when someone keeps
//! asking.
//!
//! The phone learns of requests by asking (`/push/v1/challenges`); a deployment wakes it sooner
//! through a push gateway (the phone vendor's notification service, behind a small relay of the
//! operator's), which this module calls: one `POST` of JSON per new request, signed with
//! HMAC-SHA256 under a secret the operator shares with the gateway. The payload names the
//! device and the request, nothing about the person: the gateway maps the device id to the
//! phone's notification token, which it alone holds.
//!
//! Auto-silence (push bombing): after `silence_after_denials` refusals or
//! `silence_after_expiries` unanswered requests since the last approval, requests still reach
//! the app (the professional who opens it sees them, and can answer «ce n'était pas moi»), but
//! the phone is not woken for `silence_for`. Requests made meanwhile count too, so that an
//! attacker who keeps asking keeps the phone quiet; an approval ends the silence and starts the
//! count again.
//!
//! Must not hold the login up: the call runs in the background, bounded by a timeout, and a
//! gateway that fails changes nothing but the wake-up.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use serde::Serialize;
use session_store::SessionStore;
use zeroize::Zeroizing;

use crate::method::AuthError;
use crate::store_keys::{PUSH_DENIALS, PUSH_EXPIRIES, PUSH_OUTSTANDING, PUSH_SILENCE};

/// Where and how to wake phones.
#[derive(Clone)]
pub struct WebhookSettings {
    /// The gateway's URL (https in production).
    pub url: String,
    /// The secret the signature is made with, shared with the gateway.
    pub secret: Zeroizing<String>,
    /// How long a call may take before it is given up (a request lives a minute).
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// When to stop waking the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceSettings {
    pub after_denials: u64,
    pub after_expiries: u64,
    pub silence_for: Duration,
}

impl Default for SilenceSettings {
    fn default() -> Self {
        SilenceSettings { after_denials: 2, after_expiries: 3, silence_for: Duration::from_secs(3600) }
    }
}

/// What the gateway receives (`type` is `push_request`).
#[derive(Debug, Serialize)]
struct WakeUp<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    device_id: &'a str,
    challenge_id: &'a str,
    issued_at: i64,
    expires_at: i64,
}

/// The header carrying the signature: `v1=` and the hex HMAC-SHA256 of `{timestamp}.{body}`.
pub const SIGNATURE_HEADER: &str = "x-caducee-signature";
/// The header carrying the timestamp the signature covers (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-caducee-timestamp";

/// Signs a webhook body as the gateway must check it.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("v1={}", hmac_sha256_hex(secret, &[timestamp.to_string().as_bytes(), b".", body]))
}

fn hmac_sha256_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(part);
    }
    ctx.sign().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a new request woke the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeUpOutcome {
    /// The gateway is being called.
    Sent,
    /// Silenced until then (Unix seconds): the request waits in the app.
    Silenced { until: i64 },
    /// No gateway configured: the app finds the request when it asks.
    NoGateway,
}

/// The push service's notifier (one per process; state in the session store, for every node).
pub struct PushNotifier {
    store: Arc<dyn SessionStore>,
    /// The gateway and the client that calls it, when one is configured.
    webhook: Option<(WebhookSettings, reqwest::Client)>,
    silence: SilenceSettings,
}

/// How long the counts since the last approval are kept without news.
const STREAK_MEMORY: Duration = Duration::from_secs(24 * 3600);

impl PushNotifier {
    pub fn new(store: Arc<dyn SessionStore>, silence: SilenceSettings) -> Self {
        PushNotifier { store, webhook: None, silence }
    }

    /// Wakes phones through this gateway.
    pub fn with_webhook(mut self, webhook: WebhookSettings) -> Result<Self, AuthError> {
        let http = reqwest::Client::builder()
            .timeout(webhook.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::Internal(format!("webhook client: {e}")))?;
        self.webhook = Some((webhook, http));
        Ok(self)
    }

    /// A request was created for `subject`'s phone: counts the previous one as unanswered if
    /// it was, then wakes the phone unless silenced.
    pub async fn request_created(
        &self,
        subject: &str,
        device_id: &str,
        challenge_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<WakeUpOutcome, AuthError> {
        let outstanding = PUSH_OUTSTANDING.key(subject);
        let previous = self.store.take(&outstanding).await?;
        self.store.put(&outstanding, challenge_id.as_bytes(), STREAK_MEMORY).await?;
        if previous.is_some() {
            self.store.increment(&PUSH_EXPIRIES.key(subject), STREAK_MEMORY).await?;
        }
        if let Some(until) = self.silenced_until(subject, now).await? {
            return Ok(WakeUpOutcome::Silenced { until });
        }
        let Some((webhook, http)) = &self.webhook else {
            return Ok(WakeUpOutcome::NoGateway);
        };
        let body = WakeUp { kind: "push_request", device_id, challenge_id, issued_at: now, expires_at };
        let body = serde_json::to_vec(&body).map_err(|e| AuthError::Internal(e.to_string()))?;
        let request = http
            .post(&webhook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, now.to_string())
            .header(SIGNATURE_HEADER, signature(webhook.secret.as_bytes(), now, &body))
            .body(body);
        // In the background: the login page does not wait for the gateway.
        tokio::spawn(async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(status = %r.status(), "the push gateway refused a wake-up"),
                Err(e) => tracing::warn!(error = %e, "the push gateway could not be reached"),
            }
        });
        Ok(WakeUpOutcome::Sent)
    }

    /// Until when the phone is not woken, if silenced now. Crossing a threshold silences it
    /// from then on, once: the counts start again after the silence.
    async fn silenced_until(&self, subject: &str, now: i64) -> Result<Option<i64>, AuthError> {
        if let Some(until) = self.store.get(&PUSH_SILENCE.key(subject)).await? {
            let until = std::str::from_utf8(&until).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(i64::MAX);
            if until > now {
                return Ok(Some(until));
            }
        }
        let keys = [PUSH_DENIALS.key(subject), PUSH_EXPIRIES.key(subject)];
        let counts = self.store.get_many(&[keys[0].as_str(), keys[1].as_str()]).await?;
        let count = |v: &Option<Vec<u8>>| {
            v.as_deref().and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
        };
        let (denials, expiries) = (count(&counts[0]), count(&counts[1]));
        if denials < self.silence.after_denials && expiries < self.silence.after_expiries {
            return Ok(None);
        }
        let until = now.saturating_add(i64::try_from(self.silence.silence_for.as_secs()).unwrap_or(i64::MAX / 4));
        self.store.put(&PUSH_SILENCE.key(subject), until.to_string().as_bytes(), self.silence.silence_for).await?;
        for key in &keys {
            self.store.delete(key).await?;
        }
        Ok(Some(until))
    }

    /// The phone answered `challenge_id`: an approval wipes the counts, a refusal adds one.
    pub async fn answered(&self, subject: &str, challenge_id: &str, approved: bool) -> Result<(), AuthError> {
        let outstanding = PUSH_OUTSTANDING.key(subject);
        if self.store.get(&outstanding).await?.as_deref() == Some(challenge_id.as_bytes()) {
            self.store.delete(&outstanding).await?;
        }
        if approved {
            self.store.delete(&PUSH_DENIALS.key(subject)).await?;
            self.store.delete(&PUSH_EXPIRIES.key(subject)).await?;
            self.store.delete(&PUSH_SILENCE.key(subject)).await?;
        } else {
            self.store.increment(&PUSH_DENIALS.key(subject), STREAK_MEMORY).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_the_timestamp_a_dot_and_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(signature(b"k", 17, b"{}"), format!("v1={}", hmac_sha256_hex(b"k", &[b"17.{}"])));
        let a = signature(b"secret", 1, b"{}");
        assert_ne!(a, signature(b"secret", 2, b"{}"));
        assert_ne!(a, signature(b"secret", 1, b"{ }"));
        assert_ne!(a, signature(b"other", 1, b"{}"));
    }
}
