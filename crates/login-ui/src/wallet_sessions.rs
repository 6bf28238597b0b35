//! The wallet's view of the professional's sessions and recent activity, and the two actions
//! that cut an impostor out: «Déconnecter cette session» and «Me déconnecter partout». Each
//! ends SSO sessions through the protocol, which tells every relying party at once
//! (back-channel logout) and kills every token issued under them.

use async_trait::async_trait;

use crate::wallet_texts::WalletTexts;

/// One line of the professional's history (from the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEntry {
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub source_ip: Option<String>,
    pub client_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("wallet data unavailable: {0}")]
pub struct WalletDataError(pub String);

/// What the wallet reads beyond sessions and authenticators (implemented by the server).
#[async_trait]
pub trait WalletData: Send + Sync {
    /// The latest events about `subject`, newest first.
    async fn recent_activity(&self, subject: &str, limit: u64) -> Result<Vec<ActivityEntry>, WalletDataError>;
}

pub(crate) struct SessionRow {
    pub sid: String,
    pub started: String,
    pub methods: String,
    pub source_ip: String,
    pub browser: String,
    pub services: String,
    pub current: bool,
}

pub(crate) struct ActivityRow {
    pub when: String,
    pub what: &'static str,
    pub source_ip: String,
    pub refused: bool,
}

/// Day and time in Paris, as professionals read them.
pub(crate) fn when(at: Option<i64>) -> String {
    at.and_then(|t| jiff::Timestamp::from_second(t).ok())
        .map(|ts| ts.to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Paris").unwrap_or(jiff::tz::TimeZone::UTC)))
        .map(|z| z.strftime("%d/%m/%Y %H:%M").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

pub(crate) use authn_methods::user_agent::browser_name;

pub(crate) fn method_label(w: &WalletTexts, method: &str) -> &'static str {
    match method {
        "pwd" => w.method_password,
        "totp" => w.method_app,
        "hwk-otp" => w.method_token,
        "otp-mail" => w.method_mail,
        "activation-code" => w.method_activation,
        "push" => w.method_push,
        "qr" => w.method_qr,
        "qr-offline" => w.method_qr_offline,
        "webauthn" => w.passkeys().method_passkey,
        "webauthn-key" => w.passkeys().method_key,
        _ => w.kind_other,
    }
}

/// The events a professional cares about, in their words; others are not shown.
pub(crate) fn activity_row(w: &WalletTexts, e: &ActivityEntry) -> Option<ActivityRow> {
    let (what, refused) = match e.event.as_str() {
        "signin" => (w.event_signin, false),
        "sso_signin" => (w.event_sso, false),
        "login_failed" => (w.event_failed, true),
        "login_refused" | "lockout" => (w.event_locked, true),
        "mail_otp" => (w.event_mail, false),
        "logout" => (w.event_logout, false),
        "code_replay" | "refresh_reuse" => (w.event_replay, true),
        "push_sent" => (w.event_push_sent, false),
        "push_approved" => (w.event_push_approved, false),
        "push_denied" => (w.event_push_denied, true),
        "push_not_me" => (w.event_push_not_me, true),
        "push_blocked" => (w.event_push_blocked, true),
        "push_unblocked" => (w.event_push_unblocked, false),
        "qr_approved" | "qr_offline_used" => (w.event_qr_approved, false),
        "qr_denied" => (w.event_qr_denied, true),
        "webauthn_enrolled" => (w.passkeys().event_enrolled, false),
        "webauthn_cloned" => (w.passkeys().event_cloned, true),
        _ => return None,
    };
    Some(ActivityRow {
        when: when(Some(e.at)),
        what,
        source_ip: e.source_ip.clone().unwrap_or_else(|| "—".into()),
        refused,
    })
}
