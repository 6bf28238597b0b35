//! Enrolling the approval phone: the wallet shows a single-use code (and a QR code carrying
//! it), the phone redeems it with a key it made. One phone per account, and none for a while
//! after «ce n'était pas moi».

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{KIND, PushApprovals, internal, random_id};
use crate::method::AuthError;
use crate::push_request::{DeviceError, DevicePublicKey, RequestCheck};

/// What starting an enrolment led to.
#[derive(Debug, Clone)]
pub enum EnrolmentStart {
    Started(PushEnrolment),
    /// One phone per account: remove the enrolled one first.
    AlreadyEnrolled,
    /// «Ce n'était pas moi» was answered lately: no new phone until `until`.
    Frozen {
        until: i64,
    },
}

impl EnrolmentStart {
    /// The enrolment, if it started.
    pub fn started(self) -> Option<PushEnrolment> {
        match self {
            EnrolmentStart::Started(e) => Some(e),
            _ => None,
        }
    }
}

/// A phone just enrolled: its id (`kid` of its requests), and its offline ID and secret
/// ([`super::qr`]), given to it once. `Debug` hides the secret.
pub struct EnrolledDevice {
    pub device_id: String,
    pub offline_id: String,
    pub offline_secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for EnrolledDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolledDevice")
            .field("device_id", &self.device_id)
            .field("offline_id", &self.offline_id)
            .field("offline_secret", &"<redacted>")
            .finish()
    }
}

/// An enrolment code for the wallet to show (as text and QR code). `Debug` shows neither the
/// code nor the URI that carries it.
#[derive(Clone)]
pub struct PushEnrolment {
    pub code: Zeroizing<String>,
    /// `caducee-push://enrol?...`: what the phone app reads from the QR code.
    pub uri: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for PushEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushEnrolment")
            .field("code", &"<redacted>")
            .field("uri", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct EnrolmentGrant {
    subject: String,
    label: String,
}

#[derive(Deserialize)]
struct EnrolBody {
    action: String,
    code: String,
    #[serde(default)]
    label: String,
}

fn enrolment_key(code: &str) -> String {
    crate::store_keys::PUSH_ENROLMENT.key(directory::sha256_hex(code.as_bytes()))
}

impl PushApprovals {
    /// Starts enrolling a phone for `subject` (one per account: remove the old one first; none
    /// for a while after «ce n'était pas moi»).
    pub async fn start_enrolment(&self, subject: &str, label: &str, now: i64) -> Result<EnrolmentStart, AuthError> {
        if self.device_of(subject).await?.is_some() {
            return Ok(EnrolmentStart::AlreadyEnrolled);
        }
        if let Some(until) = self.enrolment_frozen_until(subject, now).await? {
            return Ok(EnrolmentStart::Frozen { until });
        }
        let code = Zeroizing::new(random_id());
        let grant = EnrolmentGrant { subject: subject.to_owned(), label: label.chars().take(64).collect() };
        let bytes = serde_json::to_vec(&grant).map_err(internal)?;
        self.store.put(&enrolment_key(&code), &bytes, self.settings.enrolment_validity).await?;
        let uri = format!("caducee-push://enrol?server={}&code={}", percent_encode(&self.endpoint), code.as_str());
        let expires_at = now + i64::try_from(self.settings.enrolment_validity.as_secs()).unwrap_or(600);
        Ok(EnrolmentStart::Started(PushEnrolment { code, uri, expires_at }))
    }

    /// Until when no phone may be enrolled on `subject`: the latest «ce n'était pas moi» plus
    /// the freeze. Read from the audit log, which is durable and which every node shares: the
    /// freeze outlives a restart and the lifting of the push block.
    pub async fn enrolment_frozen_until(&self, subject: &str, now: i64) -> Result<Option<i64>, AuthError> {
        let freeze = i64::try_from(self.settings.enrolment_freeze.as_secs()).unwrap_or(i64::MAX / 4);
        let query = directory::AuditQuery {
            subject: Some(subject.to_owned()),
            event: Some("push_not_me".to_owned()),
            from: Some(now.saturating_sub(freeze)),
            limit: Some(1),
            newest_first: true,
            ..Default::default()
        };
        let latest = self.directory.audit().query(query).await?;
        Ok(latest.first().map(|r| r.at.saturating_add(freeze)).filter(|until| *until > now))
    }

    /// A phone redeems an enrolment code with its new key. Returns the device id, which the
    /// phone names (`kid`) in every later request, and what it needs to sign in without
    /// network ([`super::qr`]).
    pub async fn register_device(&self, token: &str, now: i64) -> Result<EnrolledDevice, DeviceError> {
        let header = RequestCheck::header(token)?;
        let jwk = header.jwk.ok_or(DeviceError::InvalidRequest("an enrolment request carries its key in jwk"))?;
        let key = DevicePublicKey::from_jwk(&jwk)?;
        let check = self.check(now);
        let body: EnrolBody = check.verify(token, &key, &format!("enrol:{}", key.x)).await?;
        if body.action != "enrol" {
            return Err(DeviceError::InvalidRequest("action must be enrol"));
        }
        let grant =
            self.store.take(&enrolment_key(&body.code)).await?.ok_or(DeviceError::NotFound("enrolment code"))?;
        let grant: EnrolmentGrant =
            serde_json::from_slice(&grant).map_err(|e| DeviceError::Unavailable(internal(e)))?;
        // A code shown just before «ce n'était pas moi» must not enrol the impostor's phone.
        if self.enrolment_frozen_until(&grant.subject, now).await?.is_some() {
            return Err(DeviceError::Conflict(
                "no phone can be enrolled on this account for now («not me» answered lately)",
            ));
        }
        if self.device_of(&grant.subject).await?.is_some() {
            return Err(DeviceError::Conflict("this account already has a push phone"));
        }
        let label =
            if body.label.trim().is_empty() { grant.label } else { body.label.trim().chars().take(64).collect() };
        let params = serde_json::to_value(&key).map_err(|e| DeviceError::Unavailable(internal(e)))?;
        // For sign-in without network: an ID to type (ten digits, unique: kept as the serial)
        // and a secret shared with the phone, sealed at rest like every authenticator secret.
        let offline_id = format!("{:010}", rand::rng().random_range(0..10_000_000_000u64));
        let offline_secret = Zeroizing::new(rand::rng().random::<[u8; 32]>().to_vec());
        let record = self
            .directory
            .authenticators()
            .create(directory::NewAuthenticator {
                subject: Some(grant.subject.clone()),
                kind: KIND.to_owned(),
                label,
                serial: Some(format!("{}{offline_id}", super::qr::OFFLINE_SERIAL_PREFIX)),
                // The phone's public key is in `params`; the secret is the offline one.
                secret: offline_secret.clone(),
                params,
                active: true,
                counter: 0,
            })
            .await?;
        // Two codes redeemed at once could both pass the check above: the oldest phone stays.
        if self.device_of(&grant.subject).await?.is_some_and(|oldest| oldest.id != record.id) {
            self.directory.authenticators().delete(&record.id).await?;
            return Err(DeviceError::Conflict("this account already has a push phone"));
        }
        let details = serde_json::json!({ "device": record.id });
        self.audit("push_device_enrolled", &grant.subject, Some(&grant.subject), None, "enrolled", details, now).await;
        Ok(EnrolledDevice { device_id: record.id, offline_id, offline_secret })
    }
}

/// Enough percent-encoding for a URL placed in a query parameter.
pub(super) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
