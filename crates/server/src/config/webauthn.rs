//! `[webauthn]`: the operator's policy for passkeys and security keys (docs/configuration.md,
//! docs/authentication.md). The methods themselves are turned on in `login.methods`
//! (`webauthn`, `webauthn-key`); the RP ID and origin come from the issuer.

use std::time::Duration;

use authn_methods::webauthn::{Attestation, ResidentKey, WebauthnSettings};
use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnConfig {
    /// What the authenticator tells of its maker: `none`, `indirect` or `direct`.
    pub attestation: Attestation,
    /// AAGUIDs of the authenticator models that may be enrolled (empty: any); needs
    /// `attestation = "direct"`.
    pub allowed_aaguids: Vec<String>,
    /// Whether the credential is kept on the authenticator: `required`, `preferred` or
    /// `discouraged` (a passkey needs one to sign in without an identifier).
    pub resident_key: ResidentKey,
    /// The level (`acr`) of a login a WebAuthn credential verified by its owner completes.
    pub acr: String,
    /// Seconds the browser waits for the authenticator: 10 to 120.
    pub timeout: u64,
}

impl Default for WebauthnConfig {
    fn default() -> Self {
        WebauthnConfig {
            attestation: Attestation::None,
            allowed_aaguids: Vec::new(),
            resident_key: ResidentKey::Preferred,
            acr: "eidas2".into(),
            timeout: 120,
        }
    }
}

impl WebauthnConfig {
    fn aaguids(&self) -> Result<Vec<uuid::Uuid>, ConfigError> {
        self.allowed_aaguids
            .iter()
            .map(|a| {
                uuid::Uuid::parse_str(a.trim())
                    .map_err(|e| ConfigError::Invalid(format!("webauthn.allowed_aaguids: {a:?}: {e}")))
            })
            .collect()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if authn_methods::policy::level_named(&self.acr).is_none() {
            return Err(ConfigError::Invalid(format!(
                "webauthn.acr: {:?} is no level (eidas1, eidas2 or eidas3)",
                self.acr
            )));
        }
        if !(10..=120).contains(&self.timeout) {
            return Err(ConfigError::Invalid("webauthn.timeout must be between 10 and 120 seconds".into()));
        }
        if !self.aaguids()?.is_empty() && self.attestation != Attestation::Direct {
            return Err(ConfigError::Invalid(
                "webauthn.allowed_aaguids needs webauthn.attestation = \"direct\": without the maker's statement, \
                 an authenticator may claim any AAGUID"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The policy for the methods (checked by [`WebauthnConfig::validate`]).
    pub fn settings(&self, product: &str) -> Result<WebauthnSettings, ConfigError> {
        Ok(WebauthnSettings {
            attestation: self.attestation,
            allowed_aaguids: self.aaguids()?,
            resident_key: self.resident_key,
            acr: self.acr.clone(),
            timeout: Duration::from_secs(self.timeout),
            product: product.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_policy_is_checked() {
        WebauthnConfig::default().validate().unwrap();
        let bad_level = WebauthnConfig { acr: "gold".into(), ..WebauthnConfig::default() };
        assert!(bad_level.validate().is_err());
        let list = vec!["cb69481e-8ff7-4039-93ec-0a2729a154a8".to_owned()];
        let unattested = WebauthnConfig { allowed_aaguids: list.clone(), ..WebauthnConfig::default() };
        assert!(unattested.validate().is_err(), "an allow-list needs direct attestation");
        let attested =
            WebauthnConfig { allowed_aaguids: list, attestation: Attestation::Direct, ..WebauthnConfig::default() };
        attested.validate().unwrap();
        assert_eq!(attested.settings("Caducée").unwrap().allowed_aaguids.len(), 1);
        let garbled = WebauthnConfig {
            allowed_aaguids: vec!["not-a-uuid".into()],
            attestation: Attestation::Direct,
            ..WebauthnConfig::default()
        };
        assert!(garbled.validate().is_err());
    }
}
