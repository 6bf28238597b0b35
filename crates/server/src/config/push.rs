//! `[push]`: approval on the professional's phone (docs/configuration.md).

use serde::{Deserialize, Serialize};

use super::{redact_url, redacted};

/// Push approval on the professional's phone (docs/authentication.md).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Offer «Valider sur mon téléphone» and serve the phones' API under `/push/v1`.
    pub enabled: bool,
    /// Seconds a push can be answered: 10 to 60.
    pub validity: u64,
    /// Pushes sent to one account per `account_window` seconds.
    pub max_per_account: u64,
    pub account_window: u64,
    /// Pushes asked from one source address (/64 for IPv6), across accounts, per
    /// `address_window` seconds.
    #[serde(default = "default_push_max_per_address")]
    pub max_per_address: u64,
    #[serde(default = "default_push_address_window")]
    pub address_window: u64,
    /// Seconds after «ce n'était pas moi» during which no phone can be enrolled on the account.
    #[serde(default = "default_push_enrolment_freeze")]
    pub enrolment_freeze: u64,
    /// The operator's warning the phone shows with every request (empty: the default text).
    #[serde(default)]
    pub warning: String,
    /// The push gateway called to wake the phone for each request (empty: none; the app finds
    /// requests when it asks).
    #[serde(default)]
    pub webhook_url: String,
    /// The secret the gateway checks each call's signature with (at least 32 characters).
    #[serde(default)]
    pub webhook_secret: String,
    /// Auto-silence: after this many refusals, or this many unanswered requests, since the last
    /// approval, the phone is not woken for `silence_for` seconds.
    #[serde(default = "default_push_silence_after_denials")]
    pub silence_after_denials: u64,
    #[serde(default = "default_push_silence_after_expiries")]
    pub silence_after_expiries: u64,
    #[serde(default = "default_push_silence_for")]
    pub silence_for: u64,
    /// The longest, in seconds, a phone's list request is held open until a request comes
    /// (long poll; 0: answered at once).
    #[serde(default = "default_push_max_wait")]
    pub max_wait: u64,
    /// Seconds a login page's QR code can be scanned: 30 to 600.
    #[serde(default = "default_qr_validity")]
    pub qr_validity: u64,
    /// Offer CIBA (decoupled logins a relying party starts, approved on the phone) at
    /// `/bc-authorize`, to clients registered with its grant; needs `enabled`.
    #[serde(default = "default_true")]
    pub ciba: bool,
    /// Pushes one relying party may ask by CIBA, across accounts, per `client_window` seconds.
    #[serde(default = "default_push_max_per_client")]
    pub max_per_client: u64,
    #[serde(default = "default_push_client_window")]
    pub client_window: u64,
}

fn default_true() -> bool {
    true
}

fn default_push_max_per_client() -> u64 {
    600
}

fn default_push_client_window() -> u64 {
    3600
}

impl std::fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConfig")
            .field("enabled", &self.enabled)
            .field("validity", &self.validity)
            .field("max_per_account", &self.max_per_account)
            .field("account_window", &self.account_window)
            .field("max_per_address", &self.max_per_address)
            .field("address_window", &self.address_window)
            .field("enrolment_freeze", &self.enrolment_freeze)
            .field("warning", &self.warning)
            .field("webhook_url", &redact_url(&self.webhook_url))
            .field("webhook_secret", &redacted(&self.webhook_secret))
            .field("silence_after_denials", &self.silence_after_denials)
            .field("silence_after_expiries", &self.silence_after_expiries)
            .field("silence_for", &self.silence_for)
            .field("max_wait", &self.max_wait)
            .field("qr_validity", &self.qr_validity)
            .field("ciba", &self.ciba)
            .field("max_per_client", &self.max_per_client)
            .field("client_window", &self.client_window)
            .finish()
    }
}

fn default_qr_validity() -> u64 {
    120
}

fn default_push_silence_after_denials() -> u64 {
    2
}

fn default_push_silence_after_expiries() -> u64 {
    3
}

fn default_push_silence_for() -> u64 {
    3600
}

fn default_push_max_wait() -> u64 {
    30
}

fn default_push_max_per_address() -> u64 {
    10
}

fn default_push_address_window() -> u64 {
    3600
}

fn default_push_enrolment_freeze() -> u64 {
    86_400
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            enabled: true,
            validity: 60,
            max_per_account: 5,
            account_window: 900,
            max_per_address: default_push_max_per_address(),
            address_window: default_push_address_window(),
            enrolment_freeze: default_push_enrolment_freeze(),
            warning: String::new(),
            webhook_url: String::new(),
            webhook_secret: String::new(),
            silence_after_denials: default_push_silence_after_denials(),
            silence_after_expiries: default_push_silence_after_expiries(),
            silence_for: default_push_silence_for(),
            max_wait: default_push_max_wait(),
            qr_validity: default_qr_validity(),
            ciba: true,
            max_per_client: default_push_max_per_client(),
            client_window: default_push_client_window(),
        }
    }
}
