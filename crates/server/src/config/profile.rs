//! `profile`: a named set of defaults, under what the file and the environment say.

use serde::{Deserialize, Serialize};

/// Which defaults the settings start from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Caducée's own defaults (docs/configuration.md).
    #[default]
    Standard,
    /// Pro Santé Connect's lifetimes, which its relying parties are written for: access
    /// tokens 120 s, refresh tokens 30 min, SSO sessions 4 h, and 30 min without activity.
    ProSanteConnect,
}

impl Profile {
    /// The settings this profile changes, as a partial configuration: merged over the
    /// defaults and under the file and the environment, so that any of them may still be set.
    pub fn overrides(self) -> serde_json::Value {
        match self {
            Profile::Standard => serde_json::json!({}),
            Profile::ProSanteConnect => serde_json::json!({
                "tokens": { "access_token_ttl": 120, "refresh_token_ttl": 1800 },
                "session": { "ttl": 4 * 3600, "idle_timeout": 1800 },
            }),
        }
    }
}
