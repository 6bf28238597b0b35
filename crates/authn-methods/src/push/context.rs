//! What a phone is told of a login before it asks the professional anything.

use serde::Serialize;

use super::PushApprovals;

/// What a phone shows of a login before it asks anything (a push, a scanned QR code), all from
/// the server: the relying party's registered name, the address and browser of the login
/// page, when, and the operator's warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustedContext {
    pub client_name: String,
    pub source_ip: Option<String>,
    /// The login's `User-Agent`, as sent (printable ASCII, at most 256 characters).
    pub user_agent: Option<String>,
    /// The same, shortly: «Firefox (Linux)».
    pub browser: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub warning: String,
}

impl PushApprovals {
    /// The context of a login recorded with these fields.
    pub(super) fn trusted_context(
        &self,
        client_name: String,
        source_ip: Option<String>,
        user_agent: Option<String>,
        created_at: i64,
        expires_at: i64,
    ) -> TrustedContext {
        TrustedContext {
            client_name,
            source_ip,
            browser: user_agent.as_deref().map(|ua| crate::user_agent::browser_name(Some(ua))),
            user_agent,
            created_at,
            expires_at,
            warning: self.settings.warning.clone(),
        }
    }
}
