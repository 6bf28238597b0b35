//! The challenge the provider's login page hands to the agent, and what the card signs.
//!
//! Form: `caducee-card-v1:<origin>:<nonce>`, ASCII; `<origin>` the provider's login origin
//! (`https://host[:port]`, or `http://` on loopback for tests; no trailing slash), `<nonce>`
//! base64url without padding of 32 random bytes. The card signs SHA-256 of the challenge's
//! bytes, RSA PKCS#1 v1.5 (`RSA-PKCS1-SHA256`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::AgentError;

pub const PREFIX: &str = "caducee-card-v1:";
pub const ALGORITHM: &str = "RSA-PKCS1-SHA256";
const MAX_LEN: usize = 512;

/// DER prefix of a DigestInfo for SHA-256 (RFC 8017, section 9.2, note 1).
pub const SHA256_DIGEST_INFO_PREFIX: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

/// A well-formed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    text: String,
    origin_len: usize,
}

/// `scheme://host[:port]` as browsers serialise an origin, or `None`.
pub fn normalise_origin(origin: &str) -> Option<String> {
    let url = url::Url::parse(origin).ok()?;
    if !matches!(url.scheme(), "https" | "http") {
        return None;
    }
    let serialised = url.origin().ascii_serialization();
    (serialised == origin).then_some(serialised)
}

impl Challenge {
    pub fn parse(text: &str) -> Result<Challenge, AgentError> {
        let bad = |why: &str| AgentError::InvalidRequest(format!("challenge: {why}"));
        if text.len() > MAX_LEN || !text.is_ascii() {
            return Err(bad("too long or not ASCII"));
        }
        let rest = text.strip_prefix(PREFIX).ok_or_else(|| bad("unknown version"))?;
        let (origin, nonce) = rest.rsplit_once(':').ok_or_else(|| bad("no nonce"))?;
        if normalise_origin(origin).is_none() {
            return Err(bad("the origin is not a serialised http(s) origin"));
        }
        let bytes = URL_SAFE_NO_PAD.decode(nonce).map_err(|_| bad("the nonce is not base64url"))?;
        if bytes.len() != 32 {
            return Err(bad("the nonce is not 32 bytes"));
        }
        Ok(Challenge { text: text.to_owned(), origin_len: origin.len() })
    }

    /// The provider's origin the challenge names.
    pub fn origin(&self) -> &str {
        &self.text[PREFIX.len()..PREFIX.len() + self.origin_len]
    }

    /// The bytes the card signs (their SHA-256, that is).
    pub fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// The DigestInfo (SHA-256 of the challenge) the card's key turns into a signature.
    pub fn digest_info(&self) -> Vec<u8> {
        let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.as_bytes());
        [&SHA256_DIGEST_INFO_PREFIX[..], hash.as_ref()].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    #[test]
    fn parses_origin_and_nonce() -> Result<(), AgentError> {
        let c = Challenge::parse(&format!("{PREFIX}https://login.example:8443:{NONCE}"))?;
        assert_eq!(c.origin(), "https://login.example:8443");
        let c = Challenge::parse(&format!("{PREFIX}http://127.0.0.1:4000:{NONCE}"))?;
        assert_eq!(c.origin(), "http://127.0.0.1:4000");
        assert_eq!(c.digest_info().len(), 51);
        Ok(())
    }

    #[test]
    fn refuses_malformed_challenges() {
        for bad in [
            format!("caducee-card-v2:https://login.example:{NONCE}"),
            format!("{PREFIX}https://login.example/:{NONCE}"),
            format!("{PREFIX}https://login.example/path:{NONCE}"),
            format!("{PREFIX}https://login.example:443:{NONCE}"),
            format!("{PREFIX}ftp://login.example:{NONCE}"),
            format!("{PREFIX}https://login.example:AAAA"),
            format!("{PREFIX}https://login.example:{NONCE}="),
            format!("{PREFIX}https://login.example"),
        ] {
            assert!(Challenge::parse(&bad).is_err(), "{bad}");
        }
    }
}
