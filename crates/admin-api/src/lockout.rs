//! Lockouts, as administrators see them: whether an identifier is locked out now, from how many
//! sources and until when. Lifting them is [`AdminService::reset_lockout`].

use serde::Serialize;
use utoipa::ToSchema;

use crate::service::{AdminError, AdminService};

/// Where a national identifier stands against the lockout, from every source.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LockoutView {
    /// Whether some source is locked out of it, or made to wait, now.
    pub locked: bool,
    /// Sources (browsers or addresses) locked out after too many failures.
    pub locked_sources: u32,
    /// Untrusted sources made to wait before their next attempt (failures from many places).
    pub spaced_sources: u32,
    /// Failures on it from every source within the identifier's window.
    pub recent_failures: u64,
    /// When the last of those locks and waits ends (Unix seconds).
    pub until: Option<i64>,
}

impl AdminService {
    /// The lockout's state for an identifier, existing or not (a lock never tells whether an
    /// account has it). Reads only.
    pub async fn lockout_status(&self, national_id: &str) -> Result<LockoutView, AdminError> {
        let identifier = authn_methods::password::normalise_identifier(national_id)
            .ok_or_else(|| AdminError::Invalid("this cannot be a national identifier".into()))?;
        let s = self
            .engine
            .lockout()
            .status(&identifier, self.now())
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        Ok(LockoutView {
            locked: s.locked_sources + s.spaced_sources > 0,
            locked_sources: s.locked_sources,
            spaced_sources: s.spaced_sources,
            recent_failures: s.recent_failures,
            until: s.until,
        })
    }
}
